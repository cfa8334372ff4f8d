// BitmapChunk (DRBD's P_BITMAP / P_COMPRESSED_BITMAP): one piece of a quick-sync bitmap sent after
// the sync handshake, covering consecutive bits from FirstBit. Fixed 20 bytes, then the body:
//
//   0 u64 first bit   8 u64 bit count   16 u8 encoding   17 u8 flags   18 u16 reserved
//
// RunLength body: LEB128 varints, each a run length minus one; runs alternate clear/set starting with
// StartsWithSet, and sum to the bit count exactly. Raw body: ceil(count/8) bytes, bit i of the chunk
// at byte i/8, bit i%8 (LSB first), padding bits zero. BitmapRunLengthCodec writes and reads bodies.
using System.Buffers;
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Peers.Protocol;

public enum BitmapEncoding : byte
{
    /// <summary>Plain bits: for dense or random bitmaps, where runs would cost more.</summary>
    Raw = 1,
    /// <summary>Run lengths as varints: for the usual sparse or clustered bitmaps.</summary>
    RunLength = 2,
}

[Flags]
public enum BitmapChunkFlags : byte
{
    None = 0,
    /// <summary>The last chunk: it ends at the end of the bitmap.</summary>
    LastChunk = 1,
    /// <summary>RunLength only: the first run is of set bits.</summary>
    StartsWithSet = 2,
}

/// <summary>The fixed part of a bitmap chunk; the encoded body follows in the same frame.</summary>
public readonly record struct BitmapChunkMessage(ulong FirstBit, ulong BitCount, BitmapEncoding Encoding, BitmapChunkFlags Flags)
    : IPeerMessage<BitmapChunkMessage>
{
    public const int Size = 20;
    /// <summary>Largest body a chunk carries (a receiver buffers one body at a time).</summary>
    public const int MaxBodyBytes = 16 * 1024;

    public static MessageType Type => MessageType.BitmapChunk;
    /// <summary>The fixed part; the body follows.</summary>
    public int EncodedLength => Size;

    public bool IsLast => (Flags & BitmapChunkFlags.LastChunk) != 0;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, FirstBit);     // u64 first bit
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], BitCount); // u64 bit count
        destination[16] = (byte)Encoding;                                  // u8 encoding
        destination[17] = (byte)Flags;                                     // u8 flags
        BinaryPrimitives.WriteUInt16BigEndian(destination[18..], 0);      // u16 reserved
        return Size;
    }

    /// <summary>Parses a whole contiguous payload; the body is <c>source[Size..]</c>.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out BitmapChunkMessage message, out string? error) =>
        TryReadHead(source, source.Length, out message, out error);

    /// <summary>Parses a possibly segmented payload; <paramref name="body"/> is the encoded body, not copied.</summary>
    public static bool TryRead(in ReadOnlySequence<byte> payload, out BitmapChunkMessage message, out ReadOnlySequence<byte> body, out string? error)
    {
        Span<byte> scratch = stackalloc byte[Size];
        bool ok = TryReadHead(FramePayload.Prefix(payload, (int)Math.Min(payload.Length, Size), scratch), payload.Length, out message, out error);
        body = ok ? payload.Slice(Size) : default;
        return ok;
    }

    private static bool TryReadHead(ReadOnlySpan<byte> head, long payloadLength, out BitmapChunkMessage message, out string? error)
    {
        message = default;
        if (!WireFields.MinLength(head, Size, Type, out error))
        {
            return false;
        }

        var m = new BitmapChunkMessage(BinaryPrimitives.ReadUInt64BigEndian(head), BinaryPrimitives.ReadUInt64BigEndian(head[8..]),
            (BitmapEncoding)head[16], (BitmapChunkFlags)head[17]);
        long bodyBytes = payloadLength - Size;
        const ulong MaxBits = WireFields.MaxDeviceBytes / Metadata.MetadataLayout.BytesPerBit;
        error = m.Encoding is not (BitmapEncoding.Raw or BitmapEncoding.RunLength) ? $"BitmapChunk encoding {head[16]} is unknown"
            : WireFields.UnknownFlags(Type, (byte)m.Flags, 3) ?? WireFields.Reserved(Type, BinaryPrimitives.ReadUInt16BigEndian(head[18..]))
            ?? (m.FirstBit > MaxBits || m.BitCount > MaxBits - m.FirstBit ? $"BitmapChunk bits {m.FirstBit}+{m.BitCount} exceed any bitmap"
            : bodyBytes > MaxBodyBytes ? $"BitmapChunk body of {bodyBytes} bytes exceeds {MaxBodyBytes}"
            : m.BitCount == 0 ? (m.IsLast && bodyBytes == 0 && m.Flags == BitmapChunkFlags.LastChunk ? null : "BitmapChunk of 0 bits must be an empty last chunk")
            : m.Encoding == BitmapEncoding.Raw
            ? ((m.Flags & BitmapChunkFlags.StartsWithSet) != 0 ? "BitmapChunk Raw cannot have StartsWithSet"
                : (ulong)bodyBytes != (m.BitCount + 7) / 8 ? $"BitmapChunk Raw of {m.BitCount} bits needs {(m.BitCount + 7) / 8} bytes, got {bodyBytes}" : null)
            : bodyBytes == 0 ? "BitmapChunk RunLength body is empty" : null);
        message = error is null ? m : default;
        return error is null;
    }
}

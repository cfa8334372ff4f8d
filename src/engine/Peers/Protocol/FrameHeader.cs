// The fixed 20-byte header in front of every peer frame, big-endian like DRBD's p_header100:
//
//   0  u32  magic 0x52425046 "RBPF" — names the frame format; an incompatible format gets a new magic
//   4  u16  message type (MessageType)
//   6  u16  volume number (0 for connection-wide messages)
//   8  u32  payload length in bytes (the payload follows the header)
//  12  u16  frame flags (FrameFlags); unknown bits are refused
//  14  u16  reserved, zero
//  16  u32  CRC32C of bytes 0..15
//
// Why a header checksum: the length field decides how many bytes we consume next and the type and
// volume decide where a write lands. TCP's 16-bit checksum misses some corruption (the reason DRBD
// has data-integrity-alg); a flipped bit here would silently desynchronise the stream or apply data
// to the wrong volume. CRC32C of 16 bytes costs a few nanoseconds and 4 bytes a frame, and turns
// such a fault into a clear "header checksum mismatch" disconnect. Payload integrity stays the job
// of the optional data-integrity-alg digest.
using System.Buffers.Binary;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>Per-frame flags.</summary>
[Flags]
public enum FrameFlags : ushort
{
    None = 0,
    /// <summary>A receiver that does not know the message type may skip the frame instead of disconnecting.</summary>
    Optional = 1,
}

/// <summary>One frame header, as read from or written to the wire.</summary>
/// <param name="Type">Message type; may be a value this build does not know (see <see cref="FrameFlags.Optional"/>).</param>
/// <param name="Volume">Volume number the message is about; 0 for connection-wide messages.</param>
/// <param name="PayloadLengthBytes">Bytes of payload after the header.</param>
/// <param name="Flags">Frame flags.</param>
public readonly record struct FrameHeader(MessageType Type, ushort Volume, uint PayloadLengthBytes, FrameFlags Flags = FrameFlags.None)
{
    /// <summary>Size on the wire.</summary>
    public const int Size = 20;
    /// <summary>"RBPF": Redundancy.Block peer frame, format 1.</summary>
    public const uint Magic = 0x52425046;
    /// <summary>Largest payload accepted before Features have negotiated a maximum.</summary>
    public const int HandshakeMaxPayloadBytes = 4096;
    private const int CrcOffset = 16;
    private const ushort KnownFlags = (ushort)FrameFlags.Optional;

    /// <summary>
    /// Parses and checks a header from the first <see cref="Size"/> bytes of <paramref name="source"/>:
    /// magic, checksum, flags and reserved field. Whether the type is known is the reader's business.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out FrameHeader header, out string? error)
    {
        header = default;
        if (source.Length < Size)
        {
            error = $"frame header needs {Size} bytes, got {source.Length}";
            return false;
        }

        uint magic = BinaryPrimitives.ReadUInt32BigEndian(source);
        if (magic != Magic)
        {
            error = $"bad frame magic 0x{magic:X8} (expected 0x{Magic:X8}): not a Redundancy.Block peer or stream out of step";
            return false;
        }

        uint crc = BinaryPrimitives.ReadUInt32BigEndian(source[CrcOffset..]);
        uint computed = Checksum(source);
        if (crc != computed)
        {
            error = $"frame header checksum mismatch (got 0x{crc:X8}, computed 0x{computed:X8})";
            return false;
        }

        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(source[12..]);
        ushort reserved = BinaryPrimitives.ReadUInt16BigEndian(source[14..]);
        if ((flags & ~KnownFlags) != 0 || reserved != 0)
        {
            error = $"frame header has unknown flags 0x{flags:X4} or reserved 0x{reserved:X4} set";
            return false;
        }

        header = new FrameHeader(
            Type: (MessageType)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),   // u16 type
            Volume: BinaryPrimitives.ReadUInt16BigEndian(source[6..]),             // u16 volume
            PayloadLengthBytes: BinaryPrimitives.ReadUInt32BigEndian(source[8..]), // u32 payload length
            Flags: (FrameFlags)flags);                                              // u16 flags
        error = null;
        return true;
    }

    /// <summary>Writes this header with its checksum. Returns <see cref="Size"/>.</summary>
    public int Write(Span<byte> destination)
    {
        Invariant.Assert(destination.Length >= Size, "room for a frame header");
        Invariant.Assert(((ushort)Flags & ~KnownFlags) == 0, "only known frame flags are sent");
        BinaryPrimitives.WriteUInt32BigEndian(destination, Magic);                    // u32 magic
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Type);        // u16 type
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], Volume);              // u16 volume
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], PayloadLengthBytes);  // u32 payload length
        BinaryPrimitives.WriteUInt16BigEndian(destination[12..], (ushort)Flags);      // u16 flags
        BinaryPrimitives.WriteUInt16BigEndian(destination[14..], 0);                  // u16 reserved
        BinaryPrimitives.WriteUInt32BigEndian(destination[CrcOffset..], Checksum(destination)); // u32 crc32c
        return Size;
    }

    /// <summary>CRC32C (init and final xor ~0) of the first 16 header bytes.</summary>
    private static uint Checksum(ReadOnlySpan<byte> header) => Crc32C.Compute(header[..CrcOffset]);
}

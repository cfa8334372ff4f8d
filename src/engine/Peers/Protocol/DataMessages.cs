// Data path messages (DRBD's P_DATA, P_RECV_ACK/P_WRITE_ACK/P_NEG_ACK/P_SUPERSEDED, P_BARRIER,
// P_BARRIER_ACK, P_OUT_OF_SYNC). All fixed-size and allocation-free to read; a Data frame carries its
// block after the fixed part (and after the optional data-integrity digest).
using System.Buffers;
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>What a Data asks of the receiver and how it is encoded.</summary>
[Flags]
public enum DataFlags : uint
{
    None = 0,
    /// <summary>Write through to stable storage before acknowledging.</summary>
    Fua = 1,
    /// <summary>Flush the receiver's disk before this write (alone: a pure flush, length 0).</summary>
    Flush = 2,
    /// <summary>Discard the range; no data follows.</summary>
    Trim = 4,
    /// <summary>Write zeroes to the range; no data follows.</summary>
    Zeroes = 8,
    /// <summary>Protocol B: answer with Ack RecvAck on receipt.</summary>
    SendReceiveAck = 16,
    /// <summary>Protocol C: answer with Ack WriteAck when on disk.</summary>
    SendWriteAck = 32,
    /// <summary>The data is an LZ4 block that decompresses to LengthBytes.</summary>
    Compressed = 64,
}

/// <summary>
/// One replicated write: fixed 40 bytes, then the data-integrity digest (if any), then the data.
/// </summary>
/// <param name="OffsetBytes">Byte offset in the volume.</param>
/// <param name="LengthBytes">Bytes written (uncompressed); 0 only for a pure flush.</param>
/// <param name="RequestId">Sender's id for the request, echoed in the Ack (DRBD's block_id).</param>
/// <param name="SequenceNumber">Per-connection sequence, for conflict detection in dual-primary.</param>
/// <param name="Flags">FUA, FLUSH, TRIM, ZEROES, ack mode, compression.</param>
/// <param name="IntegrityDigest">data-integrity-alg digest of the uncompressed data, or empty.</param>
public readonly record struct DataMessage(
    ulong OffsetBytes, uint LengthBytes, ulong RequestId, ulong SequenceNumber, DataFlags Flags, Digest IntegrityDigest = default)
    : IPeerMessage<DataMessage>
{
    public const int Size = 40;
    private const uint KnownFlags = 0x7F;

    public static MessageType Type => MessageType.Data;
    /// <summary>Fixed part and digest; the data follows (see <see cref="ExpectsData"/>).</summary>
    public int EncodedLength => Size + IntegrityDigest.LengthBytes;

    /// <summary>True when data bytes follow (not TRIM, ZEROES or a pure flush).</summary>
    public bool ExpectsData => (Flags & (DataFlags.Trim | DataFlags.Zeroes)) == 0 && LengthBytes > 0;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, OffsetBytes);         // u64 offset
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], RequestId);      // u64 request id
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], SequenceNumber); // u64 sequence
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], LengthBytes);   // u32 length
        BinaryPrimitives.WriteUInt32BigEndian(destination[28..], (uint)Flags);   // u32 flags
        destination[32] = (byte)IntegrityDigest.LengthBytes;                      // u8 digest length
        destination[33] = 0;                                                      // u8 reserved
        BinaryPrimitives.WriteUInt16BigEndian(destination[34..], 0);             // u16 reserved
        BinaryPrimitives.WriteUInt32BigEndian(destination[36..], 0);             // u32 reserved
        IntegrityDigest.Bytes.CopyTo(destination[Size..]);                        // digest bytes
        return EncodedLength;
    }

    /// <summary>Parses a whole contiguous payload (fixed part, digest and data).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out DataMessage message, out string? error) =>
        TryReadHead(source, source.Length, out message, out error);

    /// <summary>
    /// Parses a frame payload that may span segments: validates the message against the payload length
    /// and returns the data bytes as a slice, without copying them.
    /// </summary>
    public static bool TryRead(in ReadOnlySequence<byte> payload, out DataMessage message, out ReadOnlySequence<byte> data, out string? error)
    {
        Span<byte> scratch = stackalloc byte[Size + DigestAlgorithms.MaxLengthBytes];
        int headLength = (int)Math.Min(payload.Length, Size);
        if (headLength == Size)
        {
            int digestLength = payload.FirstSpan.Length > 32 ? payload.FirstSpan[32] : FramePayload.Prefix(payload, Size, scratch)[32];
            // An impossible length (up to 255, more than the scratch holds) is refused by TryReadHead from the fixed part.
            digestLength = WireFields.IsDigestLength(digestLength) ? digestLength : 0;
            headLength = (int)Math.Min(payload.Length, Size + digestLength);
        }

        bool ok = TryReadHead(FramePayload.Prefix(payload, headLength, scratch), payload.Length, out message, out error);
        data = ok ? payload.Slice(message.EncodedLength) : default;
        return ok;
    }

    /// <summary>Parses the fixed part and digest from <paramref name="head"/>, checking them against the payload length.</summary>
    private static bool TryReadHead(ReadOnlySpan<byte> head, long payloadLength, out DataMessage message, out string? error)
    {
        message = default;
        if (!WireFields.MinLength(head, Size, Type, out error))
        {
            return false;
        }

        int digestLength = head[32];
        if (digestLength != 0 && !WireFields.IsDigestLength(digestLength))
        {
            error = $"Data digest length {digestLength} is not that of any digest algorithm";
            return false;
        }

        if (head.Length < Size + digestLength || payloadLength < Size + digestLength)
        {
            error = $"Data with a {digestLength}-byte digest is truncated";
            return false;
        }

        var digest = new Digest(head.Slice(Size, digestLength));

        var m = new DataMessage(BinaryPrimitives.ReadUInt64BigEndian(head), BinaryPrimitives.ReadUInt32BigEndian(head[24..]),
            BinaryPrimitives.ReadUInt64BigEndian(head[8..]), BinaryPrimitives.ReadUInt64BigEndian(head[16..]),
            (DataFlags)BinaryPrimitives.ReadUInt32BigEndian(head[28..]), digest);
        error = WireFields.Reserved(Type, head[33] | ((ulong)BinaryPrimitives.ReadUInt16BigEndian(head[34..]) << 8) | ((ulong)BinaryPrimitives.ReadUInt32BigEndian(head[36..]) << 24))
            ?? m.CheckFlags() ?? m.CheckDataLength(payloadLength - Size - digestLength);
        message = error is null ? m : default;
        return error is null;
    }

    private string? CheckFlags()
    {
        DataFlags f = Flags;
        bool noData = (f & (DataFlags.Trim | DataFlags.Zeroes)) != 0;
        return WireFields.UnknownFlags(Type, (uint)f, KnownFlags)
            ?? ((f & DataFlags.Trim) != 0 && (f & DataFlags.Zeroes) != 0 ? "Data cannot be both TRIM and ZEROES"
            : noData && (f & DataFlags.Compressed) != 0 ? "Data TRIM/ZEROES cannot be COMPRESSED"
            : (f & DataFlags.SendReceiveAck) != 0 && (f & DataFlags.SendWriteAck) != 0 ? "Data cannot ask for both RecvAck and WriteAck"
            : LengthBytes == 0 && (f & (DataFlags.Flush | DataFlags.Trim | DataFlags.Zeroes | DataFlags.Compressed)) != DataFlags.Flush
            ? "Data of length 0 must be a pure FLUSH"
            : LengthBytes == 0 && OffsetBytes != 0 ? "Data pure FLUSH must have offset 0"
            : LengthBytes == 0 && IntegrityDigest.LengthBytes != 0 ? "Data pure FLUSH carries no digest"
            : WireFields.Range(Type, OffsetBytes, LengthBytes, allowEmpty: true));
    }

    private string? CheckDataLength(long dataBytes)
    {
        if (!ExpectsData)
        {
            return dataBytes == 0 ? null : $"Data without payload ({Flags}) is followed by {dataBytes} bytes";
        }

        if ((Flags & DataFlags.Compressed) != 0)
        {
            return dataBytes > 0 && dataBytes < LengthBytes ? null : $"Data COMPRESSED payload of {dataBytes} bytes for {LengthBytes} must be 1..{LengthBytes - 1}";
        }

        return dataBytes == LengthBytes ? null : $"Data of {LengthBytes} bytes is followed by {dataBytes} bytes";
    }
}

/// <summary>Which acknowledgement an Ack is.</summary>
public enum AckKind : byte
{
    /// <summary>Protocol B: received (P_RECV_ACK).</summary>
    RecvAck = 1,
    /// <summary>Protocol C: on the peer's disk (P_WRITE_ACK).</summary>
    WriteAck = 2,
    /// <summary>The peer failed to write it; the range is out of sync (P_NEG_ACK).</summary>
    NegAck = 3,
    /// <summary>Dual-primary conflict: the peer's own write covers it (P_SUPERSEDED).</summary>
    Superseded = 4,
    /// <summary>Dual-primary conflict: resend after the peer's write (P_RETRY_WRITE).</summary>
    RetryWrite = 5,
}

/// <summary>Acknowledgement of one Data. Size 32.</summary>
public readonly record struct AckMessage(AckKind Kind, ulong OffsetBytes, uint LengthBytes, ulong RequestId, ulong SequenceNumber)
    : IPeerMessage<AckMessage>
{
    public const int Size = 32;

    public static MessageType Type => MessageType.Ack;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, OffsetBytes);          // u64 offset
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], RequestId);       // u64 request id
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], SequenceNumber); // u64 sequence
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], LengthBytes);    // u32 length
        destination[28] = (byte)Kind;                                              // u8 kind
        destination[29] = 0;                                                       // u8 reserved
        BinaryPrimitives.WriteUInt16BigEndian(destination[30..], 0);              // u16 reserved
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out AckMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        var m = new AckMessage((AckKind)source[28], BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt32BigEndian(source[24..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[8..]), BinaryPrimitives.ReadUInt64BigEndian(source[16..]));
        error = m.Kind is < AckKind.RecvAck or > AckKind.RetryWrite ? $"Ack kind {source[28]} is unknown"
            : WireFields.Reserved(Type, source[29] | ((ulong)BinaryPrimitives.ReadUInt16BigEndian(source[30..]) << 8))
            ?? WireFields.Range(Type, m.OffsetBytes, m.LengthBytes, allowEmpty: true);
        message = error is null ? m : default;
        return error is null;
    }
}

/// <summary>Closes write epoch <see cref="Epoch"/>: the receiver acks with BarrierAck once it is stable. Size 8.</summary>
public readonly record struct BarrierMessage(ulong Epoch) : IPeerMessage<BarrierMessage>
{
    public const int Size = 8;

    public static MessageType Type => MessageType.Barrier;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, Epoch); // u64 epoch number
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out BarrierMessage message, out string? error)
    {
        bool ok = WireFields.ExactLength(source, Size, Type, out error);
        message = ok ? new BarrierMessage(BinaryPrimitives.ReadUInt64BigEndian(source)) : default;
        return ok;
    }
}

/// <summary>Epoch <see cref="Epoch"/> of <see cref="SetSize"/> writes is on the peer's stable storage. Size 16.</summary>
public readonly record struct BarrierAckMessage(ulong Epoch, uint SetSize) : IPeerMessage<BarrierAckMessage>
{
    public const int Size = 16;

    public static MessageType Type => MessageType.BarrierAck;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, Epoch);          // u64 epoch number
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], SetSize);   // u32 writes in the epoch
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], 0);        // u32 reserved
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out BarrierAckMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error) ||
            (error = WireFields.Reserved(Type, BinaryPrimitives.ReadUInt32BigEndian(source[12..]))) is not null)
        {
            return false;
        }

        message = new BarrierAckMessage(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt32BigEndian(source[8..]));
        return true;
    }
}

/// <summary>A range the sender changed without sending it (Ahead mode): mark it out of sync. Size 16.</summary>
public readonly record struct OutOfSyncMessage(ulong OffsetBytes, uint LengthBytes) : IPeerMessage<OutOfSyncMessage>
{
    public const int Size = 16;

    public static MessageType Type => MessageType.OutOfSync;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, OffsetBytes);     // u64 offset
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], LengthBytes); // u32 length
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], 0);         // u32 reserved
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out OutOfSyncMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        var m = new OutOfSyncMessage(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt32BigEndian(source[8..]));
        error = WireFields.Reserved(Type, BinaryPrimitives.ReadUInt32BigEndian(source[12..])) ?? WireFields.Range(Type, m.OffsetBytes, m.LengthBytes);
        message = error is null ? m : default;
        return error is null;
    }
}

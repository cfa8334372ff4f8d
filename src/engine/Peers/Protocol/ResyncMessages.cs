// Resync messages (DRBD's P_RS_DATA_REQUEST, P_RS_DATA_REPLY, P_RS_WRITE_ACK, P_CSUM_RS_REQUEST,
// P_RS_IS_IN_SYNC, P_NEG_RS_DREPLY, P_RS_CANCEL). The sync target pulls: it requests out-of-sync
// ranges in disk order, the source replies with the data (or, with csums-alg, the target sends a
// digest and the source may answer RsIsInSync instead). All ranges are whole 4 KiB blocks.
using System.Buffers;

namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>The sync target asks for a block range it has marked out of sync (P_RS_DATA_REQUEST). Size 24.</summary>
public readonly record struct RsDataRequestMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId) : IPeerMessage<RsDataRequestMessage>
{
    public const int Size = BlockRequestFields.Size;

    public static MessageType Type => MessageType.RsDataRequest;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);

    public static bool TryRead(ReadOnlySpan<byte> source, out RsDataRequestMessage message, out string? error)
    {
        bool ok = BlockRequestFields.TryReadExact(source, Type, out ulong offset, out uint length, out ulong id, out error);
        message = ok ? new RsDataRequestMessage(offset, length, id) : default;
        return ok;
    }
}

/// <summary>The sync target wrote a resync reply; the source clears the bits (P_RS_WRITE_ACK). Size 24.</summary>
public readonly record struct RsWriteAckMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId) : IPeerMessage<RsWriteAckMessage>
{
    public const int Size = BlockRequestFields.Size;

    public static MessageType Type => MessageType.RsWriteAck;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);

    public static bool TryRead(ReadOnlySpan<byte> source, out RsWriteAckMessage message, out string? error)
    {
        bool ok = BlockRequestFields.TryReadExact(source, Type, out ulong offset, out uint length, out ulong id, out error);
        message = ok ? new RsWriteAckMessage(offset, length, id) : default;
        return ok;
    }
}

/// <summary>Answer to CsumRsRequest: the digests match, nothing to send (P_RS_IS_IN_SYNC). Size 24.</summary>
public readonly record struct RsIsInSyncMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId) : IPeerMessage<RsIsInSyncMessage>
{
    public const int Size = BlockRequestFields.Size;

    public static MessageType Type => MessageType.RsIsInSync;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);

    public static bool TryRead(ReadOnlySpan<byte> source, out RsIsInSyncMessage message, out string? error)
    {
        bool ok = BlockRequestFields.TryReadExact(source, Type, out ulong offset, out uint length, out ulong id, out error);
        message = ok ? new RsIsInSyncMessage(offset, length, id) : default;
        return ok;
    }
}

/// <summary>The sync source could not read the range (P_NEG_RS_DREPLY); the target keeps it out of sync. Size 24.</summary>
public readonly record struct NegRsDReplyMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId) : IPeerMessage<NegRsDReplyMessage>
{
    public const int Size = BlockRequestFields.Size;

    public static MessageType Type => MessageType.NegRsDReply;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);

    public static bool TryRead(ReadOnlySpan<byte> source, out NegRsDReplyMessage message, out string? error)
    {
        bool ok = BlockRequestFields.TryReadExact(source, Type, out ulong offset, out uint length, out ulong id, out error);
        message = ok ? new NegRsDReplyMessage(offset, length, id) : default;
        return ok;
    }
}

/// <summary>The sync source will not serve the request now (P_RS_CANCEL); the target asks again later. Size 24.</summary>
public readonly record struct RsCancelMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId) : IPeerMessage<RsCancelMessage>
{
    public const int Size = BlockRequestFields.Size;

    public static MessageType Type => MessageType.RsCancel;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);

    public static bool TryRead(ReadOnlySpan<byte> source, out RsCancelMessage message, out string? error)
    {
        bool ok = BlockRequestFields.TryReadExact(source, Type, out ulong offset, out uint length, out ulong id, out error);
        message = ok ? new RsCancelMessage(offset, length, id) : default;
        return ok;
    }
}

/// <summary>How an RsDataReply's data is encoded.</summary>
[Flags]
public enum RsDataFlags : uint
{
    None = 0,
    /// <summary>The data is an LZ4 block that decompresses to LengthBytes.</summary>
    Compressed = 1,
    /// <summary>The range reads as zeroes on the source (unallocated); no data follows.</summary>
    Zeroes = 2,
    /// <summary>On the wire only: a data-integrity-alg digest precedes the data (see IntegrityDigest).</summary>
    IntegrityDigest = 4,
}

/// <summary>
/// The source's answer to RsDataRequest: 24 bytes, the data-integrity-alg digest of the uncompressed
/// data when one is agreed (u8 length + digest, flagged), then the data. P_RS_DATA_REPLY.
/// </summary>
public readonly record struct RsDataReplyMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId, RsDataFlags Flags = RsDataFlags.None, Digest IntegrityDigest = default)
    : IPeerMessage<RsDataReplyMessage>
{
    public const int Size = BlockRequestFields.Size;
    private const uint KnownFlags = (uint)(RsDataFlags.Compressed | RsDataFlags.Zeroes | RsDataFlags.IntegrityDigest);

    public static MessageType Type => MessageType.RsDataReply;
    /// <summary>The fixed part and the digest; the data follows.</summary>
    public int EncodedLength => Size + IntegrityTrailer.Length(IntegrityDigest);

    /// <summary>True when data bytes follow (not ZEROES).</summary>
    public bool ExpectsData => (Flags & RsDataFlags.Zeroes) == 0;

    public int Write(Span<byte> destination)
    {
        var flags = Flags & ~RsDataFlags.IntegrityDigest | (IntegrityDigest.LengthBytes > 0 ? RsDataFlags.IntegrityDigest : 0);
        int at = BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId, (uint)flags);
        return at + IntegrityTrailer.Write(destination[at..], IntegrityDigest);
    }

    /// <summary>Parses a whole contiguous payload (fixed part, digest and data).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out RsDataReplyMessage message, out string? error) =>
        TryReadHead(source, source.Length, out message, out error);

    /// <summary>Parses a possibly segmented payload; <paramref name="data"/> is the data slice, not copied.</summary>
    public static bool TryRead(in ReadOnlySequence<byte> payload, out RsDataReplyMessage message, out ReadOnlySequence<byte> data, out string? error)
    {
        Span<byte> scratch = stackalloc byte[IntegrityTrailer.MaxHeadBytes];
        int headLength = IntegrityTrailer.HeadLength(payload, (uint)RsDataFlags.IntegrityDigest, scratch);
        bool ok = TryReadHead(FramePayload.Prefix(payload, headLength, scratch), payload.Length, out message, out error);
        data = ok ? payload.Slice(message.EncodedLength) : default;
        return ok;
    }

    private static bool TryReadHead(ReadOnlySpan<byte> head, long payloadLength, out RsDataReplyMessage message, out string? error)
    {
        message = default;
        if (!WireFields.MinLength(head, Size, Type, out error) ||
            !BlockRequestFields.TryRead(head, Type, KnownFlags, out ulong offset, out uint length, out ulong id, out uint flags, out error))
        {
            return false;
        }
        var wire = (RsDataFlags)flags;
        Digest digest = default;
        if ((wire & RsDataFlags.IntegrityDigest) != 0 && !IntegrityTrailer.TryRead(head, payloadLength, Type, out digest, out error))
        {
            return false;
        }

        var m = new RsDataReplyMessage(offset, length, id, wire & ~RsDataFlags.IntegrityDigest, digest);
        long dataBytes = payloadLength - m.EncodedLength;
        error = m.Flags == (RsDataFlags.Compressed | RsDataFlags.Zeroes) ? "RsDataReply cannot be both COMPRESSED and ZEROES"
            : !m.ExpectsData && digest.LengthBytes > 0 ? "RsDataReply ZEROES carries no digest"
            : !m.ExpectsData ? (dataBytes == 0 ? null : $"RsDataReply ZEROES is followed by {dataBytes} bytes")
            : (m.Flags & RsDataFlags.Compressed) != 0
            ? (dataBytes > 0 && dataBytes < length ? null : $"RsDataReply COMPRESSED payload of {dataBytes} bytes for {length} must be 1..{length - 1}")
            : dataBytes == length ? null : $"RsDataReply of {length} bytes is followed by {dataBytes} bytes";
        message = error is null ? m : default;
        return error is null;
    }
}

/// <summary>csums-alg resync: the target's digest of its copy of the range; 24 bytes + u8 length + digest. P_CSUM_RS_REQUEST.</summary>
public readonly record struct CsumRsRequestMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId, Digest Digest)
    : IPeerMessage<CsumRsRequestMessage>
{
    public const int MinSize = BlockRequestFields.Size + 1 + 4;
    public const int MaxSize = BlockRequestFields.Size + 1 + DigestAlgorithms.MaxLengthBytes;

    public static MessageType Type => MessageType.CsumRsRequest;
    public int EncodedLength => BlockRequestFields.Size + 1 + Digest.LengthBytes;

    public int Write(Span<byte> destination)
    {
        int at = BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);
        return at + WireFields.WriteDigest(destination[at..], Digest); // u8 digest length + digest
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out CsumRsRequestMessage message, out string? error)
    {
        message = default;
        if (!WireFields.MinLength(source, MinSize, Type, out error) ||
            !BlockRequestFields.TryRead(source, Type, 0, out ulong offset, out uint length, out ulong id, out _, out error) ||
            !WireFields.TryReadDigest(source[BlockRequestFields.Size..], Type, out var digest, out error))
        {
            return false;
        }

        message = new CsumRsRequestMessage(offset, length, id, digest);
        return true;
    }
}

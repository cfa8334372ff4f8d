// Online verify messages (DRBD's P_OV_REQUEST, P_OV_REPLY, P_OV_RESULT): the VerifyS side asks
// for digests (verify-alg) of consecutive ranges, the VerifyT side answers with its digest, and the
// result (in sync or not) is reported back so both sides log and mark the same blocks.
namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>Online verify: the VerifyS side asks for the digest of a range (P_OV_REQUEST). Size 24.</summary>
public readonly record struct OvRequestMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId) : IPeerMessage<OvRequestMessage>
{
    public const int Size = BlockRequestFields.Size;

    public static MessageType Type => MessageType.OvRequest;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);

    public static bool TryRead(ReadOnlySpan<byte> source, out OvRequestMessage message, out string? error)
    {
        bool ok = BlockRequestFields.TryReadExact(source, Type, out ulong offset, out uint length, out ulong id, out error);
        message = ok ? new OvRequestMessage(offset, length, id) : default;
        return ok;
    }
}

/// <summary>The digest of a range for verify: 24 bytes + u8 length + digest. P_OV_REPLY.</summary>
public readonly record struct OvReplyMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId, Digest Digest)
    : IPeerMessage<OvReplyMessage>
{
    public const int MinSize = BlockRequestFields.Size + 1 + 4;
    public const int MaxSize = BlockRequestFields.Size + 1 + DigestAlgorithms.MaxLengthBytes;

    public static MessageType Type => MessageType.OvReply;
    public int EncodedLength => BlockRequestFields.Size + 1 + Digest.LengthBytes;

    public int Write(Span<byte> destination)
    {
        int at = BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);
        return at + WireFields.WriteDigest(destination[at..], Digest); // u8 digest length + digest
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out OvReplyMessage message, out string? error)
    {
        message = default;
        if (!WireFields.MinLength(source, MinSize, Type, out error) ||
            !BlockRequestFields.TryRead(source, Type, 0, out ulong offset, out uint length, out ulong id, out _, out error) ||
            !WireFields.TryReadDigest(source[BlockRequestFields.Size..], Type, out var digest, out error))
        {
            return false;
        }

        message = new OvReplyMessage(offset, length, id, digest);
        return true;
    }
}

/// <summary>Verify outcome for a range: in sync, or not (then both sides mark it out of sync). Size 24. P_OV_RESULT.</summary>
public readonly record struct OvResultMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId, bool InSync) : IPeerMessage<OvResultMessage>
{
    public const int Size = BlockRequestFields.Size;
    private const uint InSyncFlag = 1;

    public static MessageType Type => MessageType.OvResult;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) =>
        BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId, InSync ? InSyncFlag : 0); // flags bit 0: in sync

    public static bool TryRead(ReadOnlySpan<byte> source, out OvResultMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error) ||
            !BlockRequestFields.TryRead(source, Type, InSyncFlag, out ulong offset, out uint length, out ulong id, out uint flags, out error))
        {
            return false;
        }

        message = new OvResultMessage(offset, length, id, (flags & InSyncFlag) != 0);
        return true;
    }
}

// The data-integrity-alg digest of a reply that carries data (RsDataReply, DataReply), as DRBD's
// drbd_send_block puts it before the data: a flag in the 24-byte fixed part says one follows, then
// u8 digest length and the digest, then the data. Without the flag the layout is unchanged.
using System.Buffers;
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Peers.Protocol;

internal static class IntegrityTrailer
{
    /// <summary>Bytes the trailer takes: none without a digest, else the length byte and the digest.</summary>
    public static int Length(in Digest digest) => digest.LengthBytes == 0 ? 0 : 1 + digest.LengthBytes;

    /// <summary>Writes the trailer (nothing without a digest); returns its length.</summary>
    public static int Write(Span<byte> destination, in Digest digest) =>
        digest.LengthBytes == 0 ? 0 : WireFields.WriteDigest(destination, digest);

    /// <summary>
    /// How many leading bytes of <paramref name="payload"/> the fixed part and the trailer take, as
    /// far as the payload holds them (the reader then checks them): the flags word at bytes 20..23
    /// says whether a trailer follows; an impossible digest length counts as none (refused later).
    /// </summary>
    public static int HeadLength(in ReadOnlySequence<byte> payload, uint digestFlag, Span<byte> scratch)
    {
        int fixedLength = (int)Math.Min(payload.Length, BlockRequestFields.Size + 1);
        ReadOnlySpan<byte> head = FramePayload.Prefix(payload, fixedLength, scratch);
        if (head.Length <= BlockRequestFields.Size || (BinaryPrimitives.ReadUInt32BigEndian(head[20..]) & digestFlag) == 0)
        {
            return (int)Math.Min(payload.Length, BlockRequestFields.Size);
        }
        int digestLength = WireFields.IsDigestLength(head[BlockRequestFields.Size]) ? head[BlockRequestFields.Size] : 0;
        return (int)Math.Min(payload.Length, BlockRequestFields.Size + 1 + digestLength);
    }

    /// <summary>Reads the trailer after the fixed part of <paramref name="head"/> (flag set), checking it against the payload length.</summary>
    public static bool TryRead(ReadOnlySpan<byte> head, long payloadLength, MessageType type, out Digest digest, out string? error)
    {
        digest = default;
        int digestLength = head.Length > BlockRequestFields.Size ? head[BlockRequestFields.Size] : -1;
        if (!WireFields.IsDigestLength(digestLength))
        {
            error = $"{type} digest length {digestLength} is not that of any digest algorithm";
            return false;
        }
        if (head.Length < BlockRequestFields.Size + 1 + digestLength || payloadLength < BlockRequestFields.Size + 1 + digestLength)
        {
            error = $"{type} with a {digestLength}-byte digest is truncated";
            return false;
        }
        digest = new Digest(head.Slice(BlockRequestFields.Size + 1, digestLength));
        error = null;
        return true;
    }

    /// <summary>Scratch a reader needs for the fixed part and the longest trailer.</summary>
    public const int MaxHeadBytes = BlockRequestFields.Size + 1 + DigestAlgorithms.MaxLengthBytes;
}

using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

// data-integrity-alg, as DRBD: the sender digests the data of every message that carries blocks —
// application writes (Data), resync replies (RsDataReply) and remote reads (DataReply), before any
// compression — and the receiver checks it before using it; a mismatch means the bytes were damaged
// between the two nodes' memories (NIC, driver, a TCP checksum that let a flip through), so the
// block is not written (or returned) and the connection is dropped with DRBD's message; what was
// not written is still out of sync, so the reconnect resyncs it. Both nodes must agree on the
// algorithm (compared at connect), so a message without the expected digest is refused too.
public sealed partial class Replica
{
    /// <summary>The data-integrity-alg agreed with <paramref name="peer"/> (None when not set).</summary>
    private DigestAlgorithm IntegrityAlgorithm(int peer) => links[peer].Settings.Protocol.DataIntegrityAlg;

    private static DataMessage WithIntegrityDigest(in DataMessage message, DigestAlgorithm algorithm, ReadOnlySpan<byte> data) =>
        algorithm == DigestAlgorithm.None || !message.ExpectsData ? message : message with { IntegrityDigest = Digest.Compute(algorithm, data) };

    /// <summary>The digest of <paramref name="data"/> for <paramref name="peer"/>, empty when no data-integrity-alg is agreed.</summary>
    private Digest IntegrityDigestFor(int peer, ReadOnlySpan<byte> data) =>
        IntegrityAlgorithm(peer) is var algorithm && algorithm != DigestAlgorithm.None ? Digest.Compute(algorithm, data) : default;

    /// <summary>Why a received Data message fails the integrity check, or null when it passes (or none is agreed).</summary>
    private string? IntegrityFailure(int peer, in DataMessage data, PooledBlock? bytes) =>
        data.ExpectsData ? IntegrityFailure(peer, MessageType.Data, data.IntegrityDigest, bytes!.Memory.Span, data.OffsetBytes, data.LengthBytes) : null;

    /// <summary>
    /// Why <paramref name="data"/> (uncompressed) received in a <paramref name="type"/> fails the
    /// integrity check against <paramref name="digest"/>, or null when it passes or none is agreed.
    /// </summary>
    private string? IntegrityFailure(int peer, MessageType type, in Digest digest, ReadOnlySpan<byte> data, ulong offsetBytes, uint lengthBytes)
    {
        var algorithm = IntegrityAlgorithm(peer);
        if (algorithm == DigestAlgorithm.None)
        {
            return null;
        }
        if (digest.LengthBytes != DigestAlgorithms.LengthBytes(algorithm))
        {
            return $"a {type} message without the agreed data-integrity-alg {DigestAlgorithms.Name(algorithm)} digest";
        }
        return Digest.Compute(algorithm, data).Equals(digest)
            ? null
            : $"Digest integrity check FAILED: {offsetBytes / 512}s +{lengthBytes}";
    }
}

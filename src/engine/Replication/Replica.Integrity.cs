using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

// data-integrity-alg, as DRBD: the sender digests every application write's data (before any
// compression) and the receiver checks it before writing; a mismatch means the bytes were damaged
// between the two nodes' memories (NIC, driver, a TCP checksum that let a flip through), so the
// block is not written and the connection is dropped with DRBD's message; the Primary's transfer
// log marks the write out of sync, and the reconnect resyncs it. Both nodes must agree on the
// algorithm (compared at connect), so a Data frame without the expected digest is refused too.
public sealed partial class Replica
{
    /// <summary>The data-integrity-alg agreed with <paramref name="peer"/> (None when not set).</summary>
    private DigestAlgorithm IntegrityAlgorithm(int peer) => links[peer].Settings.Protocol.DataIntegrityAlg;

    private static DataMessage WithIntegrityDigest(in DataMessage message, DigestAlgorithm algorithm, ReadOnlySpan<byte> data) =>
        algorithm == DigestAlgorithm.None || !message.ExpectsData ? message : message with { IntegrityDigest = Digest.Compute(algorithm, data) };

    /// <summary>Why a received Data message fails the integrity check, or null when it passes (or none is agreed).</summary>
    private string? IntegrityFailure(int peer, in DataMessage data, PooledBlock? bytes)
    {
        var algorithm = IntegrityAlgorithm(peer);
        if (algorithm == DigestAlgorithm.None || !data.ExpectsData)
        {
            return null;
        }
        if (data.IntegrityDigest.LengthBytes != DigestAlgorithms.LengthBytes(algorithm))
        {
            return $"a Data message without the agreed data-integrity-alg {DigestAlgorithms.Name(algorithm)} digest";
        }
        return Digest.Compute(algorithm, bytes!.Memory.Span).Equals(data.IntegrityDigest)
            ? null
            : $"Digest integrity check FAILED: {data.OffsetBytes / 512}s +{data.LengthBytes}";
    }
}

using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

// Checksum-based resync (csums-alg), as DRBD does it: the SyncTarget reads its own copy of each
// block it would request, and sends its digest (CsumRsRequest) instead of RsDataRequest; the
// SyncSource reads its copy and answers RsIsInSync when the digests match (nothing is transferred)
// or RsDataReply as usual. Worth it when the copies are mostly the same already (after a crash, a
// full sync of disks that were cloned). Here the target acknowledges an RsIsInSync with
// RsWriteAck, so the source clears its bits on the one path it clears them for written blocks.
public sealed partial class Replica
{
    /// <summary>With csums-alg a request is one bitmap block, so one differing block costs 4 KiB on the wire, not a whole request.</summary>
    public const int CsumsRequestBytes = MetadataLayout.BytesPerBit;

    /// <summary>
    /// Whether a resync this node is the target of, starting now, compares checksums: csums-alg is
    /// set and, with csums-after-crash-only, this node's Primary crashed (DRBD's use_checksum_based_resync).
    /// </summary>
    private bool UsesCsums(int peer, ReplicaVolume volume) => links[peer].Settings.Protocol.CsumsAlg != DigestAlgorithm.None
        && (!links[peer].Settings.CsumsAfterCrashOnly || volume.Flags.HasFlag(MetadataFlags.CrashedPrimary));

    /// <summary>Target: our copy of a block to resync was read; send its digest, or ask for the data if it cannot be read.</summary>
    private void CsumReadDone(CsumReadIo read, bool succeeded, ReadOnlySpan<byte> data)
    {
        if (!syncs.TryGetValue((read.Peer, read.Volume), out var sync) || !ReferenceEquals(sync, read.Sync)
            || !sync.Planner!.TryGetRequest(read.Request.Id, out var current) || !ReferenceEquals(current, read.Request))
        {
            return; // the resync (or its connection) is gone; the planner asks again on the next one
        }
        var request = read.Request;
        io.Send(read.Peer, succeeded
            ? Frame((ushort)read.Volume, new CsumRsRequestMessage((ulong)request.OffsetBytes, (uint)request.LengthBytes, (ulong)request.Id,
                Digest.Compute(links[read.Peer].Settings.Protocol.CsumsAlg, data)))
            : Frame((ushort)read.Volume, new RsDataRequestMessage((ulong)request.OffsetBytes, (uint)request.LengthBytes, (ulong)request.Id)));
    }

    /// <summary>DRBD's line at the end of a checksum-based resync: how much the digests spared.</summary>
    private void LogCsumsSummary(int peer, ReplicaVolume volume, SyncState sync, long totalBits)
    {
        if (!sync.UsesCsums || totalBits == 0)
        {
            return;
        }
        long sameBits = sync.SameCsumBits;
        long kibPerBit = MetadataLayout.BytesPerBit / 1024;
        long percent = sameBits * 100 / totalBits;
        io.Log($"{Subject(peer)}/{volume.Number}: {percent} % had equal checksums, eliminated: {sameBits * kibPerBit}K; "
            + $"transferred {(totalBits - sameBits) * kibPerBit}K total {totalBits * kibPerBit}K");
    }

    /// <summary>Target: a read of our copy of <paramref name="Request"/>, to send its digest.</summary>
    private sealed record CsumReadIo(int Peer, SyncState Sync, int Volume, ResyncRequest Request) : PendingIo;
}

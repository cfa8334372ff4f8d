using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// DRBD's device-size rules (drbd_new_dev_size, receive_sizes): the size a volume exports and
/// replicates is the smallest usable size of the nodes holding its data, remembered in the
/// metadata as la-size (last agreed size), so a node that comes up alone keeps exporting it. It
/// grows only when every node can hold more, and a node with data refuses to shrink when a smaller
/// peer connects. Sizes are bytes, whole 4 KiB blocks; 0 means "no disk" (a Diskless peer) and
/// never limits anything (DRBD's min_not_zero).
/// </summary>
public static class SizeAgreement
{
    /// <summary>
    /// The agreed size with a peer: the smallest of this node's usable size, the peer's, and the
    /// limit the other peers set (<see cref="OtherPeersLimit"/>), ignoring zeros.
    /// </summary>
    public static long Agree(long localUsableBytes, long peerUsableBytes, long otherPeersLimitBytes) =>
        MinNotZero(MinNotZero(localUsableBytes, peerUsableBytes), otherPeersLimitBytes);

    /// <summary>
    /// What the peers other than the one at hand allow: the usable size of each connected one; while
    /// any known peer is not connected, no more than the last agreed size (DRBD grows only what every
    /// node was seen to hold). 0 when nothing limits.
    /// </summary>
    public static long OtherPeersLimit(IEnumerable<long?> otherPeersUsableBytes, long lastAgreedBytes)
    {
        long limit = 0;
        foreach (long? usable in otherPeersUsableBytes)
        {
            limit = MinNotZero(limit, usable ?? lastAgreedBytes);
        }
        return limit;
    }

    /// <summary>
    /// "Never shrink a device with usable data during connect": a disk that is UpToDate, Consistent
    /// or Outdated keeps its size; an Inconsistent (or just created) one may take the smaller one.
    /// </summary>
    public static bool RefusesShrink(long agreedBytes, long currentBytes, DiskState disk) =>
        agreedBytes > 0 && agreedBytes < currentBytes && disk is DiskState.UpToDate or DiskState.Consistent or DiskState.Outdated;

    /// <summary>
    /// Who syncs the new area after both grew (DRBD's resync_after_online_grow): a Primary, against a
    /// Secondary; otherwise the lower node-id.
    /// </summary>
    public static bool IsGrowSyncSource(Role self, Role peer, int selfNodeId, int peerNodeId) =>
        (self == Role.Primary && peer != Role.Primary) || ((self == Role.Primary) == (peer == Role.Primary) && selfNodeId < peerNodeId);

    /// <summary>The smaller of two sizes where 0 means unknown.</summary>
    public static long MinNotZero(long a, long b) => a == 0 ? b : b == 0 ? a : Math.Min(a, b);
}

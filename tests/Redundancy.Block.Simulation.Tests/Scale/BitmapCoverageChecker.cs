using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// Every block that differs between the two disks is marked out of sync in a bitmap (either
/// node's slot for the other), so a resync can repair it. Checked when no application write is in
/// flight and both nodes agree on whether they are connected (a node that has not yet noticed its
/// peer's crash has not yet marked what the crash lost). Under protocol A or B an acknowledged write
/// may still be on its way to the peer's disk: the check waits until neither node's transfer log
/// holds a write the peer has not confirmed with a barrier ack (a lost connection marks those).
/// </summary>
public static class BitmapCoverageChecker
{
    /// <summary>True when the check ran.</summary>
    public static bool Check(ScaleCluster cluster)
    {
        var (a, b) = (cluster.Alpha, cluster.Beta);
        if (!a.Up || !b.Up || cluster.PendingWrites > 0 || !a.Volume.HasLocalData || !b.Volume.HasLocalData
            || (a.Replica.Links[b.NodeId].State == ConnectionState.Connected) != (b.Replica.Links[a.NodeId].State == ConnectionState.Connected)
            || (cluster.Ledger.Asynchronous && (a.Replica.HoldsUnconfirmedWrites || b.Replica.HoldsUnconfirmedWrites)))
        {
            return false;
        }
        var bitmapA = a.Volume.Bitmaps.Bitmap(a.Volume.SlotOfPeer[b.NodeId]);
        var bitmapB = b.Volume.Bitmaps.Bitmap(b.Volume.SlotOfPeer[a.NodeId]);
        var diskA = a.Disk.Contents;
        var diskB = b.Disk.Contents;
        foreach (long block in cluster.Ledger.Blocks)
        {
            int offset = (int)(block * WriteLedger.BlockBytes);
            if (!diskA.Slice(offset, WriteLedger.BlockBytes).SequenceEqual(diskB.Slice(offset, WriteLedger.BlockBytes))
                && !bitmapA.IsSet(block) && !bitmapB.IsSet(block))
            {
                throw new SimulationViolation("bitmap-coverage",
                    $"block {block} differs between {a.Name} ({a.Volume.Disk}) and {b.Name} ({b.Volume.Disk}) but neither bitmap marks it");
            }
        }
        return true;
    }
}

using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// No acknowledged write is missing from an UpToDate node: each block of its disk holds the newest
/// write acknowledged in the node's data generation (or what the generation started from), or a
/// write issued after it. A Consistent node (restarted or re-attached, not yet confirmed by a peer)
/// is checked once it is UpToDate again: by a resync, by a handshake that found nothing to sync
/// (where a lost write shows), or by a promotion, which starts a new generation from its disk.
/// Under protocol A or B a node owes only the writes it acknowledged itself
/// (<see cref="WriteLedger.OwedBy"/>).
/// </summary>
public static class AckChecker
{
    /// <summary>Checks every node; returns how many (node, block) pairs had a required write.</summary>
    public static long Check(ScaleCluster cluster)
    {
        long checkedPairs = 0;
        foreach (var node in cluster.Nodes)
        {
            if (!node.Up || node.Volume.Disk != DiskState.UpToDate)
            {
                continue;
            }
            ulong uuid = node.Volume.Ids.Current;
            foreach (long block in cluster.Ledger.Blocks)
            {
                var actual = node.Block(block);
                var problem = cluster.Ledger.Check(block, uuid, node.Name, actual, out bool required);
                checkedPairs += required ? 1 : 0;
                if (problem is not null)
                {
                    throw new SimulationViolation("acknowledged-write", $"{node.Name} ({node.Replica.Role}, {node.Volume.Disk}, generation {uuid:X16}): {problem}");
                }
            }
        }
        return checkedPairs;
    }
}

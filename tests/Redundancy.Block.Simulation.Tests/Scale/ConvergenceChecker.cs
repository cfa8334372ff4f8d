namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// After healing and resync, the UpToDate replicas are byte-identical over the whole disk (not
/// just the blocks the application wrote).
/// </summary>
public static class ConvergenceChecker
{
    public static void Check(ScaleCluster cluster)
    {
        var a = cluster.Alpha.Disk.Contents;
        var b = cluster.Beta.Disk.Contents;
        if (!a.SequenceEqual(b))
        {
            int first = 0;
            while (a[first] == b[first])
            {
                first++;
            }
            throw new SimulationViolation("byte-identical", $"the UpToDate replicas differ, first at byte {first} (block {first / WriteLedger.BlockBytes})");
        }
    }
}

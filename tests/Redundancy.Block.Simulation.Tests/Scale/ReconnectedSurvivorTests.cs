using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// DRBD 9's "reconnected" rule: the Primary crashes and comes back crashed-primary while its peer
/// only lost the connection and kept running, neither promoted meanwhile (equal current UUIDs). With
/// protocol C the survivor holds every write the Primary acknowledged, and the crashed Primary's disk
/// may have lost some of them from its volatile cache: the survivor is the sync source, over the
/// crashed Primary's activity-log extents. DRBD 8.4's rule 40 (and this engine before) synced from
/// the crashed Primary and overwrote the survivor's copy of such a write.
/// </summary>
public class ReconnectedSurvivorTests
{
    private const int Seed = 11;
    private const long Block = 9;

    [Fact]
    public void A_crashed_Primary_gets_back_the_acknowledged_write_its_disk_lost_from_the_survivor()
    {
        var (cluster, _) = ScaleRun.Started(Seed);
        var (alpha, beta) = (cluster.Alpha, cluster.Beta);
        cluster.Trace = [];
        var data = new byte[WriteLedger.BlockBytes];
        cluster.Random.Fill(data);
        cluster.Write(alpha, Block, data);
        Assert.True(cluster.RunUntil(() => cluster.PendingWrites == 0, 10_000), "the write completes");
        Assert.True(cluster.Ledger.LastIssued!.Acknowledged);
        Assert.True(beta.Block(Block).SequenceEqual(data), "protocol C: the acknowledged write is on the peer");

        cluster.Crash(alpha, tear: false);
        Assert.False(alpha.Block(Block).SequenceEqual(data), "the premise: the crash took the unflushed write from alpha's disk");
        Assert.True(cluster.RunUntil(() => beta.Replica.Links[alpha.NodeId].State != ConnectionState.Connected, 10_000));
        Assert.Equal(Role.Secondary, beta.Replica.Role);

        alpha.Restart();
        Assert.True(alpha.Volume.Flags.HasFlag(MetadataFlags.CrashedPrimary));
        Assert.True(cluster.RunUntil(() => ScaleRun.InSync(cluster), 30_000), ScaleRun.States(cluster));
        ConvergenceChecker.Check(cluster);
        Assert.True(alpha.Block(Block).SequenceEqual(data), "the resync from the survivor restored the write on alpha");
        Assert.True(beta.Block(Block).SequenceEqual(data), "the survivor kept the acknowledged write");
        Assert.True(AckChecker.Check(cluster) > 0);
        Assert.Contains(cluster.Trace, line => line.Contains("beta| ") && line.Contains("uuid_compare()=1 by rule 42"));
    }
}

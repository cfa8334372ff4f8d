using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// A Primary that demotes before its peer confirmed its last write (no BarrierAck yet) keeps the
/// primary indicator on disk until the peer has: if both then crash, the peer losing the write from
/// its disk cache, the old Primary comes back crashed-primary and its activity log resyncs the
/// write (seeds 12719, 17541, 17561, 28546 lost it: a clean demotion, then both crashes, left it on
/// one disk and in no bitmap).
/// </summary>
public class DemotionIndicatorTests
{
    private const int Seed = 7;
    private const long Block = 6;

    [Fact]
    public void A_demotion_before_the_peer_confirmed_the_last_write_keeps_the_primary_indicator_until_it_does()
    {
        var (cluster, op) = ScaleRun.Started(Seed);
        var alpha = cluster.Alpha;
        WriteUntilAcknowledged(cluster, 4);
        cluster.RunUntil(cluster.Scheduler.NowMs + 50);
        Assert.False(alpha.Replica.HoldsUnconfirmedWrites, "a quiet pair: every write BarrierAcked");

        WriteUntilAcknowledged(cluster, Block);
        Assert.True(alpha.Replica.HoldsUnconfirmedWrites, "the write is acknowledged, its epoch not yet BarrierAcked");
        Assert.Equal(StateChangeResult.Success, op.Secondary(alpha));
        Assert.True(alpha.PersistedSuperblock.Flags.HasFlag(MetadataFlags.PrimaryInd));

        Assert.True(cluster.RunUntil(() => !alpha.PersistedSuperblock.Flags.HasFlag(MetadataFlags.PrimaryInd), 1_000), "the BarrierAck releases the indicator");
        Assert.False(alpha.Replica.HoldsUnconfirmedWrites);
        Assert.Equal(Role.Secondary, alpha.Replica.Role);
    }

    [Fact]
    public void Both_crashing_after_such_a_demotion_resync_the_write_the_peer_lost()
    {
        var (cluster, op) = ScaleRun.Started(Seed);
        var (alpha, beta) = (cluster.Alpha, cluster.Beta);
        WriteUntilAcknowledged(cluster, 4);
        cluster.RunUntil(cluster.Scheduler.NowMs + 50);

        var record = WriteUntilAcknowledged(cluster, Block);
        cluster.Network.Partition("alpha", "beta"); // the Barrier waits: beta never flushes the write
        Assert.Equal(StateChangeResult.Success, op.Secondary(alpha));
        cluster.RunUntil(cluster.Scheduler.NowMs + 100);
        Assert.True(alpha.PersistedSuperblock.Flags.HasFlag(MetadataFlags.PrimaryInd), "unconfirmed: the indicator stays");
        cluster.Crash(alpha, tear: false);
        cluster.Crash(beta, tear: false);
        Assert.False(beta.Block(Block).SequenceEqual(record.Data), "the premise: beta's crash took the unflushed write");

        cluster.Network.HealAll();
        alpha.Restart();
        beta.Restart();
        Assert.True(alpha.Volume.Flags.HasFlag(MetadataFlags.CrashedPrimary));
        Assert.True(alpha.Volume.Bitmaps.Bitmap(alpha.Volume.SlotOfPeer[beta.NodeId]).IsSet(Block), "the activity log's extents are marked");
        Assert.True(BitmapCoverageChecker.Check(cluster));

        Assert.True(cluster.RunUntil(() => ScaleRun.InSync(cluster), 30_000), ScaleRun.States(cluster));
        ConvergenceChecker.Check(cluster);
        Assert.True(beta.Block(Block).SequenceEqual(record.Data), "the resync brought the write back to beta");
        Assert.True(AckChecker.Check(cluster) > 0);
    }

    private static WriteRecord WriteUntilAcknowledged(ScaleCluster cluster, long block)
    {
        var data = new byte[WriteLedger.BlockBytes];
        cluster.Random.Fill(data);
        cluster.Write(cluster.Alpha, block, data);
        Assert.True(cluster.RunUntil(() => cluster.PendingWrites == 0, 10_000), "the write completes");
        var record = cluster.Ledger.LastIssued!;
        Assert.True(record.Acknowledged);
        return record;
    }
}

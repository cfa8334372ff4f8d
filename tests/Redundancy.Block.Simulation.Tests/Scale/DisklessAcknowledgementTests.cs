using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// A Diskless Primary's write is acknowledged by its peer's WriteAck (written, not flushed). When the
/// peer crashes after sending it and the ack arrives later, the crash may have taken the write from
/// the peer's disk cache: forgiven, as any unflushed write a crash took (seeds 35746, 40286, 44991
/// failed the acknowledged-write checker so). A peer that never wrote it is still caught.
/// </summary>
public class DisklessAcknowledgementTests
{
    private const int Seed = 7;
    private const long Block = 6;

    [Fact]
    public void A_write_acknowledged_after_the_peer_crash_took_it_from_the_disk_cache_is_forgiven()
    {
        var (cluster, op) = DisklessAlpha();
        var beta = cluster.Beta;
        beta.Disk.FailFlushes = true; // the agent's bitmap write-out (which flushes the data disk first) waits
        var record = WriteWithAckHeld(cluster, op);
        Assert.True(beta.Block(Block).SequenceEqual(record.Data), "the premise: beta wrote it (unflushed) and acknowledged it");

        cluster.Crash(beta, tear: false);
        Assert.False(beta.Block(Block).SequenceEqual(record.Data), "the premise: the crash took the unflushed write");
        cluster.Network.HealAll();
        Assert.True(cluster.RunUntil(() => cluster.PendingWrites == 0, 10_000), "the held ack arrives");

        Assert.True(record.Acknowledged, "beta's WriteAck, sent before its crash, completes the write");
        Assert.True(record.IsForgiven, "its only copy was in the crashed disk's cache");
        AckChecker.Check(cluster);
    }

    [Fact]
    public void A_write_acknowledged_by_a_crashed_peer_that_never_wrote_it_is_caught()
    {
        var (cluster, op) = DisklessAlpha();
        var beta = cluster.Beta;
        beta.Disk.LoseWritesSilently = true; // the test double: acknowledges, stores nothing
        var record = WriteWithAckHeld(cluster, op);

        cluster.Crash(beta, tear: false);
        cluster.Network.HealAll();
        var violation = Assert.Throws<SimulationViolation>(() => cluster.RunUntil(() => cluster.PendingWrites == 0, 10_000));
        Assert.Equal("acknowledged-write", violation.Checker);
        Assert.Contains($"write #{record.Sequence}", violation.Detail, StringComparison.Ordinal);
    }

    /// <summary>alpha's disk fails under a write (on-io-error detach): a Diskless Primary on beta's disk.</summary>
    private static (ScaleCluster Cluster, ScaleOperator Operator) DisklessAlpha()
    {
        var (cluster, op) = ScaleRun.Started(Seed);
        var alpha = cluster.Alpha;
        alpha.Disk.FailWrites = true;
        Write(cluster, 4);
        Assert.True(cluster.RunUntil(() => cluster.PendingWrites == 0 && alpha.Volume.Disk == DiskState.Diskless, 10_000), "alpha's disk fails");
        alpha.Disk.FailWrites = false;
        cluster.RunUntil(cluster.Scheduler.NowMs + 50);
        Assert.Equal(Role.Primary, alpha.Replica.Role);
        return (cluster, op);
    }

    /// <summary>A write whose ack beta sends into a one-way partition; beta then disconnects (its ack stays in flight).</summary>
    private static WriteRecord WriteWithAckHeld(ScaleCluster cluster, ScaleOperator op)
    {
        cluster.Network.Partition("beta", "alpha", oneWay: true);
        var record = Write(cluster, Block);
        cluster.RunUntil(cluster.Scheduler.NowMs + 50);
        Assert.Equal(1, cluster.PendingWrites);
        op.Disconnect(cluster.Beta);
        return record;
    }

    private static WriteRecord Write(ScaleCluster cluster, long block)
    {
        var data = new byte[WriteLedger.BlockBytes];
        cluster.Random.Fill(data);
        cluster.Write(cluster.Alpha, block, data);
        return cluster.Ledger.LastIssued!;
    }
}

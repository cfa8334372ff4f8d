using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// Every checker of the simulation at scale catches a violation planted on purpose (a lying disk
/// that drops an acknowledged write, a role set behind the state machine's back, a block changed
/// behind the bitmap's back), and each passes on the same cluster before: none can pass vacuously.
/// </summary>
public class ScaleCheckerTests
{
    private const int Seed = 7;

    [Fact]
    public void Acknowledged_write_checker_catches_a_secondary_that_drops_an_acknowledged_write()
    {
        var (cluster, _) = ScaleRun.Started(Seed);
        WriteAndWait(cluster, block: 3);
        Assert.True(AckChecker.Check(cluster) >= 2, "both UpToDate nodes owe the acknowledged write");

        cluster.Beta.Disk.LoseWritesSilently = true; // the test double: acknowledges, stores nothing
        var record = WriteAndWait(cluster, block: 3);
        Assert.True(record.Acknowledged, "protocol C acknowledged the write the Secondary's disk dropped");

        var violation = Assert.Throws<SimulationViolation>(() => AckChecker.Check(cluster));
        Assert.Equal("acknowledged-write", violation.Checker);
        Assert.Contains("beta", violation.Detail, StringComparison.Ordinal);
        Assert.Contains($"write #{record.Sequence}", violation.Detail, StringComparison.Ordinal);
    }

    /// <summary>
    /// Under protocol A the Secondary does not owe a write when it is acknowledged, but once the
    /// barrier ack confirmed it, a copy that differs without a bitmap bit is caught.
    /// </summary>
    [Fact]
    public void Under_protocol_A_a_write_the_secondary_dropped_is_caught_by_the_bitmap_checker()
    {
        var (cluster, _) = ScaleRun.Started(Seed, protocol: ReplicationProtocol.A);
        cluster.Beta.Disk.LoseWritesSilently = true;
        var record = WriteAndWait(cluster, block: 3);
        Assert.True(record.Acknowledged);
        Assert.True(AckChecker.Check(cluster) >= 1, "alpha owes the write it acknowledged; beta does not");
        Assert.True(cluster.RunUntil(() => !cluster.Alpha.Replica.HoldsUnconfirmedWrites, 10_000), "the barrier ack confirms the write");

        var violation = Assert.Throws<SimulationViolation>(() => BitmapCoverageChecker.Check(cluster));
        Assert.Equal("bitmap-coverage", violation.Checker);
        Assert.Contains("block 3", violation.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Under_protocol_A_the_acknowledged_write_checker_catches_a_write_lost_on_the_primary_itself()
    {
        var (cluster, _) = ScaleRun.Started(Seed, protocol: ReplicationProtocol.A);
        cluster.Alpha.Disk.LoseWritesSilently = true;
        WriteAndWait(cluster, block: 5);
        var violation = Assert.Throws<SimulationViolation>(() => AckChecker.Check(cluster));
        Assert.Contains("alpha", violation.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Acknowledged_write_checker_catches_a_write_lost_on_the_primary_itself()
    {
        var (cluster, _) = ScaleRun.Started(Seed);
        cluster.Alpha.Disk.LoseWritesSilently = true;
        WriteAndWait(cluster, block: 5);
        var violation = Assert.Throws<SimulationViolation>(() => AckChecker.Check(cluster));
        Assert.Contains("alpha", violation.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_primaries_checker_catches_a_promotion_behind_the_state_machine()
    {
        var (cluster, _) = ScaleRun.Started(Seed);
        PrimaryChecker.Check(cluster); // alpha alone is Primary
        cluster.Beta.Replica.SetRole(Role.Primary);
        var violation = Assert.Throws<SimulationViolation>(() => PrimaryChecker.Check(cluster));
        Assert.Equal("two-primaries", violation.Checker);
    }

    [Fact]
    public void Two_primaries_checker_allows_two_connected_Primaries_only_with_allow_two_primaries()
    {
        var (cluster, _) = ScaleRun.Started(Seed, dualPrimary: true);
        Assert.Equal(Role.Primary, cluster.Alpha.Replica.Role);
        Assert.Equal(Role.Primary, cluster.Beta.Replica.Role);
        Assert.Equal(ConnectionState.Connected, cluster.Alpha.Replica.Links[1].State);
        PrimaryChecker.Check(cluster); // dual-primary: allowed

        // The same two connected Primaries on the single-Primary configuration are caught.
        var (single, _) = ScaleRun.Started(Seed);
        single.Beta.Replica.SetRole(Role.Primary);
        Assert.Equal("two-primaries", Assert.Throws<SimulationViolation>(() => PrimaryChecker.Check(single)).Checker);
    }

    [Fact]
    public void Dual_primary_acknowledged_write_checker_catches_an_older_write_landing_over_a_newer_one()
    {
        var (cluster, _) = ScaleRun.Started(Seed, dualPrimary: true);
        var older = WriteAndWait(cluster, block: 3, cluster.Alpha);
        var newer = WriteAndWait(cluster, block: 3, cluster.Beta); // issued after alpha's was acknowledged
        Assert.True(older.Acknowledged && newer.Acknowledged);
        Assert.True(AckChecker.Check(cluster) >= 2);
        ConvergenceChecker.Check(cluster);

        // Alpha's older write lands again over beta's on both disks (a replayed or reordered peer write):
        // the replicas agree, yet the write acknowledged later is gone.
        foreach (var node in cluster.Nodes)
        {
            Assert.True(node.Disk.WriteAsync(3 * WriteLedger.BlockBytes, older.Data, fua: false).IsCompletedSuccessfully);
        }
        ConvergenceChecker.Check(cluster);
        var violation = Assert.Throws<SimulationViolation>(() => AckChecker.Check(cluster));
        Assert.Equal("acknowledged-write", violation.Checker);
        Assert.Contains($"write #{newer.Sequence} by beta", violation.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Dual_primary_acknowledged_write_checker_allows_either_of_two_concurrent_writes_and_nothing_older()
    {
        var (cluster, _) = ScaleRun.Started(Seed, dualPrimary: true);
        var before = WriteAndWait(cluster, block: 4, cluster.Alpha);
        var fromAlpha = new byte[WriteLedger.BlockBytes];
        var fromBeta = new byte[WriteLedger.BlockBytes];
        cluster.Random.Fill(fromAlpha);
        cluster.Random.Fill(fromBeta);
        cluster.Write(cluster.Alpha, 4, fromAlpha);
        cluster.Write(cluster.Beta, 4, fromBeta);
        Assert.True(cluster.RunUntil(() => cluster.PendingWrites == 0, 10_000), "both writes complete");
        cluster.RunUntil(cluster.Scheduler.NowMs + 50);
        Assert.True(AckChecker.Check(cluster) >= 2);
        ConvergenceChecker.Check(cluster); // conflict resolution: both replicas hold the same one

        foreach (var data in new[] { fromAlpha, fromBeta })
        {
            foreach (var node in cluster.Nodes)
            {
                Assert.True(node.Disk.WriteAsync(4 * WriteLedger.BlockBytes, data, fua: false).IsCompletedSuccessfully);
            }
            Assert.True(AckChecker.Check(cluster) >= 2); // either concurrent write may win
        }
        foreach (var node in cluster.Nodes)
        {
            Assert.True(node.Disk.WriteAsync(4 * WriteLedger.BlockBytes, before.Data, fua: false).IsCompletedSuccessfully);
        }
        var violation = Assert.Throws<SimulationViolation>(() => AckChecker.Check(cluster));
        Assert.Equal("acknowledged-write", violation.Checker);

        // And replicas that settled on different concurrent writes are caught by the convergence checker.
        Assert.True(cluster.Alpha.Disk.WriteAsync(4 * WriteLedger.BlockBytes, fromAlpha, fua: false).IsCompletedSuccessfully);
        Assert.True(cluster.Beta.Disk.WriteAsync(4 * WriteLedger.BlockBytes, fromBeta, fua: false).IsCompletedSuccessfully);
        AckChecker.Check(cluster);
        Assert.Equal("byte-identical", Assert.Throws<SimulationViolation>(() => ConvergenceChecker.Check(cluster)).Checker);
    }

    [Fact]
    public void Dual_primary_acknowledged_write_checker_catches_a_primary_that_drops_the_other_primarys_write()
    {
        var (cluster, _) = ScaleRun.Started(Seed, dualPrimary: true);
        cluster.Alpha.Disk.LoseWritesSilently = true; // alpha acknowledges beta's write to beta, stores nothing
        var record = WriteAndWait(cluster, block: 6, cluster.Beta);
        Assert.True(record.Acknowledged);
        var violation = Assert.Throws<SimulationViolation>(() => AckChecker.Check(cluster));
        Assert.Contains("alpha", violation.Detail, StringComparison.Ordinal);
        Assert.Contains($"write #{record.Sequence} by beta", violation.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Dual_primary_diskless_acknowledgement_check_catches_a_write_its_peer_dropped()
    {
        var (cluster, _) = ScaleRun.Started(Seed, dualPrimary: true);
        cluster.Alpha.Disk.FailWrites = true;
        var data = new byte[WriteLedger.BlockBytes];
        cluster.Write(cluster.Alpha, 1, data);
        Assert.True(cluster.RunUntil(() => cluster.Alpha.Volume.Disk == DiskState.Diskless && cluster.PendingWrites == 0, 10_000), "alpha's disk fails");
        Assert.Equal(Role.Primary, cluster.Alpha.Replica.Role);
        Assert.Equal(Role.Primary, cluster.Beta.Replica.Role);

        // No write of beta's to the block is in flight, so nothing superseded alpha's: beta must hold it.
        cluster.Beta.Disk.LoseWritesSilently = true;
        cluster.Random.Fill(data);
        cluster.Write(cluster.Alpha, 7, data);
        var violation = Assert.Throws<SimulationViolation>(() => cluster.RunUntil(() => cluster.PendingWrites == 0, 10_000));
        Assert.Equal("acknowledged-write", violation.Checker);
        Assert.Contains("without a disk, and neither disk holds it", violation.Detail, StringComparison.Ordinal);
    }

    [Theory]
    // A crashed Primary's rule-40 resync takes back the other Primary's unflushed write of its generation
    // that the crash took from its disk: only with two writers, only unflushed, only that generation.
    [InlineData(true, false, true, true)]
    [InlineData(false, false, true, false)] // one writer: only the crashed node's own writes
    [InlineData(true, true, true, false)]   // flushed: it survived on the crashed disk
    [InlineData(true, false, false, false)] // another generation: rule 40 does not compare it
    public void Dual_primary_crashed_primary_rollback_forgives_only_the_other_primarys_unflushed_writes(
        bool concurrentWriters, bool flushed, bool sameGeneration, bool forgiven)
    {
        const ulong generation = 0x5CA1_E000_0000_0000, other = 0x1234_5678_9ABC_DEF0;
        var ledger = new WriteLedger { ConcurrentWriters = concurrentWriters };
        ledger.Root(generation);
        var record = ledger.Issue("beta", 8, new byte[WriteLedger.BlockBytes]);
        ledger.Complete(record, succeeded: true, generation | 1);
        record.Durable = flushed;
        ledger.Lost("alpha", flushedSurvive: true, crashedPrimary: true, heldElsewhere: (_, _, _) => true, stillOnDisk: (_, _) => false,
            crashedGeneration: sameGeneration ? generation | 1 : other);
        Assert.Equal(forgiven, record.IsForgiven);
    }

    [Fact]
    public void Operator_refuses_a_second_primary_for_the_right_reason()
    {
        var (cluster, op) = ScaleRun.Started(Seed);
        cluster.RunUntil(cluster.Scheduler.NowMs + 200); // beta has heard that alpha is Primary
        StateChangeResult? result = null;
        op.Primary(cluster.Beta, force: false, r => result = r);
        Assert.Equal(StateChangeResult.TwoPrimaries, result);
        Assert.Equal(Role.Secondary, cluster.Beta.Replica.Role);
    }

    [Fact]
    public void Bitmap_coverage_checker_catches_a_block_changed_behind_the_bitmap()
    {
        var (cluster, _) = ScaleRun.Started(Seed);
        WriteAndWait(cluster, block: 9);
        Assert.True(BitmapCoverageChecker.Check(cluster), "the check runs on a quiet, connected pair");

        var other = new byte[WriteLedger.BlockBytes];
        other.AsSpan().Fill(0xA5);
        Assert.True(cluster.Beta.Disk.WriteAsync(9 * WriteLedger.BlockBytes, other, fua: false).IsCompletedSuccessfully);
        var violation = Assert.Throws<SimulationViolation>(() => BitmapCoverageChecker.Check(cluster));
        Assert.Equal("bitmap-coverage", violation.Checker);

        // Marked in a bitmap, the same difference is legitimate (a resync will repair it).
        cluster.Alpha.Volume.Bitmaps.SetBits(cluster.Alpha.Volume.SlotOfPeer[1], 9, 1);
        Assert.True(BitmapCoverageChecker.Check(cluster));
    }

    [Fact]
    public void Transition_checker_catches_a_role_change_no_operator_made()
    {
        var (cluster, _) = ScaleRun.Started(Seed);
        cluster.AfterEvent();
        cluster.Alpha.Replica.SetRole(Role.Secondary);
        var violation = Assert.Throws<SimulationViolation>(cluster.AfterEvent);
        Assert.Equal("state-transition", violation.Checker);
        Assert.Contains("role changed", violation.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Transition_checker_catches_an_inconsistent_disk_made_up_to_date_without_a_resync()
    {
        var (cluster, _) = ScaleRun.Started(Seed);
        var beta = cluster.Beta;
        beta.Replica.AdoptLocal(0, beta.Volume.Ids, beta.Volume.Flags, DiskState.Inconsistent);
        cluster.AfterEvent(); // UpToDate -> Inconsistent is legal (invalidate, a resync starting)
        beta.Replica.AdoptLocal(0, beta.Volume.Ids, beta.Volume.Flags, DiskState.UpToDate);
        var violation = Assert.Throws<SimulationViolation>(cluster.AfterEvent);
        Assert.Contains("Inconsistent became UpToDate without a finished resync", violation.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void Convergence_checker_catches_replicas_that_differ()
    {
        var (cluster, _) = ScaleRun.Started(Seed);
        WriteAndWait(cluster, block: 2);
        ConvergenceChecker.Check(cluster);
        Assert.True(cluster.Alpha.Disk.WriteAsync(100 * WriteLedger.BlockBytes + 512, new byte[] { 1 }, fua: false).IsCompletedSuccessfully);
        var violation = Assert.Throws<SimulationViolation>(() => ConvergenceChecker.Check(cluster));
        Assert.Equal("byte-identical", violation.Checker);
        Assert.Contains("block 100", violation.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_seed_replays_exactly()
    {
        var first = ScaleRun.Run(Seed, steps: 60);
        var second = ScaleRun.Run(Seed, steps: 60);
        Assert.Null(first.Failure);
        Assert.Equal(first.WritesAcknowledged, second.WritesAcknowledged);
        Assert.Equal(first.AcknowledgedChecks, second.AcknowledgedChecks);
        Assert.Equal(first.TransitionsObserved, second.TransitionsObserved);
        Assert.Equal(first.Faults, second.Faults);
    }

    private static WriteRecord WriteAndWait(ScaleCluster cluster, long block, ScaleNode? writer = null)
    {
        var data = new byte[WriteLedger.BlockBytes];
        cluster.Random.Fill(data);
        cluster.Write(writer ?? cluster.Alpha, block, data);
        Assert.True(cluster.RunUntil(() => cluster.PendingWrites == 0, 10_000), "the write completes");
        cluster.RunUntil(cluster.Scheduler.NowMs + 50);
        return cluster.Ledger.LastIssued!;
    }
}

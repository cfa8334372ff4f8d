using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Fencing under simulation (drbd9-tests `fencing`, `suspend-io`, `outdate`): fence-peer's exit
/// codes as DRBD reads them, I/O frozen by resource-and-stonith until the peer is fenced, the
/// connection is back or resume-io, the new current UUID held back with it, Outdated disks through
/// a graceful disconnect and through the handshake. Data is compared block by block at the end.
/// </summary>
public class ReplicaFencingTests
{
    private const int BlockBytes = 4096;
    private const string FencePeerCall = "fence-peer 1/-1";

    [Theory]
    [InlineData(4, "peer was fenced")]
    [InlineData(5, "peer is unreachable, assumed to be dead")]
    [InlineData(7, "peer was stonithed")]
    public void Exit_codes_4_5_and_7_leave_the_lost_peer_Outdated_and_a_reconnect_resyncs_it(int exitCode, string meaning)
    {
        var pair = Pair(100 + exitCode, "resource-only", exitCode);
        pair.ConnectWithAlphaPrimary();
        Assert.True(Write(pair, 0, 1) == true);
        ulong before = pair.Alpha.Replica.Volume(0).Ids.Current;
        LoseBeta(pair);

        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.PeerDiskOf(1, 0) == DiskState.Outdated, 10_000), pair.Logs);
        Assert.Contains(FencePeerCall, pair.Alpha.HandlerCalls);
        Assert.Contains(pair.Alpha.Log, l => l.EndsWith($"fence-peer helper returned {exitCode} ({meaning})", StringComparison.Ordinal));
        Assert.Equal(DiskState.Outdated, pair.Alpha.Replica.Volume(0).FencedPeerDisks[1]);
        Assert.Equal(exitCode == 7, pair.Alpha.Log.Any(l => l.Contains("fence-peer() = 7 && fencing != Stonith", StringComparison.Ordinal)));
        // resource-only: I/O never stops, and the Primary moved on to a new generation at the loss.
        Assert.False(pair.Alpha.Replica.SuspendedFencing);
        Assert.NotEqual(before, pair.Alpha.Replica.Volume(0).Ids.Current);
        Assert.True(Write(pair, 8 * BlockBytes, 2) == true);

        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        Assert.Empty(pair.Alpha.Replica.Volume(0).FencedPeerDisks);
        Assert.Equal(DiskState.UpToDate, pair.Alpha.Replica.PeerDiskOf(1, 0));
        Assert.Contains(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal));
        AssertIdentical(pair, (0, 1), (8 * BlockBytes, 2));
    }

    [Fact]
    public void Exit_code_3_records_the_peer_Inconsistent()
    {
        var pair = Pair(103, "resource-only", 3);
        pair.ConnectWithAlphaPrimary();
        LoseBeta(pair);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.PeerDiskOf(1, 0) == DiskState.Inconsistent, 10_000), pair.Logs);
        Assert.Contains(pair.Alpha.Log, l => l.EndsWith("fence-peer helper returned 3 (peer is inconsistent or worse)", StringComparison.Ordinal));
    }

    [Fact]
    public void A_broken_handler_leaves_the_peer_unknown_and_resource_only_keeps_serving()
    {
        var pair = Pair(110, "resource-only", 1);
        pair.ConnectWithAlphaPrimary();
        LoseBeta(pair);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Log.Any(l => l.EndsWith("fence-peer helper broken, returned 1", StringComparison.Ordinal)), 10_000), pair.Logs);
        Assert.Equal(DiskState.DUnknown, pair.Alpha.Replica.PeerDiskOf(1, 0));
        Assert.Empty(pair.Alpha.Replica.Volume(0).FencedPeerDisks);
        Assert.False(pair.Alpha.Replica.SuspendedFencing);
        Assert.True(Write(pair, 0, 3) == true);
    }

    [Fact]
    public void Without_fencing_no_handler_runs()
    {
        var pair = Pair(111, "dont-care", 4);
        pair.ConnectWithAlphaPrimary();
        LoseBeta(pair);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);
        Assert.DoesNotContain(FencePeerCall, pair.Alpha.HandlerCalls);
        Assert.Equal(DiskState.DUnknown, pair.Alpha.Replica.PeerDiskOf(1, 0));
    }

    [Theory]
    [InlineData(DiskState.UpToDate, DiskState.Outdated)]
    [InlineData(DiskState.Consistent, DiskState.DUnknown)]
    public void Exit_code_5_outdates_the_peer_only_when_this_disk_is_UpToDate(DiskState betaDisk, DiskState peerDiskAfter)
    {
        var pair = Pair(120, "resource-only", null, initial: node => node == "beta" ? Same(betaDisk) : Same(DiskState.UpToDate));
        pair.Beta.ScriptedHandlers["fence-peer"] = 5;
        // beta is not connected (a promotion would fence alpha first).
        long token = pair.Beta.Replica.FencePeer(0);
        Assert.NotEqual(0, token);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Log.Any(l => l.Contains("fence-peer helper returned 5", StringComparison.Ordinal)), 5_000), pair.Logs);
        Assert.Equal(peerDiskAfter, pair.Beta.Replica.PeerDiskOf(0, 0));
    }

    [Fact]
    public void Exit_code_6_means_the_peer_is_Primary_and_this_node_outdates_itself()
    {
        var pair = Pair(130, "resource-only", null);
        pair.Beta.ScriptedHandlers["fence-peer"] = 6;
        pair.Beta.Replica.FencePeer(0);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Volume(0).Disk == DiskState.Outdated, 5_000), pair.Logs);
        Assert.Contains(pair.Beta.Log, l => l.EndsWith("Peer is primary, outdating myself.", StringComparison.Ordinal));
        var flags = pair.Beta.Replica.Volume(0).Flags;
        Assert.True(flags.HasFlag(MetadataFlags.Consistent) && !flags.HasFlag(MetadataFlags.WasUpToDate), flags.ToString());
        Assert.Equal(DiskState.DUnknown, pair.Beta.Replica.PeerDiskOf(0, 0));
    }

    [Fact]
    public void No_fence_peer_handler_counts_as_a_broken_one()
    {
        var pair = Pair(131, "resource-only", null);
        Assert.Equal(0, pair.Beta.Replica.FencePeer(0));
        Assert.Contains(pair.Beta.Log, l => l.EndsWith("fence-peer helper broken, returned 0", StringComparison.Ordinal));
        Assert.Equal(DiskState.DUnknown, pair.Beta.Replica.PeerDiskOf(0, 0));
    }

    [Fact]
    public void Stonith_with_a_broken_handler_freezes_io_without_a_new_uuid_and_a_reconnect_resumes_it()
    {
        var pair = Pair(140, "resource-and-stonith", 1);
        pair.ConnectWithAlphaPrimary();
        Assert.True(Write(pair, 0, 1) == true);
        ulong before = pair.Alpha.Replica.Volume(0).Ids.Current;
        LoseBeta(pair);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Log.Any(l => l.EndsWith("fence-peer helper broken, returned 1", StringComparison.Ordinal)), 10_000), pair.Logs);
        Assert.True(pair.Alpha.Replica.SuspendedFencing);
        Assert.True(pair.Alpha.Replica.NewCurrentUuidPending);

        bool? frozen = null;
        pair.Alpha.Write(0, 16 * BlockBytes, Block(2), ok => frozen = ok);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 5_000);
        Assert.Null(frozen);
        Assert.Equal(before, pair.Alpha.Replica.Volume(0).Ids.Current);

        // The connection comes back: I/O resumes, and with equal UUIDs there is nothing to resync.
        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(() => pair.BothConnected() && frozen is not null, 60_000), pair.Logs);
        Assert.True(frozen);
        Assert.False(pair.Alpha.Replica.SuspendedFencing);
        Assert.False(pair.Alpha.Replica.NewCurrentUuidPending);
        Assert.Equal(before, pair.Alpha.Replica.Volume(0).Ids.Current);
        Assert.Equal(ReplicationState.Established, pair.Alpha.Replica.ReplicationOf(1, 0));
        Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal) || l.Contains("full resync", StringComparison.Ordinal));
        Assert.True(Write(pair, 24 * BlockBytes, 3) == true);
        AssertIdentical(pair, (0, 1), (16 * BlockBytes, 2), (24 * BlockBytes, 3));
    }

    [Fact]
    public void Stonith_with_a_broken_handler_stays_frozen_until_resume_io_which_makes_the_new_uuid_first()
    {
        var pair = Pair(141, "resource-and-stonith", 1);
        pair.ConnectWithAlphaPrimary();
        Assert.True(Write(pair, 0, 1) == true);
        ulong before = pair.Alpha.Replica.Volume(0).Ids.Current;
        LoseBeta(pair);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.SuspendedFencing && !pair.Alpha.Replica.Links[1].PeerDisks.Any(), 10_000), pair.Logs);
        bool? frozen = null;
        pair.Alpha.Write(0, 16 * BlockBytes, Block(2), ok => frozen = ok);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 5_000);
        Assert.Null(frozen);

        Assert.Equal(StateChangeResult.Success, pair.Alpha.Replica.ResumeIo());
        Assert.True(pair.Scheduler.RunUntil(() => frozen is not null, 5_000), pair.Logs);
        Assert.True(frozen);
        Assert.NotEqual(before, pair.Alpha.Replica.Volume(0).Ids.Current);
        Assert.False(pair.Alpha.Replica.SuspendedFencing);
        Assert.Equal(StateChangeResult.NothingToDo, pair.Alpha.Replica.ResumeIo());

        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal));
        AssertIdentical(pair, (0, 1), (16 * BlockBytes, 2));
    }

    [Fact]
    public void Stonith_holds_writes_until_the_handler_fenced_the_peer_then_makes_the_new_uuid()
    {
        var pair = Pair(142, "resource-and-stonith", 4);
        pair.Alpha.HandlerDurationMs = 2_000;
        pair.ConnectWithAlphaPrimary();
        ulong before = pair.Alpha.Replica.Volume(0).Ids.Current;
        LoseBeta(pair);
        Assert.Contains(FencePeerCall, pair.Alpha.HandlerCalls);
        Assert.True(pair.Alpha.Replica.SuspendedFencing);
        bool? held = null;
        pair.Alpha.Write(0, 4 * BlockBytes, Block(5), ok => held = ok);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 500);
        Assert.Null(held);
        Assert.Equal(before, pair.Alpha.Replica.Volume(0).Ids.Current);

        Assert.True(pair.Scheduler.RunUntil(() => held is not null, 5_000), pair.Logs);
        Assert.True(held);
        Assert.False(pair.Alpha.Replica.SuspendedFencing);
        Assert.Equal(DiskState.Outdated, pair.Alpha.Replica.PeerDiskOf(1, 0));
        Assert.NotEqual(before, pair.Alpha.Replica.Volume(0).Ids.Current);
        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        AssertIdentical(pair, (4 * BlockBytes, 5));
    }

    [Fact]
    public void Stonith_with_writes_lost_in_flight_makes_the_new_uuid_at_once_and_holds_their_completion()
    {
        var pair = Pair(143, "resource-and-stonith", 1);
        pair.ConnectWithAlphaPrimary();
        ulong before = pair.Alpha.Replica.Volume(0).Ids.Current;
        // Cut first: the write goes out into the void and is never acknowledged.
        pair.Network.Partition("alpha", "beta");
        bool? inFlight = null;
        pair.Alpha.Write(0, 12 * BlockBytes, Block(6), ok => inFlight = ok);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.SuspendedFencing, 30_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);
        Assert.Null(inFlight);
        Assert.NotEqual(before, pair.Alpha.Replica.Volume(0).Ids.Current);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("writes in flight were lost", StringComparison.Ordinal));

        pair.Alpha.Replica.ResumeIo();
        Assert.True(pair.Scheduler.RunUntil(() => inFlight is not null, 5_000), pair.Logs);
        Assert.True(inFlight);
        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        AssertIdentical(pair, (12 * BlockBytes, 6));
    }

    [Fact]
    public void Stonith_under_protocol_A_counts_the_transfer_log_as_lost_and_a_reconnect_resyncs_it()
    {
        var pair = Pair(144, "resource-and-stonith", 1, protocol: "A");
        pair.ConnectWithAlphaPrimary();
        ulong before = pair.Alpha.Replica.Volume(0).Ids.Current;
        // Acknowledged when sent (protocol A); the barrier that would confirm it never comes back.
        Assert.True(Write(pair, 20 * BlockBytes, 9) == true);
        LoseBeta(pair);
        Assert.True(pair.Alpha.Replica.SuspendedFencing);
        Assert.NotEqual(before, pair.Alpha.Replica.Volume(0).Ids.Current);
        Assert.False(pair.Alpha.Replica.NewCurrentUuidPending);

        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        Assert.False(pair.Alpha.Replica.SuspendedFencing);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal));
        AssertIdentical(pair, (20 * BlockBytes, 9));
    }

    [Fact]
    public void A_reconnect_while_the_handler_runs_makes_its_exit_code_moot()
    {
        var pair = Pair(150, "resource-and-stonith", 4, new NetworkOptions { MaxDelayMs = 3 });
        pair.Alpha.HandlerDurationMs = 30_000;
        pair.ConnectWithAlphaPrimary();
        LoseBeta(pair);
        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.BothConnected, 29_000), pair.Logs);
        Assert.False(pair.Alpha.Replica.SuspendedFencing);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Log.Any(l => l.Contains("Ignoring fence-peer exit code 4", StringComparison.Ordinal)), 40_000), pair.Logs);
        Assert.Equal(DiskState.UpToDate, pair.Alpha.Replica.PeerDiskOf(1, 0));
        Assert.Empty(pair.Alpha.Replica.Volume(0).FencedPeerDisks);
    }

    [Fact]
    public void A_demotion_while_frozen_fails_the_queued_writes()
    {
        var pair = Pair(160, "resource-and-stonith", 1);
        pair.ConnectWithAlphaPrimary();
        LoseBeta(pair);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.SuspendedFencing, 10_000));
        bool? queued = null;
        pair.Alpha.Write(0, 0, Block(7), ok => queued = ok);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 1_000);
        Assert.Null(queued);
        pair.Alpha.Replica.SetRole(Role.Secondary);
        Assert.True(pair.Scheduler.RunUntil(() => queued is not null, 1_000));
        Assert.False(queued);
        Assert.False(pair.Alpha.Replica.SuspendedFencing);
    }

    [Theory]
    [InlineData("beta")]
    [InlineData("alpha")]
    public void A_disconnect_between_Primary_and_Secondary_outdates_the_Secondary_without_the_handler(string disconnecting)
    {
        var pair = Pair(170, "resource-only", 4);
        pair.ConnectWithAlphaPrimary();
        var node = disconnecting == "alpha" ? pair.Alpha : pair.Beta;
        node.Replica.Disconnect(disconnecting == "alpha" ? 1 : 0);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Volume(0).Disk == DiskState.Outdated
            && pair.Alpha.Replica.PeerDiskOf(1, 0) == DiskState.Outdated, 10_000), pair.Logs);
        Assert.DoesNotContain(FencePeerCall, pair.Alpha.HandlerCalls);
        Assert.False(pair.Beta.Replica.Volume(0).Flags.HasFlag(MetadataFlags.WasUpToDate));
        Assert.True(Write(pair, 32 * BlockBytes, 8) == true);

        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && pair.Beta.Replica.Volume(0).Disk == DiskState.UpToDate, 60_000), pair.Logs);
        AssertIdentical(pair, (32 * BlockBytes, 8));
    }

    [Fact]
    public void An_Outdated_disk_of_the_same_generation_becomes_UpToDate_at_the_handshake_without_a_resync()
    {
        var pair = Pair(180, "resource-only", null, initial: node => node == "beta" ? Same(DiskState.Outdated) : Same(DiskState.UpToDate));
        pair.ConnectWithAlphaPrimary();
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Volume(0).Disk == DiskState.UpToDate
            && pair.Alpha.Replica.PeerDiskOf(1, 0) == DiskState.UpToDate, 5_000), pair.Logs);
        Assert.Contains(pair.Beta.Log, l => l.Contains("Upgrading local disk to UpToDate", StringComparison.Ordinal));
        Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal) || l.Contains("full resync", StringComparison.Ordinal));
        Assert.True(pair.Beta.Replica.Volume(0).Flags.HasFlag(MetadataFlags.WasUpToDate));
    }

    [Fact]
    public void Two_Outdated_disks_do_not_make_each_other_UpToDate()
    {
        var pair = Pair(181, "resource-only", null, initial: _ => Same(DiskState.Outdated));
        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(pair.BothConnected, 10_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 1_000);
        Assert.Equal(DiskState.Outdated, pair.Alpha.Replica.Volume(0).Disk);
        Assert.Equal(DiskState.Outdated, pair.Beta.Replica.Volume(0).Disk);
    }

    private static SimReplicaPair Pair(int seed, string fencing, int? exitCode, NetworkOptions? options = null,
        Func<string, (GenerationIds, MetadataFlags, DiskState)>? initial = null, string protocol = "C")
    {
        var pair = new SimReplicaPair(seed, protocol, options ?? new NetworkOptions { MaxDelayMs = 3 }, netOptions: $"fencing {fencing};", initial: initial);
        if (exitCode is not null)
        {
            pair.Alpha.ScriptedHandlers["fence-peer"] = exitCode;
        }
        return pair;
    }

    /// <summary>The pair's usual shared generation with <paramref name="disk"/> and the flags that go with it.</summary>
    private static (GenerationIds, MetadataFlags, DiskState) Same(DiskState disk) =>
        (new GenerationIds(0x1234_5678_0000_0000, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty),
            disk == DiskState.Outdated ? MetadataFlags.Consistent : MetadataFlags.Consistent | MetadataFlags.WasUpToDate, disk);

    private static void LoseBeta(SimReplicaPair pair)
    {
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected, 30_000), pair.Logs);
    }

    /// <summary>One block written on alpha; its outcome, or null when it has not completed within 5 s.</summary>
    private static bool? Write(SimReplicaPair pair, long offsetBytes, byte fill)
    {
        bool? result = null;
        pair.Alpha.Write(0, offsetBytes, Block(fill), ok => result = ok);
        pair.Scheduler.RunUntil(() => result is not null, 5_000);
        return result;
    }

    private static byte[] Block(byte fill) => Enumerable.Repeat(fill, BlockBytes).ToArray();

    /// <summary>Both disks are the same block for block, and beta holds each block written (offset, fill byte).</summary>
    private static void AssertIdentical(SimReplicaPair pair, params (long OffsetBytes, byte Fill)[] written)
    {
        var alpha = pair.Alpha.Disks[0].Contents;
        var beta = pair.Beta.Disks[0].Contents;
        for (int block = 0; block < SimReplicaPair.DiskBytes / BlockBytes; block++)
        {
            Assert.True(alpha.Slice(block * BlockBytes, BlockBytes).SequenceEqual(beta.Slice(block * BlockBytes, BlockBytes)), $"block {block} differs");
        }
        foreach (var (offset, fill) in written)
        {
            Assert.True(beta.Slice((int)offset, BlockBytes).SequenceEqual(Block(fill)), $"beta lacks the write at {offset}");
        }
    }
}

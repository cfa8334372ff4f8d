// drbd_sync_handshake beyond the UUID rules: disk states, --discard-my-data, rr-conflict, always-asbp,
// and the pure-decision scenarios of drbd.md §8 (3, 5, 6, 7, 20) built with GenerationIds as the
// engine makes them.
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.SplitBrain.HandshakePair;

namespace Redundancy.Block.Engine.Tests.SplitBrain;

public class SyncHandshakeTests
{
    private const ulong X = 0x1000, H = 0x0F00, Ca = 0xA000, Cb = 0xB000;
    private static readonly bool[] Apart = [true];

    private static UuidSet SplitA => new(Ca | 1, X | 1, H);
    private static UuidSet SplitB => new(Cb | 1, X, H);

    [Fact]
    public void Inconsistent_side_becomes_bitmap_target_of_an_up_to_date_peer_even_with_equal_uuids()
    {
        var pair = Run(Node("a", new UuidSet(X, 0), disk: DiskState.Inconsistent), Node("b", new UuidSet(X, 0)));
        AssertPair(pair, HandshakeAction.SyncTarget);
        Assert.Equal(40, pair.A.Comparison.Rule);
        Assert.Contains("Becoming sync target due to disk states.", pair.A.Log);
        Assert.Contains("Becoming sync source due to disk states.", pair.B.Log);
    }

    [Fact]
    public void Up_to_date_side_with_bits_for_a_restarted_consistent_peer_resyncs_them_despite_equal_uuids()
    {
        // Seed 53883: a demoted Primary's un-barrier-acked write was marked for the peer, whose crash lost it.
        var pair = Run(Node("a", new UuidSet(X, 0), bits: 1), Node("b", new UuidSet(X, 0), disk: DiskState.Consistent));
        AssertPair(pair, HandshakeAction.SyncSource);
        Assert.Equal(40, pair.A.Comparison.Rule);

        // Not when both are UpToDate (a link hiccup), when both hold bits, or when the bit holder is the Consistent one.
        AssertPair(Run(Node("a", new UuidSet(X, 0), bits: 1), Node("b", new UuidSet(X, 0))), HandshakeAction.NoSync);
        AssertPair(Run(Node("a", new UuidSet(X, 0), bits: 1), Node("b", new UuidSet(X, 0), disk: DiskState.Consistent, bits: 2)), HandshakeAction.NoSync);
        AssertPair(Run(Node("a", new UuidSet(X, 0), disk: DiskState.Consistent, bits: 1), Node("b", new UuidSet(X, 0))), HandshakeAction.NoSync);
    }

    [Fact]
    public void A_disk_that_missed_writes_is_the_target_at_equal_generations_even_as_the_crashed_primary()
    {
        // Seed 35679 --slow-disks: the Primary's disk failed under a write the peer acknowledged; the peer
        // restarted before it heard of it. The old disk, back with crashed-primary, met the peer's only copy.
        var pair = Run(Node("a", new UuidSet(X, 0), disk: DiskState.Consistent, bits: 8, crashed: true, missedWrites: true),
            Node("b", new UuidSet(X, 0), disk: DiskState.Consistent));
        AssertPair(pair, HandshakeAction.SyncTarget);
        Assert.Equal(40, pair.A.Comparison.Rule);
        Assert.Contains("Equal generations, but this node's disk missed writes the other holds: becoming sync target.", pair.A.Log);
        Assert.Contains("Equal generations, but the peer's disk missed writes the other holds: becoming sync source.", pair.B.Log);

        // Also with no crash at all (rule 40's link hiccup), and against an Outdated peer.
        AssertPair(Run(Node("a", new UuidSet(X, 0), missedWrites: true), Node("b", new UuidSet(X, 0))), HandshakeAction.SyncTarget);
        AssertPair(Run(Node("a", new UuidSet(X, 0), missedWrites: true), Node("b", new UuidSet(X, 0), disk: DiskState.Outdated)), HandshakeAction.SyncTarget);

        // The current Primary (rule 41) attaching its disk while connected is the target too; with its disk
        // exposed already, rr-conflict refuses as for any Primary SyncTarget.
        var primary = Node("a", new UuidSet(X, 0), Role.Primary, crashed: true, missedWrites: true);
        AssertPair(Run(primary with { Negotiating = true }, Node("b", new UuidSet(X, 0))), HandshakeAction.SyncTarget);
        Assert.Equal(41, Run(primary with { Negotiating = true }, Node("b", new UuidSet(X, 0))).A.Comparison.Rule);
        Assert.Equal(DisconnectReason.PrimarySyncTarget, Run(primary, Node("b", new UuidSet(X, 0))).A.Reason);
    }

    [Fact]
    public void Missed_writes_decide_nothing_when_both_missed_some_the_other_is_inconsistent_or_the_generations_differ()
    {
        // Both: the crashed Primary is the source, as before.
        AssertPair(Run(Node("a", new UuidSet(X, 0), crashed: true, missedWrites: true), Node("b", new UuidSet(X, 0), missedWrites: true)), HandshakeAction.SyncSource);
        // The peer is Inconsistent: it cannot be the source; the disk states decide.
        AssertPair(Run(Node("a", new UuidSet(X, 0), missedWrites: true), Node("b", new UuidSet(X, 0), disk: DiskState.Inconsistent)), HandshakeAction.SyncSource);
        // Different generations: the UUIDs know the direction (rule 70, a's bitmap UUID is b's current).
        AssertPair(Run(Node("a", new UuidSet(Ca, X), missedWrites: true), Node("b", new UuidSet(X, 0))), HandshakeAction.SyncSource);
    }

    [Fact]
    public void Inconsistent_side_against_a_full_sync_rule_keeps_the_full_sync_in_the_disk_state_direction()
    {
        // UUIDs say a is the full-sync source (rule 30), but a is Inconsistent: it becomes full target.
        var pair = Run(Node("a", new UuidSet(X, 0), disk: DiskState.Inconsistent), Node("b", new UuidSet(GenerationIds.JustCreated, 0), disk: DiskState.Outdated));
        AssertPair(pair, HandshakeAction.SyncTarget, full: true);
    }

    [Fact]
    public void Inconsistent_side_in_a_split_brain_is_a_plain_target_without_split_brain_handlers()
    {
        var bitmap = Run(Node("a", SplitA, disk: DiskState.Inconsistent), Node("b", SplitB));
        AssertPair(bitmap, HandshakeAction.SyncTarget);
        Assert.Equal(HandshakeHandlers.None, bitmap.A.Handlers);
        Assert.Equal(SplitBrainResolution.None, bitmap.A.SplitBrain);

        var historyOnly = Run(Node("a", new UuidSet(Ca, 0x77, H), disk: DiskState.Inconsistent), Node("b", new UuidSet(Cb, 0x88, H)));
        AssertPair(historyOnly, HandshakeAction.SyncTarget, full: true); // rule 100: full
    }

    [Fact]
    public void Both_inconsistent_with_equal_uuids_stay_without_sync()
    {
        var pair = Run(Node("a", new UuidSet(X, 0), disk: DiskState.Inconsistent), Node("b", new UuidSet(X, 0), disk: DiskState.Inconsistent));
        AssertPair(pair, HandshakeAction.NoSync);
        Assert.Equal(ReplicationState.Established, pair.A.NextReplicationState);
    }

    [Fact]
    public void Both_inconsistent_with_a_direction_refuse_on_both_sides()
    {
        var pair = Run(Node("a", new UuidSet(X, 0), disk: DiskState.Inconsistent), Node("b", new UuidSet(Cb, X), disk: DiskState.Inconsistent));
        AssertPair(pair, HandshakeAction.Disconnect);
        Assert.Equal(DisconnectReason.PeerInconsistentSyncSource, pair.A.Reason);
        Assert.Equal(DisconnectReason.InconsistentSyncSource, pair.B.Reason);
        Assert.Contains("I shall become SyncSource, but I am inconsistent!", pair.B.Log);
    }

    [Fact]
    public void Discard_my_data_resolves_a_split_brain_with_a_bitmap_resync()
    {
        var pair = Run(Node("a", SplitA, discardMyData: true), Node("b", SplitB));
        AssertPair(pair, HandshakeAction.SyncTarget);
        Assert.Equal(SplitBrainResolution.DiscardMyData, pair.A.SplitBrain);
        Assert.Equal(HandshakeHandlers.InitialSplitBrain, pair.A.Handlers);
        Assert.Contains("Split-Brain detected, manually solved. Sync from peer node", pair.A.Log);
        Assert.Contains("Split-Brain detected, manually solved. Sync from this node", pair.B.Log);
    }

    [Fact]
    public void Discard_my_data_on_both_sides_stays_unresolved()
    {
        var pair = Run(Node("a", SplitA, discardMyData: true), Node("b", SplitB, discardMyData: true));
        AssertPair(pair, HandshakeAction.Disconnect);
        Assert.Equal(DisconnectReason.SplitBrain, pair.A.Reason);
    }

    [Fact]
    public void Discard_my_data_on_a_history_only_split_brain_is_a_full_sync()
    {
        var pair = Run(Node("a", new UuidSet(Ca, 0x77, H), discardMyData: true), Node("b", new UuidSet(Cb, 0x88, H)));
        Assert.Equal(100, pair.A.Comparison.Rule);
        AssertPair(pair, HandshakeAction.SyncTarget, full: true);
    }

    [Fact]
    public void Discard_my_data_is_ignored_without_a_split_brain()
    {
        var pair = Run(Node("a", new UuidSet(Cb, X, H)), Node("b", new UuidSet(X, 0, H), discardMyData: true));
        AssertPair(pair, HandshakeAction.SyncSource);
        Assert.Equal(SplitBrainResolution.None, pair.A.SplitBrain);
    }

    [Fact]
    public void Discard_my_data_does_not_override_a_resolving_policy()
    {
        var pair = Run(Node("a", SplitA, bits: 0, discardMyData: true), Node("b", SplitB, bits: 3), Policies(p0: "discard-zero-changes"));
        AssertPair(pair, HandshakeAction.SyncTarget);
        Assert.Equal(SplitBrainResolution.AfterSbPolicy, pair.A.SplitBrain);
        var other = Run(Node("a", SplitA, bits: 3, discardMyData: true), Node("b", SplitB, bits: 0), Policies(p0: "discard-zero-changes"));
        AssertPair(other, HandshakeAction.SyncSource);
    }

    [Fact]
    public void Always_asbp_applies_policies_to_history_only_split_brain_with_a_full_sync()
    {
        HandshakeSide a = Node("a", new UuidSet(Ca, 0x77, H), bits: 0);
        HandshakeSide b = Node("b", new UuidSet(Cb, 0x88, H), bits: 5);
        var without = Run(a, b, Policies(p0: "discard-zero-changes"));
        AssertPair(without, HandshakeAction.Disconnect);

        var with = Run(a, b, Policies(p0: "discard-zero-changes", alwaysAsbp: true));
        AssertPair(with, HandshakeAction.SyncTarget, full: true);
        Assert.Contains("Doing a full sync, since UUIDs where ambiguous.", with.A.Log);
    }

    private static (HandshakeOutcome A, HandshakeOutcome B) PrimaryWouldBeTarget(string rr) =>
        Run(Node("a", new UuidSet(X | 1, 0, H), Role.Primary), Node("b", new UuidSet(Cb, X, H), bits: 4), Policies(rr: rr));

    [Fact]
    public void Rr_conflict_disconnect_refuses_a_primary_sync_target_on_both_sides()
    {
        var pair = PrimaryWouldBeTarget("disconnect");
        AssertPair(pair, HandshakeAction.Disconnect);
        Assert.Equal(50, pair.A.Comparison.Rule);
        Assert.Equal(DisconnectReason.PrimarySyncTarget, pair.A.Reason);
        Assert.Equal(DisconnectReason.PeerPrimarySyncTarget, pair.B.Reason);
        Assert.Equal(HandshakeHandlers.None, pair.A.Handlers);
        Assert.Equal(ConnectionState.StandAlone, pair.A.NextConnectionState);
        Assert.Contains("I shall become SyncTarget, but I am primary!", pair.A.Log);
    }

    [Fact]
    public void Rr_conflict_call_pri_lost_runs_pri_lost_on_the_primary_and_disconnects()
    {
        var pair = PrimaryWouldBeTarget("call-pri-lost");
        AssertPair(pair, HandshakeAction.Disconnect);
        Assert.Equal(HandshakeHandlers.PriLost, pair.A.Handlers);
        Assert.Equal(HandshakeHandlers.None, pair.B.Handlers);
    }

    [Fact]
    public void Rr_conflict_retry_connect_disconnects_and_keeps_connecting()
    {
        var pair = PrimaryWouldBeTarget("retry-connect");
        AssertPair(pair, HandshakeAction.Disconnect);
        Assert.Equal(ConnectionState.Connecting, pair.A.NextConnectionState);
        Assert.Equal(ConnectionState.Connecting, pair.B.NextConnectionState);
    }

    [Theory]
    [InlineData("violently")]
    [InlineData("auto-discard")]
    public void Rr_conflict_violently_lets_the_primary_become_sync_target(string rr)
    {
        var pair = PrimaryWouldBeTarget(rr);
        AssertPair(pair, HandshakeAction.SyncTarget);
        Assert.Contains("Becoming SyncTarget, violating the stable-data assumption", pair.A.Log);
    }

    [Fact]
    public void Rr_conflict_does_not_apply_to_an_inconsistent_primary()
    {
        var pair = Run(Node("a", new UuidSet(X | 1, 0, H), Role.Primary, DiskState.Inconsistent), Node("b", new UuidSet(Cb, X, H)));
        AssertPair(pair, HandshakeAction.SyncTarget);
    }

    [Fact]
    public void Scenario13_a_primary_reattaching_its_disk_is_a_bitmap_target_without_rr_conflict()
    {
        // The peer started a new generation when the Primary's disk failed; the Primary's disk comes
        // back with the old one (Negotiating): bitmap target, on both sides, despite rr-conflict disconnect.
        var primary = Node("a", new UuidSet(X | 1, 0, H), Role.Primary, DiskState.Consistent) with { Negotiating = true };
        var pair = Run(primary, Node("b", new UuidSet(Cb, X, H), bits: 4), Policies(rr: "disconnect"));
        AssertPair(pair, HandshakeAction.SyncTarget);
        Assert.Equal(50, pair.A.Comparison.Rule);
    }

    [Fact]
    public void Without_a_disk_on_either_side_there_is_no_sync_handshake()
    {
        var pair = Run(Node("a", new UuidSet(Ca, 0, H), Role.Primary, DiskState.Diskless), Node("b", new UuidSet(Cb, 0x88, 0x55)));
        AssertPair(pair, HandshakeAction.NoSync);
        Assert.Contains("No sync handshake: this node has no disk (Diskless).", pair.A.Log);
        Assert.Contains("No sync handshake: the peer has no disk (Diskless).", pair.B.Log);
    }

    [Fact]
    public void Unrelated_data_disconnects_both_without_handlers()
    {
        var pair = Run(Node("a", new UuidSet(Ca, 0x77, 0x66)), Node("b", new UuidSet(Cb, 0x88, 0x55)));
        AssertPair(pair, HandshakeAction.Disconnect);
        Assert.Equal(DisconnectReason.UnrelatedData, pair.A.Reason);
        Assert.Equal(HandshakeHandlers.None, pair.A.Handlers);
        Assert.Equal(-1000, pair.A.Hg);
        Assert.Contains("Unrelated data, aborting!", pair.A.Log);
    }

    // ---- drbd.md §8 scenarios that are pure decisions ----

    private static GenerationIds Fresh() => new(GenerationIds.JustCreated, [0], []);

    private static GenerationIds Connected(ulong current) => new(current, [0], [H]);

    [Fact]
    public void Scenario3_write_while_peer_disconnected_gives_a_bitmap_resync_of_those_blocks()
    {
        GenerationIds a = Connected(X | 1).NewCurrentUuid(0xC0DE00, primary: true, Apart); // Primary loses peer, writes
        GenerationIds b = Connected(X);
        var pair = Run(Node("a", UuidSet.FromGenerationIds(a, 0), Role.Primary, bits: 12), Node("b", UuidSet.FromGenerationIds(b, 0)));
        AssertPair(pair, HandshakeAction.SyncSource);
        Assert.Equal(70, pair.A.Comparison.Rule);
        Assert.Equal(50, pair.B.Comparison.Rule);
        Assert.Equal(HandshakeHandlers.None, pair.A.Handlers | pair.B.Handlers);
    }

    [Fact]
    public void Scenario5_split_brain_both_standalone_then_discard_my_data_on_victim_resyncs_to_established()
    {
        GenerationIds a = Connected(X | 1).NewCurrentUuid(0xAA00, primary: true, Apart);
        GenerationIds b = Connected(X).NewCurrentUuid(0xBB00, primary: true, Apart); // b promoted while apart
        UuidSet ua = UuidSet.FromGenerationIds(a, 0), ub = UuidSet.FromGenerationIds(b, 0);

        var first = Run(Node("a", ua, Role.Primary, bits: 5), Node("b", ub, Role.Primary, bits: 7));
        AssertPair(first, HandshakeAction.Disconnect);
        Assert.Equal(ConnectionState.StandAlone, first.B.NextConnectionState);
        Assert.True(first.A.Handlers.HasFlag(HandshakeHandlers.SplitBrain));

        // Victim b: disconnect; secondary; connect --discard-my-data. Survivor a: connect.
        var second = Run(Node("a", ua, Role.Primary, bits: 5), Node("b", ub.WithCurrent(ub.Current & ~1UL), bits: 7, discardMyData: true));
        AssertPair(second, HandshakeAction.SyncSource); // bitmap, not full
        Assert.Equal(SplitBrainResolution.DiscardMyData, second.B.SplitBrain);

        var (source, sync) = ResyncUuids.GenAndSendSyncUuid(ua, random: 1);
        var target = ResyncUuids.ReceiveSyncUuid(ub, sync, primary: false);
        UuidSet aDone = ResyncUuids.ResyncFinishedSource(source);
        UuidSet bDone = ResyncUuids.ResyncFinishedTarget(target, ua, primary: false);
        var third = Run(Node("a", aDone, Role.Primary), Node("b", bDone));
        AssertPair(third, HandshakeAction.NoSync);
        Assert.Equal(ReplicationState.Established, third.B.NextReplicationState);
    }

    [Fact]
    public void Scenario6_discard_zero_changes_one_writer_auto_resolves_two_writers_disconnect()
    {
        GenerationIds a = Connected(X | 1).NewCurrentUuid(0xAA00, primary: true, Apart);
        GenerationIds b = Connected(X).NewCurrentUuid(0xBB00, primary: true, Apart);
        UuidSet ua = UuidSet.FromGenerationIds(a, 0).WithCurrent(a.Current & ~1UL); // both demoted again
        UuidSet ub = UuidSet.FromGenerationIds(b, 0).WithCurrent(b.Current & ~1UL);
        SplitBrainPolicies policies = Policies(p0: "discard-zero-changes");

        var oneWriter = Run(Node("a", ua, bits: 40), Node("b", ub, bits: 0), policies);
        AssertPair(oneWriter, HandshakeAction.SyncSource);
        Assert.Equal(SplitBrainResolution.AfterSbPolicy, oneWriter.A.SplitBrain);

        var twoWriters = Run(Node("a", ua, bits: 40), Node("b", ub, bits: 3), policies);
        AssertPair(twoWriters, HandshakeAction.Disconnect);
        Assert.Equal(DisconnectReason.SplitBrain, twoWriters.B.Reason);
    }

    [Fact]
    public void Scenario7_independently_forced_primaries_are_unrelated_data()
    {
        GenerationIds a = Fresh().NewCurrentUuid(0xAA00, primary: true, Apart);
        GenerationIds b = Fresh().NewCurrentUuid(0xBB00, primary: true, Apart);
        var pair = Run(Node("a", UuidSet.FromGenerationIds(a, 0), Role.Primary), Node("b", UuidSet.FromGenerationIds(b, 0), Role.Primary));
        AssertPair(pair, HandshakeAction.Disconnect);
        Assert.Equal(DisconnectReason.UnrelatedData, pair.A.Reason);
        Assert.Equal(ConnectionState.StandAlone, pair.B.NextConnectionState);
    }

    [Fact]
    public void Scenario1_forced_primary_against_fresh_peer_is_a_full_initial_sync()
    {
        GenerationIds a = Fresh().NewCurrentUuid(0xAA00, primary: true, Apart);
        var pair = Run(Node("a", UuidSet.FromGenerationIds(a, 0), Role.Primary), Node("b", UuidSet.FromGenerationIds(Fresh(), 0), disk: DiskState.Inconsistent));
        AssertPair(pair, HandshakeAction.SyncSource, full: true);
        Assert.Equal(30, pair.A.Comparison.Rule);
    }

    [Fact]
    public void Scenario20_interrupted_resync_resumes_as_bitmap_target_not_full()
    {
        UuidSet sourceAtHandshake = new(Cb, X, H);
        var (source, sync) = ResyncUuids.GenAndSendSyncUuid(sourceAtHandshake, random: 3);
        UuidSet target = ResyncUuids.ReceiveSyncUuid(new UuidSet(X, 0, H), sync, primary: false);
        // Link drops mid-resync; the target is still Inconsistent with bits left.
        var pair = Run(Node("t", target, disk: DiskState.Inconsistent, bits: 100), Node("s", source, bits: 100));
        AssertPair(pair, HandshakeAction.SyncTarget, full: false);
        Assert.Equal(50, pair.A.Comparison.Rule);
    }
}

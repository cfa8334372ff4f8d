// Every drbd_uuid_compare rule with a minimal constructed example, checked from both sides: the peer
// must see the mirror rule (20↔30, 34↔35, 36↔37, 50↔70, 51↔71, 60↔80) and the opposite direction.
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Tests.Generations;

public class UuidComparisonTests
{
    private const ulong Jc = GenerationIds.JustCreated;
    private const ulong A = 0xA000, B = 0xB000, C = 0xC000, D = 0xD000, E = 0xE000, F = 0xF000;
    private const ulong Off = UuidComparison.NewBitmapOffset;

    private static UuidCompareSide Side(UuidSet uuids, bool crashed = false, Role role = Role.Secondary) =>
        new(uuids, crashed ? MetadataFlags.CrashedPrimary | MetadataFlags.Consistent : MetadataFlags.Consistent, role);

    private static (SyncDecision Self, SyncDecision Peer) Both(UuidCompareSide self, UuidCompareSide peer, bool selfResolves = false) =>
        (UuidComparison.Compare(self, peer, selfResolves), UuidComparison.Compare(peer, self, !selfResolves));

    private static void AssertRule(SyncDecision d, int rule, SyncResult result)
    {
        Assert.Equal(rule, d.Rule);
        Assert.Equal(result, d.Result);
    }

    [Fact]
    public void Rule10_both_just_created_no_sync()
    {
        var (s, p) = Both(Side(new UuidSet(Jc, 0)), Side(new UuidSet(Jc, 0)));
        AssertRule(s, 10, SyncResult.NoSync);
        AssertRule(p, 10, SyncResult.NoSync);
        Assert.Equal("uuid_compare()=0 by rule 10", s.Describe());
    }

    [Fact]
    public void Rule20_and_30_just_created_side_is_full_sync_target()
    {
        var (s, p) = Both(Side(new UuidSet(Jc, 0)), Side(new UuidSet(A | 1, Jc)));
        AssertRule(s, 20, SyncResult.BecomeSyncTargetFull);
        AssertRule(p, 30, SyncResult.BecomeSyncSourceFull);
        Assert.Equal(-2, s.Hg);
    }

    [Fact]
    public void Rule20_also_for_a_zero_current_uuid()
    {
        AssertRule(UuidComparison.Compare(Side(new UuidSet(0, 0)), Side(new UuidSet(A, 0)), false), 20, SyncResult.BecomeSyncTargetFull);
        AssertRule(UuidComparison.Compare(Side(new UuidSet(A, 0)), Side(new UuidSet(0, 0)), false), 30, SyncResult.BecomeSyncSourceFull);
    }

    [Fact]
    public void Rule34_and_35_source_missed_the_resync_finished_event_is_corrected()
    {
        // The target finished (bitmap rotated to history); the source still has its sync bitmap UUID.
        var source = new UuidSet(C, B + Off, B, D);
        var target = new UuidSet(C, 0, B + Off, B, D);
        var (s, p) = Both(Side(source), Side(target));
        AssertRule(s, 34, SyncResult.BecomeSyncSourceBitmap);
        AssertRule(p, 35, SyncResult.BecomeSyncTargetBitmap);
        Assert.Equal(target, s.SelfFixup);           // the source corrects itself to the target's UUIDs
        Assert.Null(s.PeerFixup);
        Assert.Equal(target, p.PeerFixup);           // the target corrects its view of the source the same way
        Assert.Null(p.SelfFixup);
    }

    [Fact]
    public void Rule36_and_37_bitmap_uuid_on_one_side_without_matching_history()
    {
        var (s, p) = Both(Side(new UuidSet(C, B, D)), Side(new UuidSet(C, 0, E)));
        AssertRule(s, 36, SyncResult.BecomeSyncSourceBitmap);
        AssertRule(p, 37, SyncResult.BecomeSyncTargetBitmap);
        Assert.Null(s.SelfFixup);
        Assert.Null(p.PeerFixup);
    }

    [Fact]
    public void Rule40_equal_currents_no_crash_is_no_sync_even_with_primary_bits_differing()
    {
        var (s, p) = Both(Side(new UuidSet(A | 1, 0, B), role: Role.Primary), Side(new UuidSet(A, 0, B)));
        AssertRule(s, 40, SyncResult.NoSync);
        AssertRule(p, 40, SyncResult.NoSync);
    }

    [Fact]
    public void Rule40_crashed_primary_becomes_source_when_both_are_secondary()
    {
        var (s, p) = Both(Side(new UuidSet(A, 0), crashed: true), Side(new UuidSet(A, 0)));
        AssertRule(s, 40, SyncResult.BecomeSyncSourceBitmap);
        AssertRule(p, 40, SyncResult.BecomeSyncTargetBitmap);
    }

    [Theory]
    [InlineData(true, SyncResult.BecomeSyncTargetBitmap, SyncResult.BecomeSyncSourceBitmap)]
    [InlineData(false, SyncResult.BecomeSyncSourceBitmap, SyncResult.BecomeSyncTargetBitmap)]
    public void Rule40_both_crashed_primaries_tie_goes_against_resolve_conflicts(bool selfResolves, SyncResult self, SyncResult peer)
    {
        var (s, p) = Both(Side(new UuidSet(A, 0), crashed: true), Side(new UuidSet(A, 0), crashed: true), selfResolves);
        AssertRule(s, 40, self);
        AssertRule(p, 40, peer);
    }

    [Fact]
    public void Rule42_protocol_C_the_reconnected_survivor_is_source_over_the_crashed_primary()
    {
        var crashed = Side(new UuidSet(A, 0), crashed: true);
        var survivor = Side(new UuidSet(A, 0)) with { Reconnected = true };
        var (s, p) = (UuidComparison.Compare(crashed, survivor, false, ReplicationProtocol.C), UuidComparison.Compare(survivor, crashed, true, ReplicationProtocol.C));
        AssertRule(s, 42, SyncResult.BecomeSyncTargetBitmap);
        AssertRule(p, 42, SyncResult.BecomeSyncSourceBitmap);
    }

    [Theory]
    [InlineData(ReplicationProtocol.A, true)]
    [InlineData(ReplicationProtocol.B, true)]
    [InlineData(ReplicationProtocol.C, false)]
    public void Rule40_stays_for_protocols_A_and_B_and_when_the_survivor_restarted_too(ReplicationProtocol protocol, bool survivorReconnected)
    {
        // A/B: the crashed Primary may hold acknowledged writes its peer never got. A survivor that
        // restarted as well (a common power failure) proves nothing: the crashed Primary is the source.
        var crashed = Side(new UuidSet(A, 0), crashed: true);
        var survivor = Side(new UuidSet(A, 0)) with { Reconnected = survivorReconnected };
        AssertRule(UuidComparison.Compare(crashed, survivor, false, protocol), 40, SyncResult.BecomeSyncSourceBitmap);
        AssertRule(UuidComparison.Compare(survivor, crashed, true, protocol), 40, SyncResult.BecomeSyncTargetBitmap);
    }

    [Fact]
    public void Rule40_no_crash_stays_no_sync_for_reconnected_sides()
    {
        var side = Side(new UuidSet(A, 0)) with { Reconnected = true };
        AssertRule(UuidComparison.Compare(side, side, false, ReplicationProtocol.C), 40, SyncResult.NoSync);
    }

    [Fact]
    public void Rule41_a_current_primary_is_source_over_a_crashed_primary_flag()
    {
        var (s, p) = Both(Side(new UuidSet(A, 0), crashed: true), Side(new UuidSet(A | 1, 0), role: Role.Primary));
        AssertRule(s, 41, SyncResult.BecomeSyncTargetBitmap);
        AssertRule(p, 41, SyncResult.BecomeSyncSourceBitmap);
    }

    [Fact]
    public void Rule41_both_primary_with_a_crashed_flag_is_split_brain_disconnect()
    {
        var (s, p) = Both(Side(new UuidSet(A | 1, 0), crashed: true, role: Role.Primary), Side(new UuidSet(A | 1, 0), role: Role.Primary));
        AssertRule(s, 41, SyncResult.SplitBrainDisconnect);
        AssertRule(p, 41, SyncResult.SplitBrainDisconnect);
    }

    [Fact]
    public void Rule50_and_70_own_current_is_peers_bitmap_uuid()
    {
        // Peer wrote as Primary while we were away: its bitmap UUID is our (old, shared) current.
        var (s, p) = Both(Side(new UuidSet(A, 0, B)), Side(new UuidSet(C | 1, A | 1, B), role: Role.Primary));
        AssertRule(s, 50, SyncResult.BecomeSyncTargetBitmap);
        AssertRule(p, 70, SyncResult.BecomeSyncSourceBitmap);
        Assert.Equal("uuid_compare()=-1 by rule 50", s.Describe());
    }

    [Fact]
    public void Rule51_and_71_lost_sync_uuid_packet_is_undone()
    {
        // Source made its sync UUID (A + offset, A to history) but P_SYNC_UUID never reached the target.
        var sourceBefore = new UuidSet(C, A, D);
        var sourceAfter = new UuidSet(C, A + Off, A, D);
        var target = new UuidSet(A, 0, D);
        var (s, p) = Both(Side(target), Side(sourceAfter));
        AssertRule(s, 51, SyncResult.BecomeSyncTargetBitmap);
        AssertRule(p, 71, SyncResult.BecomeSyncSourceBitmap);
        Assert.Equal(sourceBefore, s.PeerFixup);
        Assert.Equal(sourceBefore, p.SelfFixup);
    }

    [Fact]
    public void Rule51_needs_the_bitmap_to_be_the_sync_uuid_of_history0()
    {
        // Own current is the peer's newest history entry, but the peer's bitmap is not "+ offset":
        // no lost P_SYNC_UUID; the history match makes it rule 60 (full sync).
        var (s, p) = Both(Side(new UuidSet(A, 0)), Side(new UuidSet(C, E, A)));
        AssertRule(s, 60, SyncResult.BecomeSyncTargetFull);
        AssertRule(p, 80, SyncResult.BecomeSyncSourceFull);
    }

    [Fact]
    public void Rule60_and_80_current_found_deeper_in_history_is_full_sync()
    {
        var (s, p) = Both(Side(new UuidSet(B, 0, C)), Side(new UuidSet(A, 0, D, E, B | 1)));
        AssertRule(s, 60, SyncResult.BecomeSyncTargetFull);
        AssertRule(p, 80, SyncResult.BecomeSyncSourceFull);
    }

    [Fact]
    public void Rule90_equal_bitmap_uuids_are_an_auto_recoverable_split_brain()
    {
        // Both became Primary and wrote while apart: same bitmap UUID (the old shared current).
        var (s, p) = Both(Side(new UuidSet(C | 1, A | 1, B)), Side(new UuidSet(D | 1, A, B)));
        AssertRule(s, 90, SyncResult.SplitBrainAutoRecoverable);
        AssertRule(p, 90, SyncResult.SplitBrainAutoRecoverable);
        Assert.Equal(100, s.Hg);
    }

    [Fact]
    public void Rule90_ignores_just_created_bitmap_uuids_from_forced_promotions()
    {
        var (s, _) = Both(Side(new UuidSet(C | 1, Jc)), Side(new UuidSet(D | 1, Jc)));
        AssertRule(s, 100, SyncResult.UnrelatedData);
    }

    [Fact]
    public void Rule100_only_a_shared_history_uuid_is_split_brain_disconnect()
    {
        var (s, p) = Both(Side(new UuidSet(C, E, F, A)), Side(new UuidSet(D, B, A | 1)));
        AssertRule(s, 100, SyncResult.SplitBrainDisconnect);
        AssertRule(p, 100, SyncResult.SplitBrainDisconnect);
        Assert.Equal(-100, s.Hg);
    }

    [Fact]
    public void Rule100_a_bitmap_uuid_in_the_peers_history_is_split_brain_disconnect()
    {
        // A SyncSource missed the end of its resync (bitmap UUID still the sync UUID E) and became
        // Primary alone (old current A to the history); the target had finished (E in its history)
        // and became Primary alone too (bitmap UUID A). Both diverged from A: a split brain.
        var (s, p) = Both(Side(new UuidSet(C | 1, E, A | 1)), Side(new UuidSet(D | 1, A, E)));
        AssertRule(s, 100, SyncResult.SplitBrainDisconnect);
        AssertRule(p, 100, SyncResult.SplitBrainDisconnect);
        // Bitmap UUIDs that name no generation relate nothing.
        var (u, _) = Both(Side(new UuidSet(C | 1, Jc, F)), Side(new UuidSet(D | 1, B, Jc)));
        AssertRule(u, 100, SyncResult.UnrelatedData);
    }

    [Fact]
    public void Rules52_72_a_sync_uuid_its_source_never_recorded_is_a_full_sync_from_that_source()
    {
        // The source (bitmap UUID B) made B + offset its sync UUID and the target took it as current;
        // the source's disk failed under the write that recorded it, so it came back with B.
        var target = new UuidSet(B + UuidComparison.NewBitmapOffset, 0);
        var source = new UuidSet(C | 1, B, D, E);
        var (t, s) = Both(Side(target), Side(source));
        AssertRule(t, 52, SyncResult.BecomeSyncTargetFull);
        AssertRule(s, 72, SyncResult.BecomeSyncSourceFull);
        // Had the source recorded it, rule 50 resumes the resync from the bitmap.
        var (resumed, _) = Both(Side(target), Side(new UuidSet(C | 1, B + UuidComparison.NewBitmapOffset, B, D, E)));
        AssertRule(resumed, 50, SyncResult.BecomeSyncTargetBitmap);
    }

    [Fact]
    public void Unrelated_data_when_nothing_matches()
    {
        var (s, p) = Both(Side(new UuidSet(C, E, F)), Side(new UuidSet(D, B, A)));
        AssertRule(s, 100, SyncResult.UnrelatedData);
        AssertRule(p, 100, SyncResult.UnrelatedData);
        Assert.Equal("uuid_compare()=-1000 by rule 100", s.Describe());
    }

    [Fact]
    public void Primary_bits_are_ignored_in_every_comparison()
    {
        AssertRule(UuidComparison.Compare(Side(new UuidSet(A | 1, 0)), Side(new UuidSet(C, A, B)), false), 50, SyncResult.BecomeSyncTargetBitmap);
        AssertRule(UuidComparison.Compare(Side(new UuidSet(Jc | 1, 0)), Side(new UuidSet(Jc, 0)), false), 10, SyncResult.NoSync);
    }

    [Fact]
    public void Rules_are_applied_in_drbd_order_bitmap_before_history()
    {
        // Own current equals the peer's bitmap UUID AND appears in its history: rule 50 wins (bitmap sync).
        AssertRule(UuidComparison.Compare(Side(new UuidSet(A, 0)), Side(new UuidSet(C, A, B, A)), false), 50, SyncResult.BecomeSyncTargetBitmap);
    }

    [Fact]
    public void UuidSet_round_trips_through_generation_ids_slot()
    {
        var ids = new GenerationIds(A | 1, [0, B, 0], [C, D]);
        var view = UuidSet.FromGenerationIds(ids, 1);
        Assert.Equal(new UuidSet(A | 1, B, C, D), view);
        var written = view.WithBitmap(0).PushHistory(B).ApplyTo(ids, 1);
        Assert.Equal(new GenerationIds(A | 1, [0, 0, 0], [B, C, D]), written);
    }

    [Fact]
    public void PushHistory_keeps_at_most_32_and_skips_non_generations()
    {
        var set = new UuidSet(A, 0);
        for (ulong i = 1; i <= 40; i++)
        {
            set = set.PushHistory(i << 8);
        }

        Assert.Equal(Superblock.MaxHistoryUuids, set.History.Length);
        Assert.Equal(40UL << 8, set.History[0]);
        Assert.Equal(set, set.PushHistory(0).PushHistory(Jc));
        Assert.Equal(new UuidSet(A, 0), new UuidSet(A, 0).PopHistory());
    }
}

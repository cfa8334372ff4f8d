// The start/end-of-resync UUID changes: the two sides end equal; an interrupted resync resumes by
// rule 50 (bitmap, not full); a lost P_SYNC_UUID is recognised by rules 51/71; a missed finish by 34/35.
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Tests.Generations;

public class ResyncUuidsTests
{
    private const ulong A = 0xA000, B = 0xB000, C = 0xC000, H = 0x7000;
    private const ulong Off = UuidComparison.NewBitmapOffset;

    private static SyncDecision Compare(UuidSet self, UuidSet peer) =>
        UuidComparison.Compare(new UuidCompareSide(self, MetadataFlags.Consistent, Role.Secondary),
            new UuidCompareSide(peer, MetadataFlags.Consistent, Role.Secondary), resolveConflicts: false);

    private static UuidSet WithoutPrimaryBits(UuidSet s) =>
        new(s.Current & ~1UL, s.Bitmap & ~1UL, [.. s.History.Select(h => h & ~1UL)]);

    [Fact]
    public void Gen_and_send_sync_uuid_offsets_the_bitmap_uuid_and_rotates_it()
    {
        var (source, sync) = ResyncUuids.GenAndSendSyncUuid(new UuidSet(C | 1, A | 1, H), random: 0x1234);
        Assert.Equal((A | 1) + Off, sync);
        Assert.Equal(new UuidSet(C | 1, (A | 1) + Off, A | 1, H), source);
    }

    [Fact]
    public void Gen_and_send_sync_uuid_without_bitmap_uuid_uses_the_random_value()
    {
        var (source, sync) = ResyncUuids.GenAndSendSyncUuid(new UuidSet(C, 0, H), random: 0x5555);
        Assert.Equal(0x5554UL, sync);
        Assert.Equal(new UuidSet(C, 0x5554, H), source);
        var (_, fromZero) = ResyncUuids.GenAndSendSyncUuid(new UuidSet(C, GenerationIds.JustCreated), random: 1);
        Assert.Equal(1UL << 63, fromZero);
    }

    [Fact]
    public void Receive_sync_uuid_replaces_current_without_rotating_it()
    {
        var target = ResyncUuids.ReceiveSyncUuid(new UuidSet(A, B, H), A + Off + 1, primary: false);
        Assert.Equal(new UuidSet(A + Off, 0, H), target);
        Assert.Equal((A + Off) | 1, ResyncUuids.ReceiveSyncUuid(new UuidSet(A, 0), A + Off, primary: true).Current);
    }

    [Fact]
    public void Bitmap_resync_ends_with_equal_uuids_and_then_no_sync()
    {
        var sourceAtHandshake = new UuidSet(C | 1, A | 1, H);
        var targetAtHandshake = new UuidSet(A, 0, H);
        Assert.Equal(50, Compare(targetAtHandshake, sourceAtHandshake).Rule);

        var (source, sync) = ResyncUuids.GenAndSendSyncUuid(sourceAtHandshake, random: 99);
        var target = ResyncUuids.ReceiveSyncUuid(targetAtHandshake, sync, primary: false);

        var sourceDone = ResyncUuids.ResyncFinishedSource(source);
        var targetDone = ResyncUuids.ResyncFinishedTarget(target, sourceAtHandshake, primary: false);
        Assert.Equal(new UuidSet(C | 1, 0, (A | 1) + Off, A | 1, H), sourceDone);
        Assert.Equal(WithoutPrimaryBits(sourceDone), WithoutPrimaryBits(targetDone));
        Assert.Equal(C, targetDone.Current); // primary bit follows the target's role
        Assert.Equal(40, Compare(targetDone, sourceDone).Rule);
        Assert.Equal(SyncResult.NoSync, Compare(targetDone, sourceDone).Result);
    }

    [Fact]
    public void Full_resync_ends_with_equal_uuids()
    {
        var sourceAtHandshake = new UuidSet(C, GenerationIds.JustCreated);
        var targetAtHandshake = new UuidSet(GenerationIds.JustCreated, 0);
        Assert.Equal(SyncResult.BecomeSyncTargetFull, Compare(targetAtHandshake, sourceAtHandshake).Result);
        var (source, sync) = ResyncUuids.GenAndSendSyncUuid(sourceAtHandshake, random: 0x4242);
        var target = ResyncUuids.ReceiveSyncUuid(targetAtHandshake, sync, primary: false);
        var sourceDone = ResyncUuids.ResyncFinishedSource(source);
        Assert.Equal(sourceDone, ResyncUuids.ResyncFinishedTarget(target, sourceAtHandshake, primary: false));
        Assert.Equal(new UuidSet(C, 0, 0x4242), sourceDone);
    }

    [Fact]
    public void Scenario20_interrupted_resync_resumes_by_bitmap_in_the_same_direction()
    {
        // drbd.md §8.20 resync-interrupt-variants: disconnect mid-resync, reconnect.
        var sourceAtHandshake = new UuidSet(C, A, H);
        var (source, sync) = ResyncUuids.GenAndSendSyncUuid(sourceAtHandshake, random: 5);
        var target = ResyncUuids.ReceiveSyncUuid(new UuidSet(A, 0, H), sync, primary: false);

        var resumed = Compare(target, source);
        Assert.Equal(50, resumed.Rule);
        Assert.Equal(SyncResult.BecomeSyncTargetBitmap, resumed.Result);
        Assert.Equal(SyncResult.BecomeSyncSourceBitmap, Compare(source, target).Result);

        // The resumed run makes the next sync UUID and still converges.
        var (source2, sync2) = ResyncUuids.GenAndSendSyncUuid(source, random: 6);
        Assert.Equal(A + 2 * Off, sync2);
        var target2 = ResyncUuids.ReceiveSyncUuid(target, sync2, primary: false);
        var sourceDone = ResyncUuids.ResyncFinishedSource(source2);
        Assert.Equal(sourceDone, ResyncUuids.ResyncFinishedTarget(target2, source, primary: false));
    }

    [Fact]
    public void Lost_sync_uuid_then_reconnect_is_rule_51_and_71_and_fixups_restore_the_handshake_state()
    {
        var sourceAtHandshake = new UuidSet(C, A, H);
        var targetAtHandshake = new UuidSet(A, 0, H);
        var (source, _) = ResyncUuids.GenAndSendSyncUuid(sourceAtHandshake, random: 5); // P_SYNC_UUID lost

        var t = Compare(targetAtHandshake, source);
        var s = Compare(source, targetAtHandshake);
        Assert.Equal((51, SyncResult.BecomeSyncTargetBitmap), (t.Rule, t.Result));
        Assert.Equal((71, SyncResult.BecomeSyncSourceBitmap), (s.Rule, s.Result));
        Assert.Equal(sourceAtHandshake, s.SelfFixup);
        Assert.Equal(sourceAtHandshake, t.PeerFixup);
    }

    [Fact]
    public void Source_missing_the_finish_is_rule_34_and_its_fixup_equals_the_finished_state()
    {
        var sourceAtHandshake = new UuidSet(C, A, H);
        var (source, sync) = ResyncUuids.GenAndSendSyncUuid(sourceAtHandshake, random: 5);
        var target = ResyncUuids.ReceiveSyncUuid(new UuidSet(A, 0, H), sync, primary: false);
        var targetDone = ResyncUuids.ResyncFinishedTarget(target, sourceAtHandshake, primary: false);

        var s = Compare(source, targetDone); // source never ran drbd_resync_finished
        Assert.Equal((34, SyncResult.BecomeSyncSourceBitmap), (s.Rule, s.Result));
        Assert.Equal(ResyncUuids.ResyncFinishedSource(source), s.SelfFixup);
        Assert.Equal(35, Compare(targetDone, source).Rule);
    }
}

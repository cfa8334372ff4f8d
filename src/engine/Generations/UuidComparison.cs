// DRBD 8.4's drbd_uuid_compare for two nodes, rule for rule (Linux drivers/block/drbd/drbd_receiver.c):
// decides from the generation identifiers alone whether to resync, in which direction, bitmap or
// full, or whether the data diverged (split brain) or never shared a generation. Pure: the UUID
// corrections DRBD makes in place (rules 34, 35, 51, 71) are returned for the caller to apply.
// Differences from the kernel, all for our metadata shape: history has up to 32 entries instead of
// 2 and absent entries do not exist (so two empty histories never "match" in rule 100), and a bitmap
// UUID of JUST_CREATED (left by a forced promotion of fresh metadata) is no generation for rule 90,
// rule 100 counts bitmap UUIDs as ancestors too (see Ancestors), and rules 52/72 (not in the kernel)
// relate a target that took a sync UUID to a source whose disk failed before it recorded it.
// The protocol-version escapes (-1091/-1096, "requires proto 91") do not apply: both sides are us.
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Generations;

/// <summary>One side's input to <see cref="UuidComparison.Compare"/>.</summary>
/// <param name="Uuids">Its UUIDs for this connection.</param>
/// <param name="Flags">Its metadata flags; only <see cref="MetadataFlags.CrashedPrimary"/> is read (DRBD's UUID flag 2 on the wire).</param>
/// <param name="Role">Its role now (rule 41: a current Primary is the source).</param>
/// <param name="Reconnected">It lost a connection to the other node and has not restarted since (DRBD 9's UUID_FLAG_RECONNECT).</param>
public readonly record struct UuidCompareSide(UuidSet Uuids, MetadataFlags Flags, Role Role, bool Reconnected = false)
{
    public bool CrashedPrimary => (Flags & MetadataFlags.CrashedPrimary) != 0;
    public bool IsPrimary => Role == Role.Primary;
}

public static class UuidComparison
{
    /// <summary>DRBD's UUID_NEW_BM_OFFSET: a SyncSource's new bitmap UUID is its old one plus this.</summary>
    public const ulong NewBitmapOffset = 0x0001000000000000UL;

    /// <summary>
    /// drbd_uuid_compare from <paramref name="self"/>'s point of view. <paramref name="resolveConflicts"/>
    /// is true on the node that holds DRBD's RESOLVE_CONFLICTS tie-breaker (exactly one of the two).
    /// </summary>
    public static SyncDecision Compare(UuidCompareSide self, UuidCompareSide peer, bool resolveConflicts, ReplicationProtocol protocol = ReplicationProtocol.C)
    {
        ulong mine = Generation(self.Uuids.Current);
        ulong theirs = Generation(peer.Uuids.Current);

        if (mine == GenerationIds.JustCreated && theirs == GenerationIds.JustCreated)
        {
            return new SyncDecision(10, SyncResult.NoSync);
        }

        if (mine is GenerationIds.JustCreated or 0 && theirs != GenerationIds.JustCreated)
        {
            return new SyncDecision(20, SyncResult.BecomeSyncTargetFull);
        }

        if (mine != GenerationIds.JustCreated && theirs is GenerationIds.JustCreated or 0)
        {
            return new SyncDecision(30, SyncResult.BecomeSyncSourceFull);
        }

        return mine == theirs
            ? CompareEqualCurrent(self, peer, resolveConflicts, protocol)
            : CompareDifferentCurrent(self.Uuids, peer.Uuids);
    }

    /// <summary>Rules 34–37 (one side still has a bitmap UUID), 40/41 (crashed primary) and 42 (reconnected survivor).</summary>
    private static SyncDecision CompareEqualCurrent(UuidCompareSide self, UuidCompareSide peer, bool resolveConflicts, ReplicationProtocol protocol)
    {
        UuidSet me = self.Uuids;
        UuidSet them = peer.Uuids;
        if (them.Bitmap == 0 && me.Bitmap != 0)
        {
            // I was SyncSource; if the peer already rotated my bitmap UUID into its history, I missed
            // the resync-finished event: do now what drbd_uuid_set_bm(0) would have done.
            return Same(me.Bitmap, them.HistoryAt(0)) && Same(me.HistoryAt(0), them.HistoryAt(1))
                ? new SyncDecision(34, SyncResult.BecomeSyncSourceBitmap, SelfFixup: me.PushHistory(me.Bitmap).WithBitmap(0))
                : new SyncDecision(36, SyncResult.BecomeSyncSourceBitmap);
        }

        if (me.Bitmap == 0 && them.Bitmap != 0)
        {
            return Same(me.HistoryAt(0), them.Bitmap) && Same(me.HistoryAt(1), them.HistoryAt(0))
                ? new SyncDecision(35, SyncResult.BecomeSyncTargetBitmap, PeerFixup: them.PushHistory(them.Bitmap).WithBitmap(0))
                : new SyncDecision(37, SyncResult.BecomeSyncTargetBitmap);
        }

        int crashed = (self.CrashedPrimary ? 1 : 0) + (peer.CrashedPrimary ? 2 : 0);
        if (crashed == 0)
        {
            return new SyncDecision(40, SyncResult.NoSync); // only a replication link hiccup
        }

        if (self.IsPrimary || peer.IsPrimary)
        {
            // Equal unrotated UUIDs but a Primary now (e.g. I/O was frozen): the Primary is the source.
            if (self.IsPrimary && peer.IsPrimary)
            {
                return new SyncDecision(41, SyncResult.SplitBrainDisconnect); // "Can not happen."
            }

            return new SyncDecision(41, self.IsPrimary ? SyncResult.BecomeSyncSourceBitmap : SyncResult.BecomeSyncTargetBitmap);
        }

        // DRBD 9's "reconnected" rule, for protocol C: the Primary crashed while this node (or the peer)
        // only lost the connection and kept running. Every write the crashed Primary acknowledged is on
        // the survivor, while the crashed Primary's own disk may have lost unflushed ones and may hold
        // writes never acknowledged: the survivor is the source, over the crashed Primary's activity
        // log (the bitmaps are merged). DRBD 8.4 resynced from the crashed Primary here and dropped
        // what its disk had lost. Under A and B the crashed Primary may hold acknowledged writes the
        // survivor never got, so it stays the source (DRBD 9's crashed-primary rule for A/B).
        if (protocol == ReplicationProtocol.C && crashed != 3)
        {
            bool survivor = crashed == 2 ? self.Reconnected : peer.Reconnected;
            if (survivor)
            {
                return new SyncDecision(42, crashed == 2 ? SyncResult.BecomeSyncSourceBitmap : SyncResult.BecomeSyncTargetBitmap);
            }
        }

        // Both Secondary: recovery from a simultaneous hard crash; the crashed Primary is the source.
        return crashed switch
        {
            1 => new SyncDecision(40, SyncResult.BecomeSyncSourceBitmap),
            2 => new SyncDecision(40, SyncResult.BecomeSyncTargetBitmap),
            _ => new SyncDecision(40, resolveConflicts ? SyncResult.BecomeSyncTargetBitmap : SyncResult.BecomeSyncSourceBitmap),
        };
    }

    /// <summary>Rules 50–100 and unrelated data, for different current UUIDs.</summary>
    private static SyncDecision CompareDifferentCurrent(UuidSet me, UuidSet them)
    {
        if (Same(me.Current, them.Bitmap))
        {
            return new SyncDecision(50, SyncResult.BecomeSyncTargetBitmap);
        }

        if (Same(me.Current, them.HistoryAt(0)) && IsSyncUuidOf(them.Bitmap, them.HistoryAt(0)))
        {
            // The peer started a resync as SyncSource but its P_SYNC_UUID never reached me: undo, in my
            // view of the peer, what drbd_gen_and_send_sync_uuid did to its UUIDs.
            return new SyncDecision(51, SyncResult.BecomeSyncTargetBitmap,
                PeerFixup: them.WithBitmap(them.HistoryAt(0)).PopHistory());
        }

        if (IsSyncUuidOf(me.Current, them.Bitmap))
        {
            // Not in the kernel: my current UUID is the sync UUID the peer made from its bitmap UUID,
            // but the peer's disk failed under the write that recorded it (it still has the old
            // bitmap UUID). Nothing says which of its bits that write carried (a full sync sets them
            // all), so this is a full sync from the peer, mirrored by rule 72.
            return new SyncDecision(52, SyncResult.BecomeSyncTargetFull);
        }

        if (them.History.Any(h => Same(me.Current, h)))
        {
            return new SyncDecision(60, SyncResult.BecomeSyncTargetFull);
        }

        if (Same(me.Bitmap, them.Current))
        {
            return new SyncDecision(70, SyncResult.BecomeSyncSourceBitmap);
        }

        if (Same(me.HistoryAt(0), them.Current) && IsSyncUuidOf(me.Bitmap, me.HistoryAt(0)))
        {
            // My last P_SYNC_UUID did not get through: undo my own start-of-resync UUID change.
            return new SyncDecision(71, SyncResult.BecomeSyncSourceBitmap,
                SelfFixup: me.WithBitmap(me.HistoryAt(0)).PopHistory());
        }

        if (IsSyncUuidOf(them.Current, me.Bitmap))
        {
            return new SyncDecision(72, SyncResult.BecomeSyncSourceFull); // rule 52 from the peer's side
        }

        if (me.History.Any(h => Same(them.Current, h)))
        {
            return new SyncDecision(80, SyncResult.BecomeSyncSourceFull);
        }

        ulong bitmap = Generation(me.Bitmap);
        if (bitmap == Generation(them.Bitmap) && bitmap is not (0 or GenerationIds.JustCreated))
        {
            return new SyncDecision(90, SyncResult.SplitBrainAutoRecoverable);
        }

        return Ancestors(me).Any(mine => Ancestors(them).Any(theirs => Same(mine, theirs)))
            ? new SyncDecision(100, SyncResult.SplitBrainDisconnect)
            : new SyncDecision(100, SyncResult.UnrelatedData);
    }

    /// <summary>
    /// Rule 100's generations a node descends from: its history and, unlike the kernel, its bitmap
    /// UUID. A SyncSource that missed the end of its resync keeps the sync UUID as bitmap UUID (its
    /// next new current UUID goes to the history, as DRBD 9's rotate_current_into_bitmap skips a set
    /// bitmap UUID), while the target rotated that sync UUID into its history; if both then write
    /// apart, the only generations they share are one side's bitmap UUID in the other's history.
    /// That is a split brain, not unrelated data: both bitmaps still hold every block written since.
    /// </summary>
    private static IEnumerable<ulong> Ancestors(UuidSet uuids) =>
        uuids.History.Prepend(uuids.Bitmap).Where(IsGeneration);

    /// <summary>True when <paramref name="bitmap"/> is the sync UUID DRBD makes from <paramref name="history0"/> (+ UUID_NEW_BM_OFFSET).</summary>
    private static bool IsSyncUuidOf(ulong bitmap, ulong history0) =>
        unchecked(Generation(history0) + NewBitmapOffset) == Generation(bitmap);

    private static bool IsGeneration(ulong uuid) => Generation(uuid) is not (0 or GenerationIds.JustCreated);

    private static ulong Generation(ulong uuid) => uuid & ~GenerationIds.PrimaryBit;

    private static bool Same(ulong a, ulong b) => GenerationIds.SameGeneration(a, b);
}

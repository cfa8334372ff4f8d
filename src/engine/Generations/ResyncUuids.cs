// The UUID changes DRBD 8.4 makes at the start and at the end of a resync, named after the kernel
// functions that make them. At the start the SyncSource derives a fresh bitmap UUID (old + 
// UUID_NEW_BM_OFFSET) and sends it as P_SYNC_UUID; the SyncTarget takes it as its current UUID. An
// interrupted resync therefore reconnects by rule 50 (target's current = source's bitmap UUID) and
// resumes from the bitmap, and a lost P_SYNC_UUID is recognised by rules 51/71. At the end both
// sides rotate the bitmap UUID into the history and the target adopts the source's UUIDs, so both
// end with equal current and history and a zero bitmap UUID (rule 40: no sync next time).
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Generations;

public static class ResyncUuids
{
    /// <summary>
    /// drbd_gen_and_send_sync_uuid, on the SyncSource before it sends P_SYNC_UUID: the sync UUID is the
    /// bitmap UUID + UUID_NEW_BM_OFFSET, or <paramref name="random"/> when there is no bitmap UUID (full
    /// sync); drbd_uuid_set(UI_BITMAP) moves the old bitmap UUID to the history. Returns the source's new
    /// UUIDs (persist them before sending) and the sync UUID to send.
    /// </summary>
    public static (UuidSet Source, ulong SyncUuid) GenAndSendSyncUuid(UuidSet source, ulong random)
    {
        ulong syncUuid;
        if (source.Bitmap is not (0 or GenerationIds.JustCreated))
        {
            syncUuid = unchecked(source.Bitmap + UuidComparison.NewBitmapOffset);
        }
        else
        {
            syncUuid = random & ~GenerationIds.PrimaryBit;
            if (syncUuid is 0 or GenerationIds.JustCreated)
            {
                syncUuid |= 1UL << 63; // 0 and JUST_CREATED have meanings of their own
            }
        }

        UuidSet rotated = source.Bitmap != 0 ? source.PushHistory(source.Bitmap) : source;
        return (rotated.WithBitmap(syncUuid), syncUuid);
    }

    /// <summary>
    /// receive_sync_uuid, on the SyncTarget: the sync UUID becomes the current UUID (primary bit as the
    /// target's role; the old current is NOT rotated into the history) and the bitmap UUID is cleared.
    /// </summary>
    public static UuidSet ReceiveSyncUuid(UuidSet target, ulong syncUuid, bool primary) =>
        target.WithCurrent(WithRole(syncUuid, primary)).WithBitmap(0);

    /// <summary>
    /// drbd_resync_finished on the SyncSource: drbd_uuid_set_bm(0) — the bitmap UUID moves to the history.
    /// </summary>
    public static UuidSet ResyncFinishedSource(UuidSet source) =>
        source.Bitmap == 0 ? source : source.PushHistory(source.Bitmap).WithBitmap(0);

    /// <summary>
    /// drbd_resync_finished on the SyncTarget: it takes the source's bitmap and history UUIDs,
    /// drbd_uuid_set(UI_BITMAP, own current) rotates them, the source's current becomes its current
    /// (primary bit as the target's role) and drbd_uuid_set_bm(0) rotates the bitmap UUID into the
    /// history. <paramref name="sourceAtHandshake"/> is the source's UUIDs as received at the handshake
    /// (with any <see cref="SyncDecision.PeerFixup"/> applied), i.e. before it made the sync UUID.
    /// The result equals <see cref="ResyncFinishedSource"/> of the source apart from primary bits.
    /// </summary>
    public static UuidSet ResyncFinishedTarget(UuidSet target, UuidSet sourceAtHandshake, bool primary)
    {
        var adopted = new UuidSet(target.Current, sourceAtHandshake.Bitmap, sourceAtHandshake.History);
        if (adopted.Bitmap != 0)
        {
            adopted = adopted.PushHistory(adopted.Bitmap);
        }

        adopted = adopted.WithBitmap(target.Current).WithCurrent(WithRole(sourceAtHandshake.Current, primary));
        return ResyncFinishedSource(adopted);
    }

    private static ulong WithRole(ulong uuid, bool primary) =>
        primary ? uuid | GenerationIds.PrimaryBit : uuid & ~GenerationIds.PrimaryBit;
}

// The metadata a replicated volume reads when it starts (quick-sync bitmaps, the activity-log replay,
// DRBD's apply-al after a crashed Primary) and the ordered write that keeps an extent leaving the AL
// safe (bitmap pages, flush, then the AL transaction with FUA). One place for both, used by
// ResourceManager and by the crash tests, so the tests check what the agent really does at start.
using Redundancy.Block.Engine.ActivityLog;
using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Agent.Resources;

/// <summary>What a volume starts replication with, as read from its metadata.</summary>
/// <param name="Bitmaps">The quick-sync bitmaps, one per peer slot (AL extents marked after a crashed Primary).</param>
/// <param name="Recovered">The replayed activity-log ring.</param>
/// <param name="ActivityLog">The activity log continuing the ring's numbering.</param>
/// <param name="CrashResyncBits">Bits apply-al set (0 unless the metadata says crashed-primary).</param>
internal sealed record VolumeStartState(BitmapTracker Bitmaps, ActivityLogState Recovered, ActivityLogTracker ActivityLog, long CrashResyncBits);

internal static class VolumeMetadataIo
{
    /// <summary>
    /// Reads every bitmap slot and the AL ring under <paramref name="metadata"/> (the superblock as
    /// attached); after a crashed Primary marks the AL's extents out of sync for every peer.
    /// </summary>
    public static async Task<VolumeStartState> LoadAsync(MetadataStore store, Superblock metadata, bool alUpdates, CancellationToken cancellationToken)
    {
        var bitmaps = new List<QuickSyncBitmap>();
        for (int slot = 0; slot < metadata.Peers.Length; slot++)
        {
            bitmaps.Add(await store.ReadBitmapAsync(slot, cancellationToken).ConfigureAwait(false));
        }
        var tracker = new BitmapTracker(bitmaps);
        var recovered = await store.ReadActivityLogAsync(metadata, cancellationToken).ConfigureAwait(false);
        long marked = metadata.Flags.HasFlag(MetadataFlags.CrashedPrimary)
            ? tracker.MarkExtentsOutOfSync(ActivityLogTracker.ActiveExtentsFrom(recovered))
            : 0;
        var activityLog = ActivityLogTracker.FromRecovered(recovered, store.Layout.UsableSizeBytes, metadata.ActivityLogSize4k, alUpdates);
        return new VolumeStartState(tracker, recovered, activityLog, marked);
    }

    /// <summary>Bitmap pages (then flush), then an AL transaction (FUA): the order DRBD needs before an extent leaves the AL.</summary>
    public static async Task WriteAsync(MetadataStore store, IReadOnlyList<BitmapPageImage> pages, ActivityLogTransaction? transaction)
    {
        foreach (var page in pages)
        {
            await store.WriteBitmapBytesAsync(page.Slot, page.SlotOffsetBytes, page.Bytes).ConfigureAwait(false);
        }
        if (pages.Count > 0)
        {
            await store.FlushAsync().ConfigureAwait(false);
        }
        if (transaction is not null)
        {
            await store.WriteActivityLogTransactionAsync(transaction).ConfigureAwait(false);
        }
    }
}

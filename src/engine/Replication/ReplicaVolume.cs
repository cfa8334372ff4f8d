using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// One volume as the replica works with it: size, generation identifiers, metadata flags, disk
/// state and the quick-sync bitmaps (one slot per peer). The replica changes the identifiers and
/// the bitmaps; the host persists what <see cref="IReplicaIo"/> asks it to. The quick-sync bitmaps
/// are those read from the metadata, or fresh (all clear) when none are given.
/// </summary>
/// <param name="number">The volume number.</param>
/// <param name="usableSizeBytes">The data area's size.</param>
/// <param name="ids">Generation identifiers as read from the metadata.</param>
/// <param name="flags">Device flags as read from the metadata.</param>
/// <param name="disk">The disk state the resource derived at attach.</param>
/// <param name="slotOfPeer">Bitmap slot of each peer.</param>
/// <param name="bitmaps">The quick-sync bitmaps read from the metadata (null: fresh, all clear).</param>
/// <param name="outdatedPeers">Peers whose slot carries MDF_PEER_OUTDATED: known Outdated while apart.</param>
public sealed class ReplicaVolume(int number, long usableSizeBytes, GenerationIds ids, MetadataFlags flags, DiskState disk, IReadOnlyDictionary<int, int> slotOfPeer,
    BitmapTracker? bitmaps = null, IEnumerable<int>? outdatedPeers = null)
{
    private readonly Dictionary<int, DiskState> fencedPeerDisks = (outdatedPeers ?? []).ToDictionary(p => p, _ => DiskState.Outdated);

    public int Number { get; } = number;

    public long UsableSizeBytes { get; } = usableSizeBytes;

    public GenerationIds Ids { get; internal set; } = ids;

    public MetadataFlags Flags { get; internal set; } = flags;

    public DiskState Disk { get; internal set; } = disk;

    /// <summary>Bitmap slot of each peer (node-id → slot).</summary>
    public IReadOnlyDictionary<int, int> SlotOfPeer { get; } = slotOfPeer;

    public BitmapTracker Bitmaps { get; } = bitmaps ?? new(usableSizeBytes, Math.Max(1, ids.Bitmap.Length));

    /// <summary>resync-rate and the c-* controller settings for resyncs this volume pulls (DRBD's defaults unless set).</summary>
    public ResyncRateSettings ResyncRate { get; init; } = new();

    /// <summary>The activity log of this disk (as recovered from the metadata); null: no AL kept (tests).</summary>
    public ActivityLog.ActivityLogTracker? ActivityLog { get; init; }

    /// <summary>
    /// What fencing (fence-peer's exit code, or a graceful disconnect) established about a peer's
    /// disk while it is not connected: Outdated or Inconsistent (DRBD's pdsk downgraded from
    /// DUnknown). Persisted as MDF_PEER_OUTDATED; forgotten when the peer connects again.
    /// </summary>
    public IReadOnlyDictionary<int, DiskState> FencedPeerDisks => fencedPeerDisks;

    public bool HasLocalData => Disk is DiskState.UpToDate or DiskState.Consistent or DiskState.Outdated or DiskState.Inconsistent;

    /// <summary>Records (or, with null, forgets) what fencing found; true when that changed anything.</summary>
    internal bool SetFencedPeerDisk(int peerNodeId, DiskState? disk)
    {
        if (disk is null)
        {
            return fencedPeerDisks.Remove(peerNodeId);
        }
        if (fencedPeerDisks.TryGetValue(peerNodeId, out var before) && before == disk)
        {
            return false;
        }
        fencedPeerDisks[peerNodeId] = disk.Value;
        return true;
    }

    /// <summary>Out-of-sync bytes recorded for <paramref name="peerNodeId"/>.</summary>
    public long OutOfSyncBytes(int peerNodeId) => Bitmaps.OutOfSyncBytes(SlotOfPeer[peerNodeId]);
}

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
public sealed class ReplicaVolume(int number, long usableSizeBytes, GenerationIds ids, MetadataFlags flags, DiskState disk, IReadOnlyDictionary<int, int> slotOfPeer,
    BitmapTracker? bitmaps = null)
{
    public int Number { get; } = number;

    public long UsableSizeBytes { get; } = usableSizeBytes;

    public GenerationIds Ids { get; internal set; } = ids;

    public MetadataFlags Flags { get; internal set; } = flags;

    private int diskState = (int)disk;
    private int diskChanges;

    /// <summary>
    /// Changed only under the host's lock, but readable without it (volatile): a host may route a
    /// read to the local disk without the lock when it is UpToDate, see <see cref="DiskChanges"/>.
    /// </summary>
    public DiskState Disk
    {
        get => (DiskState)Volatile.Read(ref diskState);
        internal set
        {
            Volatile.Write(ref diskState, (int)value);
            Interlocked.Increment(ref diskChanges);
        }
    }

    /// <summary>
    /// Counts every assignment of <see cref="Disk"/> (set after it). A lock-free reader takes the count,
    /// then checks the disk is UpToDate, reads, and trusts the data only if the count did not move.
    /// </summary>
    public int DiskChanges => Volatile.Read(ref diskChanges);

    /// <summary>Bitmap slot of each peer (node-id → slot).</summary>
    public IReadOnlyDictionary<int, int> SlotOfPeer { get; } = slotOfPeer;

    public BitmapTracker Bitmaps { get; } = bitmaps ?? new(usableSizeBytes, Math.Max(1, ids.Bitmap.Length));

    /// <summary>resync-rate and the c-* controller settings for resyncs this volume pulls (DRBD's defaults unless set).</summary>
    public ResyncRateSettings ResyncRate { get; init; } = new();

    public bool HasLocalData => Disk is DiskState.UpToDate or DiskState.Consistent or DiskState.Outdated or DiskState.Inconsistent;

    /// <summary>The disk state metadata flags imply for data whose currency is not known (DRBD's attach rules).</summary>
    public static DiskState DiskFromFlags(MetadataFlags flags) =>
        !flags.HasFlag(MetadataFlags.Consistent) ? DiskState.Inconsistent
        : !flags.HasFlag(MetadataFlags.WasUpToDate) ? DiskState.Outdated
        : DiskState.Consistent;

    /// <summary>Out-of-sync bytes recorded for <paramref name="peerNodeId"/>.</summary>
    public long OutOfSyncBytes(int peerNodeId) => Bitmaps.OutOfSyncBytes(SlotOfPeer[peerNodeId]);
}

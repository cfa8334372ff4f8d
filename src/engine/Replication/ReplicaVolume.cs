using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// One volume as the replica works with it: sizes, generation identifiers, metadata flags, disk
/// state and the quick-sync bitmaps (one slot per peer). The replica changes the identifiers and
/// the bitmaps; the host persists what <see cref="IReplicaIo"/> asks it to. The quick-sync bitmaps
/// are those read from the metadata, or fresh (all clear) when none are given.
/// Two sizes: <see cref="UsableSizeBytes"/> is what the local disk holds (the bitmaps cover it),
/// <see cref="AgreedSizeBytes"/> what the nodes agreed on (DRBD's la-size, persisted as the
/// superblock's usable size): the device size clients see, and the only range writes, bitmap
/// exchanges, resync and verify touch. Bits past the agreed size are always clear.
/// </summary>
public sealed class ReplicaVolume
{
    private readonly Dictionary<int, DiskState> fencedPeerDisks;

    /// <param name="number">The volume number.</param>
    /// <param name="usableSizeBytes">What the local disk holds after its metadata (whole 4 KiB blocks).</param>
    /// <param name="ids">Generation identifiers as read from the metadata.</param>
    /// <param name="flags">Metadata flags as read.</param>
    /// <param name="disk">The disk state at start.</param>
    /// <param name="slotOfPeer">Bitmap slot of each peer (node-id → slot).</param>
    /// <param name="bitmaps">The quick-sync bitmaps (covering <paramref name="usableSizeBytes"/>); fresh when null.</param>
    /// <param name="agreedSizeBytes">The last agreed size (la-size); 0: the usable size.</param>
    /// <param name="outdatedPeers">Peers whose slot carries MDF_PEER_OUTDATED: known Outdated while apart.</param>
    public ReplicaVolume(int number, long usableSizeBytes, GenerationIds ids, MetadataFlags flags, DiskState disk, IReadOnlyDictionary<int, int> slotOfPeer,
        BitmapTracker? bitmaps = null, long agreedSizeBytes = 0, IEnumerable<int>? outdatedPeers = null)
    {
        fencedPeerDisks = (outdatedPeers ?? []).ToDictionary(p => p, _ => DiskState.Outdated);
        Number = number;
        UsableSizeBytes = usableSizeBytes;
        Ids = ids;
        Flags = flags;
        Disk = disk;
        SlotOfPeer = slotOfPeer;
        Bitmaps = bitmaps ?? new(usableSizeBytes, Math.Max(1, ids.Bitmap.Length));
        AgreedSizeBytes = agreedSizeBytes == 0 ? usableSizeBytes : agreedSizeBytes;
        Invariant.Assert(Bitmaps.UsableSizeBytes == usableSizeBytes, "the bitmaps cover the usable size");
        Invariant.Assert(AgreedSizeBytes > 0 && AgreedSizeBytes <= usableSizeBytes && AgreedSizeBytes % MetadataLayout.BytesPerBit == 0,
            $"agreed size {AgreedSizeBytes} is whole 4 KiB blocks within the usable {usableSizeBytes}");
        ClearBeyond(AgreedBits, Bitmaps.BitCount); // stale bits from before a shrink, or AL extents past the end
    }

    public int Number { get; }

    /// <summary>What the local disk holds (the bitmaps cover all of it); grows with <see cref="GrowCapacity"/>.</summary>
    public long UsableSizeBytes { get; private set; }

    /// <summary>The agreed (exported, replicated) size, DRBD's la-size.</summary>
    public long AgreedSizeBytes { get; private set; }

    /// <summary>Bitmap bits of the agreed size.</summary>
    public long AgreedBits => AgreedSizeBytes / MetadataLayout.BytesPerBit;

    public GenerationIds Ids { get; internal set; }

    /// <summary>
    /// DRBD's exposed_data_uuid: the data generation this node serves while Primary — its own
    /// disk's current UUID while that is UpToDate, an UpToDate peer's while it has no disk of its
    /// own. 0 while Secondary. In memory only, as in DRBD.
    /// </summary>
    public ulong ExposedDataUuid { get; internal set; }

    public MetadataFlags Flags { get; internal set; }

    /// <summary>
    /// The disk's current UUID when a write failed on it that may complete through a peer (a client
    /// write, or a peer's): its copy of those blocks is older than the peer's until a resync rewrites
    /// them. 0: none since the last resync. Told to peers as UUID flag MissedWrites; in memory only,
    /// like the bitmap bits of those writes, which the failed disk could not store.
    /// </summary>
    public ulong MissedWritesGeneration { get; internal set; }

    private int diskState;
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
    public IReadOnlyDictionary<int, int> SlotOfPeer { get; }

    public BitmapTracker Bitmaps { get; }

    /// <summary>resync-rate and the c-* controller settings for resyncs this volume pulls (DRBD's defaults unless set).</summary>
    public ResyncRateSettings ResyncRate { get => resyncRate; init => resyncRate = value; }

    private ResyncRateSettings resyncRate = new();

    /// <summary>`adjust` with new disk options: resyncs and verifies started from now on use them.</summary>
    internal void SetResyncRate(ResyncRateSettings settings) => resyncRate = settings;

    /// <summary>The activity log of this disk (as recovered from the metadata); null: no AL kept (tests).</summary>
    public ActivityLog.ActivityLogTracker? ActivityLog { get; init; }

    /// <summary>
    /// What fencing (fence-peer's exit code, or a graceful disconnect) established about a peer's
    /// disk while it is not connected: Outdated or Inconsistent (DRBD's pdsk downgraded from
    /// DUnknown). Persisted as MDF_PEER_OUTDATED; forgotten when the peer connects again.
    /// </summary>
    public IReadOnlyDictionary<int, DiskState> FencedPeerDisks => fencedPeerDisks;

    public bool HasLocalData => Disk is DiskState.UpToDate or DiskState.Consistent or DiskState.Outdated or DiskState.Inconsistent;

    /// <summary>The disk state metadata flags imply for data whose currency is not known (DRBD's attach rules).</summary>
    public static DiskState DiskFromFlags(MetadataFlags flags) =>
        !flags.HasFlag(MetadataFlags.Consistent) ? DiskState.Inconsistent
        : !flags.HasFlag(MetadataFlags.WasUpToDate) ? DiskState.Outdated
        : DiskState.Consistent;

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

    /// <summary>
    /// A new agreed size. Growing marks the new area out of sync for every peer (DRBD's
    /// drbd_bm_resize with set_new_bits) unless <paramref name="markNewArea"/> is false
    /// (--assume-clean); shrinking drops the bits past the new end.
    /// </summary>
    internal void SetAgreedSize(long agreedSizeBytes, bool markNewArea)
    {
        Invariant.Assert(agreedSizeBytes > 0 && agreedSizeBytes <= UsableSizeBytes && agreedSizeBytes % MetadataLayout.BytesPerBit == 0,
            $"agreed size {agreedSizeBytes} is whole 4 KiB blocks within the usable {UsableSizeBytes}");
        long oldBits = AgreedBits;
        AgreedSizeBytes = agreedSizeBytes;
        if (AgreedBits < oldBits)
        {
            ClearBeyond(AgreedBits, oldBits);
        }
        else if (markNewArea)
        {
            for (int slot = 0; slot < Bitmaps.PeerSlots; slot++)
            {
                Bitmaps.SetBits(slot, oldBits, AgreedBits - oldBits);
            }
        }
    }

    /// <summary>The local disk grew (resize, after the host moved the metadata): the bitmaps and the AL cover the new size.</summary>
    internal void GrowCapacity(long usableSizeBytes)
    {
        Invariant.Assert(usableSizeBytes >= UsableSizeBytes && usableSizeBytes % MetadataLayout.BytesPerBit == 0, "the usable size only grows, in 4 KiB blocks");
        Bitmaps.Grow(usableSizeBytes);
        ActivityLog?.Grow(usableSizeBytes);
        UsableSizeBytes = usableSizeBytes;
    }

    private void ClearBeyond(long firstBit, long endBit)
    {
        for (int slot = 0; slot < Bitmaps.PeerSlots && endBit > firstBit; slot++)
        {
            Bitmaps.ClearBits(slot, firstBit, endBit - firstBit);
        }
    }
}

using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// The real I/O of one attached volume: the backing disk (and external meta-disk), its metadata
/// store and the data area (all the disk holds; clients see the agreed size of it). Opening reads
/// and validates the metadata; closing writes nothing by itself (the resource persists the final
/// superblock first) and releases the disks. `resize` grows it in place: the disk is re-read and the
/// metadata moved to where the bigger disk keeps it.
/// </summary>
internal sealed class VolumeRuntime : IAsyncDisposable
{
    private readonly FileBlockDevice backing;
    private readonly FileBlockDevice? metaDisk;

    private VolumeRuntime(VolumeDefinition definition, FileBlockDevice backing, FileBlockDevice? metaDisk, MetadataStore store, Superblock metadata, IBlockDevice dataArea)
    {
        Definition = definition;
        this.backing = backing;
        this.metaDisk = metaDisk;
        Store = store;
        Metadata = metadata;
        DataArea = dataArea;
    }

    public VolumeDefinition Definition { get; }

    /// <summary>The metadata as laid out now (a resize moves it).</summary>
    public MetadataStore Store { get; private set; }

    /// <summary>The superblock as read at attach.</summary>
    public Superblock Metadata { get; }

    /// <summary>[0, usable size) of the backing disk: all the disk holds for data (clients see the agreed size of it).</summary>
    public IBlockDevice DataArea { get; private set; }

    /// <summary>
    /// Opens the backing disk (exclusively, so no one mounts it under us), finds and validates the
    /// metadata, checks it belongs to this node. <paramref name="directIo"/> opens the disk with O_DIRECT. Fails with a one-line reason an operator can act on.
    /// </summary>
    public static async Task<(VolumeRuntime? Volume, string Error)> OpenAsync(VolumeDefinition definition, int nodeId, bool directIo, CancellationToken cancellationToken)
    {
        if (definition.Disk is null)
        {
            return (null, $"volume {definition.Number} has `disk none` (diskless)");
        }
        FileBlockDevice? backing = null;
        FileBlockDevice? metaDisk = null;
        try
        {
            backing = FileBlockDevice.Open(definition.Disk, new FileBlockDeviceOptions { Exclusive = true, DirectIo = directIo });
            metaDisk = definition.IsInternalMetadata ? null : FileBlockDevice.Open(definition.MetaDisk, new FileBlockDeviceOptions { Exclusive = true });
            var metaDevice = metaDisk ?? backing;
            var opened = await MetadataStore.OpenAsync(metaDevice, definition.IsInternalMetadata, backing.SizeBytes, cancellationToken).ConfigureAwait(false);
            if (opened.Error is not null)
            {
                return Fail($"metadata on {metaDevice.Path}: {opened.Error}" + (opened.NoMetadata ? " (run `rbadm create-md`)" : string.Empty));
            }
            var superblock = opened.Superblock!;
            if (superblock.NodeId != nodeId)
            {
                return Fail($"metadata on {metaDevice.Path} belongs to node-id {superblock.NodeId}, the config says node-id {nodeId}");
            }
            var dataArea = new SubrangeBlockDevice(DataDevice(backing), 0, opened.Store!.Layout.UsableSizeBytes);
            return (new VolumeRuntime(definition, backing, metaDisk, opened.Store!, superblock, dataArea), string.Empty);
        }
        catch (IOException e)
        {
            return Fail(e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            return Fail(e.Message);
        }

        (VolumeRuntime?, string) Fail(string error)
        {
            metaDisk?.Dispose();
            backing?.Dispose();
            return (null, error);
        }
    }

    /// <summary>
    /// Re-reads the size of the disks; when the backing disk holds more data now, the layout the
    /// metadata gets on it (same peer slots and AL geometry), else null. <paramref name="error"/>
    /// says why a bigger disk cannot be used (e.g. an external meta-disk too small for its bitmap).
    /// </summary>
    public MetadataLayout? GrownLayout(out string? error)
    {
        error = null;
        var old = Store.Layout;
        long diskBytes = backing.RefreshSize();
        long metaBytes = metaDisk?.RefreshSize() ?? diskBytes;
        bool ok = old.IsInternal
            ? MetadataLayout.TryCreateInternal(diskBytes, old.PeerSlots, out var layout, out string reason, old.AlStripes, old.AlStripeSize4k)
            : MetadataLayout.TryCreateExternal(diskBytes, metaBytes, old.PeerSlots, out layout, out reason, old.AlStripes, old.AlStripeSize4k);
        if (!ok)
        {
            error = reason;
            return null;
        }
        return layout.UsableSizeBytes > old.UsableSizeBytes ? layout : null;
    }

    /// <summary>
    /// Moves the metadata to <paramref name="layout"/> (DRBD's "md moved" on resize): the activity-log
    /// ring as it is, then every bitmap slot (<paramref name="bitmaps"/>, covering the new size), then
    /// both superblock copies, each flushed. Until the superblocks are written the new place holds no
    /// valid metadata; the old place lies past the agreed size, in the area a resync fills. The caller
    /// keeps every other metadata write out meanwhile.
    /// </summary>
    public async Task RelocateAsync(MetadataLayout layout, Superblock superblock, IReadOnlyList<QuickSyncBitmap> bitmaps, CancellationToken cancellationToken)
    {
        var device = metaDisk ?? backing;
        var old = Store.Layout;
        byte[] ring = new byte[old.ActivityLogSizeBytes];
        await device.ReadAsync(old.ActivityLogOffsetBytes, ring, cancellationToken).ConfigureAwait(false);
        var moved = new MetadataStore(device, layout);
        await device.WriteAsync(layout.ActivityLogOffsetBytes, ring, fua: false, cancellationToken).ConfigureAwait(false);
        for (int slot = 0; slot < bitmaps.Count; slot++)
        {
            await moved.WriteBitmapAsync(slot, bitmaps[slot], cancellationToken).ConfigureAwait(false);
        }
        for (int copy = 0; copy < MetadataLayout.SuperblockCopies; copy++)
        {
            await moved.WriteAsync(superblock, cancellationToken).ConfigureAwait(false);
        }
        Store = moved;
        DataArea = new SubrangeBlockDevice(DataDevice(backing), 0, layout.UsableSizeBytes);
    }

    /// <summary>How data reaches the disk, for the attach log line.</summary>
    public string IoMode => !backing.IsDirectIo ? "buffered I/O (page cache)"
        : backing.HasDirectIoQueue ? $"direct I/O, asynchronous (Linux AIO, {DirectIoQueue.Depth} requests)" : "direct I/O, synchronous (no Linux AIO here)";

    /// <summary>With O_DIRECT, data requests go to the disk asynchronously, many at once; the metadata stays synchronous.</summary>
    private static IBlockDevice DataDevice(FileBlockDevice backing) => backing.HasDirectIoQueue ? new QueuedBlockDevice(backing) : backing;

    /// <summary>Makes all data written so far durable (fdatasync on the backing disk).</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken) => backing.FlushAsync(cancellationToken);

    public ValueTask DisposeAsync()
    {
        metaDisk?.Dispose();
        backing.Dispose();
        return ValueTask.CompletedTask;
    }
}

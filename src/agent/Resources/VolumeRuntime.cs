using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// The real I/O of one attached volume: the backing disk (and external meta-disk), its metadata
/// store and the data area handed to NBD. Opening reads and validates the metadata; closing writes
/// nothing by itself (the resource persists the final superblock first) and releases the disks.
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

    public MetadataStore Store { get; }

    /// <summary>The superblock as read at attach.</summary>
    public Superblock Metadata { get; }

    /// <summary>[0, usable size) of the backing disk: what clients read and write.</summary>
    public IBlockDevice DataArea { get; }

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
            var dataArea = new SubrangeBlockDevice(backing, 0, superblock.UsableSizeBytes);
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

    /// <summary>Makes all data written so far durable (fdatasync on the backing disk).</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken) => backing.FlushAsync(cancellationToken);

    public ValueTask DisposeAsync()
    {
        metaDisk?.Dispose();
        backing.Dispose();
        return ValueTask.CompletedTask;
    }
}

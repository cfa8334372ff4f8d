// `resize` on real files: after the backing file grew, the attached volume moves its metadata to
// where the bigger disk keeps it (the new end, for internal metadata; a wider bitmap stride, for
// external), and a fresh attach finds it there with the agreed size, bitmaps and AL unchanged.
using System.Collections.Immutable;
using System.Diagnostics;
using Redundancy.Block.Agent.Resources;
using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Agent.Tests.Storage;

public class VolumeResizeTests
{
    private const long MiB = 1L << 20;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_grown_disk_gets_its_metadata_moved_and_keeps_the_agreed_size(bool internalMetadata)
    {
        using var disk = new TempDiskFile(16 * MiB);
        using var meta = new TempDiskFile(MiB);
        var definition = new VolumeDefinition { Number = 0, Disk = disk.Path, MetaDisk = internalMetadata ? "internal" : meta.Path };
        var (agreed, ring) = await FormatAsync(definition);

        var (volume, error) = await VolumeRuntime.OpenAsync(definition, nodeId: 0, directIo: false, CancellationToken.None);
        Assert.True(volume is not null, error);
        await using (volume)
        {
            long before = volume.Store.Layout.UsableSizeBytes;
            Assert.Equal(before, volume.DataArea.SizeBytes);
            Assert.Null(volume.GrownLayout(out error));
            Assert.Null(error);

            Truncate(disk.Path, 24 * MiB);
            var layout = volume.GrownLayout(out error);
            Assert.True(layout is not null, error);
            Assert.True(layout.UsableSizeBytes > before);
            var bitmaps = new List<QuickSyncBitmap>();
            for (int slot = 0; slot < layout.PeerSlots; slot++)
            {
                bitmaps.Add((await volume.Store.ReadBitmapAsync(slot)).Resized(layout.UsableSizeBytes));
            }
            bitmaps[1].SetBits((layout.UsableSizeBytes / 4096) - 1, 1); // a bit in the new area
            await volume.RelocateAsync(layout, volume.Metadata, bitmaps, CancellationToken.None);
            Assert.Equal(layout.UsableSizeBytes, volume.DataArea.SizeBytes);
            Assert.Same(layout, volume.Store.Layout);
        }

        // A fresh attach finds the metadata where the bigger disk keeps it.
        (volume, error) = await VolumeRuntime.OpenAsync(definition, nodeId: 0, directIo: false, CancellationToken.None);
        Assert.True(volume is not null, error);
        await using (volume)
        {
            Assert.Equal(agreed, volume.Metadata.UsableSizeBytes);
            Assert.True(volume.Store.Layout.UsableSizeBytes > 16 * MiB - MiB);
            var slot1 = await volume.Store.ReadBitmapAsync(1);
            Assert.Equal(3, slot1.SetBitCount);
            Assert.True(slot1.IsSet(5) && slot1.IsSet(6) && slot1.IsSet(slot1.BitCount - 1));
            Assert.Equal(0, (await volume.Store.ReadBitmapAsync(0)).SetBitCount);
            var al = await volume.Store.ReadActivityLogAsync(volume.Metadata);
            Assert.Equal(ring.ToArray(), al.ActiveExtents.ToArray());
        }
    }

    /// <summary>create-md with two peer slots, an agreed size below the disk's, two bits in slot 1 and an AL transaction.</summary>
    private static async Task<(long Agreed, ImmutableArray<uint> Ring)> FormatAsync(VolumeDefinition definition)
    {
        using var backing = FileBlockDevice.Open(definition.Disk!, new FileBlockDeviceOptions());
        using var metaDisk = definition.IsInternalMetadata ? null : FileBlockDevice.Open(definition.MetaDisk, new FileBlockDeviceOptions());
        var device = metaDisk ?? backing;
        Assert.True(definition.IsInternalMetadata
            ? MetadataLayout.TryCreateInternal(backing.SizeBytes, 2, out var layout, out string error)
            : MetadataLayout.TryCreateExternal(backing.SizeBytes, device.SizeBytes, 2, out layout, out error), error);
        var options = new MetadataFormatOptions { NodeId = 0, PeerNodeIds = [1, 2], DeviceUuid = 7 };
        Assert.True(Superblock.TryCreateFresh(layout, options, out var fresh, out error), error);
        long agreed = layout.UsableSizeBytes - (2 * MiB);
        var store = new MetadataStore(device, layout);
        var written = await store.FormatAsync(fresh with { UsableSizeBytes = agreed });
        var bitmap = new QuickSyncBitmap(layout.UsableSizeBytes);
        bitmap.SetBits(5, 2);
        await store.WriteBitmapAsync(1, bitmap);
        uint[] slots = [.. Enumerable.Repeat(ActivityLogTransaction.FreeExtent, written.AlExtents)];
        slots[0] = 3;
        await store.WriteActivityLogTransactionAsync(ActivityLogTransaction.Create(1, [new ActivityLogUpdate(0, 3)], slots));
        return (agreed, (await store.ReadActivityLogAsync(written)).ActiveExtents);
    }

    /// <summary>Grows a file the way an operator does (the volume holds an exclusive lock on it).</summary>
    private static void Truncate(string path, long sizeBytes)
    {
        using var process = Process.Start("truncate", ["-s", sizeBytes.ToString(System.Globalization.CultureInfo.InvariantCulture), path]);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}

using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Metadata;

public class MetadataLayoutTests
{
    private const long MiB = 1L << 20;
    private const long GiB = 1L << 30;

    [Fact]
    public void Internal_one_GiB_one_peer_puts_metadata_at_the_end()
    {
        Assert.True(MetadataLayout.TryCreateInternal(GiB, 1, out var layout, out _));
        Assert.True(layout.IsInternal);
        Assert.Equal(GiB - 8192, layout.SuperblockAreaOffsetBytes);
        Assert.Equal(GiB - 8192 - 32768, layout.ActivityLogOffsetBytes);
        Assert.Equal(32768, layout.BitmapSlotSizeBytes); // 32 KiB per GiB per peer
        Assert.Equal(layout.ActivityLogOffsetBytes - 32768, layout.BitmapOffsetBytes);
        Assert.Equal(layout.BitmapOffsetBytes, layout.UsableSizeBytes);
        Assert.Equal(GiB - layout.MetadataSizeBytes, layout.UsableSizeBytes);
        Assert.Equal(0, layout.UsableSizeBytes % 4096);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 3)]
    [InlineData(10 * 1024 + 7, 1)]
    [InlineData(10 * 1024 + 7, 32)]
    [InlineData(128 + 1, 31)]
    [InlineData(1L << 22, 2)] // 4 TiB in MiB
    public void Internal_usable_size_is_the_largest_that_fits(long diskMiB, int peers)
    {
        long disk = (diskMiB * MiB) + 4097; // unaligned tail
        bool ok = MetadataLayout.TryCreateInternal(disk, peers, out var layout, out string error);
        if (!ok)
        {
            Assert.Contains("too small", error);
            return;
        }

        Assert.Equal(0, layout.UsableSizeBytes % 4096);
        Assert.True(layout.UsableSizeBytes <= layout.BitmapOffsetBytes);
        Assert.True(layout.SuperblockAreaOffsetBytes + 8192 <= disk);
        Assert.Equal(peers * layout.BitmapSlotSizeBytes, layout.BitmapSizeBytes);
        Assert.True(layout.BitmapSlotSizeBytes * 8 * 4096 >= layout.UsableSizeBytes);
        // One more 4 KiB of data would not fit.
        long bigger = layout.UsableSizeBytes + 4096;
        long end = disk & ~4095L;
        Assert.True(bigger + (peers * MetadataLayout.BitmapSlotSizeFor(bigger)) + 32768 + 8192 > end);
    }

    [Fact]
    public void Internal_too_small_disk_names_the_sizes()
    {
        Assert.False(MetadataLayout.TryCreateInternal(MiB, 2, out _, out string error));
        long needed = 8192 + 32768 + (2 * 4096);
        Assert.Contains($"disk size {MiB} bytes", error);
        Assert.Contains($"metadata size needed {needed} bytes", error);
        Assert.Contains($"minimum disk size {MiB + needed} bytes", error);
        Assert.True(MetadataLayout.TryCreateInternal(MiB + needed, 2, out var layout, out _));
        Assert.Equal(MiB, layout.UsableSizeBytes);
    }

    [Fact]
    public void External_puts_superblock_first_and_checks_the_meta_device()
    {
        Assert.True(MetadataLayout.TryCreateExternal(GiB + 100, 4 * MiB, 3, out var layout, out _));
        Assert.False(layout.IsInternal);
        Assert.Equal(GiB, layout.UsableSizeBytes);
        Assert.Equal(0, layout.SuperblockAreaOffsetBytes);
        Assert.Equal(8192, layout.ActivityLogOffsetBytes);
        Assert.Equal(8192 + 32768, layout.BitmapOffsetBytes);
        Assert.Equal(8192 + 32768 + (2 * 32768), layout.BitmapSlotOffsetBytes(2));
        Assert.Equal(8192 + 32768 + (3 * 32768), layout.MetadataSizeBytes);

        Assert.False(MetadataLayout.TryCreateExternal(GiB, 64 * 1024, 3, out _, out string error));
        Assert.Contains("metadata device size 65536 bytes", error);
        Assert.Contains($"metadata size needed {layout.MetadataSizeBytes} bytes", error);
        Assert.Contains($"minimum metadata device size {layout.MetadataSizeBytes} bytes", error);

        Assert.False(MetadataLayout.TryCreateExternal(512 * 1024, 4 * MiB, 1, out _, out error));
        Assert.Contains("disk size 524288 bytes", error);
        Assert.Contains("minimum disk size 1048576 bytes", error);
    }

    [Fact]
    public void Peer_slots_and_al_geometry_are_checked()
    {
        Assert.False(MetadataLayout.TryCreateInternal(GiB, 0, out _, out string error));
        Assert.Contains("peer slots", error);
        Assert.False(MetadataLayout.TryCreateInternal(GiB, 33, out _, out _));
        Assert.False(MetadataLayout.TryCreateInternal(GiB, 1, out _, out error, alStripes: 0));
        Assert.Contains("activity log", error);
        Assert.True(MetadataLayout.TryCreateInternal(GiB, 1, out var striped, out _, alStripes: 4, alStripeSize4k: 4));
        Assert.Equal(16 * 4096, striped.ActivityLogSizeBytes);
    }

    [Fact]
    public void Superblock_area_place_depends_only_on_placement_and_size()
    {
        Assert.True(MetadataLayout.TryCreateInternal(GiB + 123, 4, out var layout, out _));
        Assert.Equal(layout.SuperblockAreaOffsetBytes, MetadataLayout.SuperblockAreaOffsetFor(true, GiB + 123));
        Assert.Equal(0, MetadataLayout.SuperblockAreaOffsetFor(false, GiB));
    }
}

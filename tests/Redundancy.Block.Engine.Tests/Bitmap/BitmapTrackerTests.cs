using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Tests.Metadata;

namespace Redundancy.Block.Engine.Tests.Bitmap;

public class BitmapTrackerTests
{
    private const long PageBytes = 128L << 20; // data covered by one bitmap page
    private const long Bits = BitmapTracker.BitsPerPage;

    [Fact]
    public void Grow_covers_the_new_size_with_clear_bits_and_keeps_dirty_pages()
    {
        var t = new BitmapTracker(PageBytes + (64L << 20), 2); // 1.5 pages
        t.MarkOutOfSync(1, PageBytes + 4096, 4096);
        t.Grow((3 * PageBytes) + 4096);
        Assert.Equal(4, t.PageCount);
        Assert.Equal((3 * Bits) + 1, t.BitCount);
        Assert.Equal(4096, t.OutOfSyncBytes(1));
        Assert.Equal(0, t.OutOfSyncBytes(0));
        Assert.Equal([new BitmapWrite(1, Bits, Bits)], t.TakeDirtyPages(1));

        // The new area is usable like the rest.
        Assert.Equal(1, t.MarkOutOfSync(0, 3 * PageBytes, 4096));
        Assert.Equal([new BitmapWrite(0, 3 * Bits, 1)], t.TakeDirtyPages(0));
        Assert.Throws<InvariantViolationException>(() => t.Grow(PageBytes));
    }

    [Fact]
    public void Only_pages_whose_bits_changed_are_dirty()
    {
        var t = new BitmapTracker((3 * PageBytes) + (64L << 20), 2); // 3.5 pages
        Assert.Equal(4, t.PageCount);
        Assert.Equal(1, t.MarkOutOfSync(0, PageBytes + 100, 10)); // one block, rounded outwards
        Assert.Equal([new BitmapWrite(0, Bits, Bits)], t.TakeDirtyPages(0));
        Assert.Empty(t.TakeDirtyPages(0));

        Assert.Equal(0, t.MarkOutOfSync(0, PageBytes, 4096)); // already set: no change, not dirty
        Assert.Equal(0, t.MarkInSync(0, PageBytes + 1, 4096)); // covers no whole block: nothing cleared
        Assert.Equal(0, t.DirtyPageCount(0));
        Assert.Equal(0, t.MarkInSync(0, 0, 8192)); // clear bits that were clear: not dirty
        Assert.Equal(0, t.DirtyPageCount(0));

        // A range across the page boundary dirties both pages; adjacent dirty pages coalesce.
        Assert.Equal(3, t.MarkOutOfSync(0, PageBytes - 8192, 16384)); // one of its four blocks was set already
        Assert.Equal([new BitmapWrite(0, 0, 2 * Bits)], t.TakeDirtyPages(0));

        // The last page is clamped to the data; the other slot is untouched.
        t.MarkOutOfSync(0, t.UsableSizeBytes - 4096, 4096);
        t.MarkOutOfSync(0, 0, 4096);
        Assert.Equal([new BitmapWrite(0, 0, Bits), new BitmapWrite(0, 3 * Bits, Bits / 2)], t.TakeDirtyPages(0));
        Assert.Equal(0, t.DirtyPageCount(1));
        Assert.Equal(6 * 4096, t.OutOfSyncBytes(0));
        Assert.Equal(0, t.OutOfSyncBytes(1));
    }

    [Fact]
    public void Dirty_ranges_are_exact_against_a_model()
    {
        var random = new Random(5);
        long usable = 10 * PageBytes;
        var t = new BitmapTracker(usable, 1);
        var persisted = new QuickSyncBitmap(usable); // what the disk holds
        for (int round = 0; round < 50; round++)
        {
            var before = QuickSyncBitmap.FromSlotBytes(SlotBytes(t.Bitmap(0)), usable);
            for (int i = 0; i < random.Next(0, 20); i++)
            {
                long offset = random.NextInt64(usable / 512) * 512;
                long length = Math.Min(usable - offset, random.NextInt64(1, 4L << 20));
                _ = random.Next(2) == 0 ? t.MarkOutOfSync(0, offset, length) : t.MarkInSync(0, offset, length);
            }

            var changedPages = Enumerable.Range(0, 10).Where(p => !before.Words.Slice(p * 512, 512).SequenceEqual(t.Bitmap(0).Words.Slice(p * 512, 512))).ToHashSet();
            var written = new HashSet<int>();
            foreach (BitmapWrite w in t.TakeDirtyPages(0))
            {
                Assert.Equal(0, w.FirstBit % Bits);
                for (long p = w.FirstBit / Bits; p < (w.FirstBit + w.BitCount) / Bits; p++)
                {
                    written.Add((int)p);
                }

                persisted = Persist(persisted, t.Bitmap(0), w);
            }

            Assert.Equal(changedPages.Order(), written.Order());
            Assert.True(t.Bitmap(0).Words.SequenceEqual(persisted.Words), "the written pages make the disk copy equal");
        }
    }

    [Fact]
    public async Task Dirty_pages_written_through_the_metadata_store_round_trip()
    {
        var (device, store, _) = MetadataStoreTests.Formatted(peerSlots: 2);
        var t = new BitmapTracker(store.Layout.UsableSizeBytes, 2);
        t.MarkOutOfSync(1, 4096 * 7, 4096 * 3);
        t.SetAll(0);
        int writesBefore = device.Writes;
        foreach (BitmapWrite w in t.TakeAllDirtyPages())
        {
            await store.WriteBitmapBitsAsync(w.Slot, t.Bitmap(w.Slot), w.FirstBit, w.BitCount);
        }

        Assert.Equal(2, device.Writes - writesBefore);
        Assert.Equal(t.Bitmap(0).Words.ToArray(), (await store.ReadBitmapAsync(0)).Words.ToArray());
        Assert.Equal(t.Bitmap(1).Words.ToArray(), (await store.ReadBitmapAsync(1)).Words.ToArray());
        Assert.Equal(3, (await store.ReadBitmapAsync(1)).SetBitCount);
    }

    [Fact]
    public void Eviction_write_back_takes_only_the_pages_of_the_leaving_extents()
    {
        var t = new BitmapTracker(4 * PageBytes, 2);
        const long extent = ActivityLogTransaction.ExtentSizeBytes;
        t.MarkOutOfSync(0, 33 * extent, 4096);      // page 1, extent 33
        t.MarkOutOfSync(1, 40 * extent + 4096, 1);  // page 1, extent 40, other slot
        t.MarkOutOfSync(0, 100 * extent, 4096);     // page 3, extent 100

        Assert.Empty(t.TakeDirtyPagesForExtents([5, 64])); // clean pages: nothing to write first
        IReadOnlyList<BitmapWrite> writes = t.TakeDirtyPagesForExtents([33]);
        Assert.Equal([new BitmapWrite(0, Bits, Bits), new BitmapWrite(1, Bits, Bits)], writes);
        Assert.Equal(1, t.DirtyPageCount(0)); // page 3 waits for its own eviction or shutdown
        Assert.True(t.IsPageDirty(0, 3));

        // A failed write puts its pages back.
        t.ReturnDirtyPages(writes[1]);
        Assert.Equal([new BitmapWrite(1, Bits, Bits)], t.TakeDirtyPages(1));
        Assert.Equal([new BitmapWrite(0, 3 * Bits, Bits)], t.TakeAllDirtyPages());
    }

    [Fact]
    public void Set_all_and_clear_all_count_and_dirty_every_page()
    {
        var t = new BitmapTracker(2 * PageBytes, 1);
        Assert.Equal(2 * Bits, t.SetAll(0));
        Assert.Equal(2 * PageBytes, t.OutOfSyncBytes(0));
        Assert.Equal(2, t.DirtyPageCount(0));
        t.TakeDirtyPages(0);
        Assert.Equal(0, t.SetAll(0));
        Assert.Equal(0, t.DirtyPageCount(0));
        Assert.Equal(2 * Bits, t.ClearAll(0));
        Assert.Equal(0, t.OutOfSyncBytes(0));
    }

    private static byte[] SlotBytes(QuickSyncBitmap b)
    {
        byte[] bytes = new byte[b.SlotSizeBytes];
        b.WriteSlotBytes(0, bytes);
        return bytes;
    }

    private static QuickSyncBitmap Persist(QuickSyncBitmap disk, QuickSyncBitmap memory, BitmapWrite w)
    {
        byte[] bytes = SlotBytes(disk);
        long pages = (w.BitCount + Bits - 1) / Bits;
        memory.WriteSlotBytes(w.FirstBit / 8, bytes.AsSpan((int)(w.FirstBit / 8), (int)(pages * 4096)));
        return QuickSyncBitmap.FromSlotBytes(bytes, disk.UsableSizeBytes);
    }
}

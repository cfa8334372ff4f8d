// The in-memory quick-sync bitmaps of a volume (one per peer slot) with per-4-KiB-page dirty tracking,
// so that only pages whose bits actually changed are written back. Write-back is lazy, as DRBD's:
// when an extent leaves the activity log (its pages must be durable before the AL transaction that
// evicts it), on demand, and at detach / clean shutdown (TakeAllDirtyPages).
// Rule for callers: set out-of-sync bits only for ranges whose AL extents are referenced (before
// EndWrite), so no bit of an extent being evicted can be set between taking its pages and the commit.
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Bitmap;

public sealed class BitmapTracker
{
    /// <summary>Bits in one 4 KiB bitmap page (each covers 128 MiB of data).</summary>
    public const long BitsPerPage = MetadataLayout.BlockSizeBytes * 8L;
    private const long BitsPerExtent = ActivityLogTransaction.ExtentSizeBytes / MetadataLayout.BytesPerBit;

    private readonly QuickSyncBitmap[] _bitmaps;
    private readonly bool[][] _dirty;
    private readonly int[] _dirtyCount;

    /// <summary>Clean bitmaps for <paramref name="peerSlots"/> slots over <paramref name="usableSizeBytes"/>.</summary>
    public BitmapTracker(long usableSizeBytes, int peerSlots)
        : this([.. Enumerable.Range(0, peerSlots).Select(_ => new QuickSyncBitmap(usableSizeBytes))])
    {
    }

    /// <summary>Bitmaps as read from disk (all pages clean). All must cover the same data size.</summary>
    public BitmapTracker(IReadOnlyList<QuickSyncBitmap> bitmaps)
    {
        Invariant.Assert(bitmaps.Count is >= 1 and <= MetadataLayout.MaxPeerSlots, "1..32 peer slots");
        UsableSizeBytes = bitmaps[0].UsableSizeBytes;
        Invariant.Assert(bitmaps.All(b => b.UsableSizeBytes == UsableSizeBytes), "every slot covers the same data");
        _bitmaps = [.. bitmaps];
        PageCount = (bitmaps[0].BitCount + BitsPerPage - 1) / BitsPerPage;
        _dirty = [.. bitmaps.Select(_ => new bool[PageCount])];
        _dirtyCount = new int[bitmaps.Count];
    }

    public long UsableSizeBytes { get; private set; }
    public int PeerSlots => _bitmaps.Length;
    public long BitCount => _bitmaps[0].BitCount;
    /// <summary>Bitmap pages per slot.</summary>
    public long PageCount { get; private set; }

    /// <summary>
    /// The disk grew (resize): every slot now covers <paramref name="usableSizeBytes"/>, the new bits
    /// clear; dirty pages stay dirty. The caller writes the whole bitmaps to their new place on disk.
    /// Callers must hold no <see cref="Bitmap"/> reference across it (no resync or verify runs).
    /// </summary>
    public void Grow(long usableSizeBytes)
    {
        Invariant.Assert(usableSizeBytes >= UsableSizeBytes, "a bitmap only grows");
        long pages = ((usableSizeBytes / MetadataLayout.BytesPerBit) + BitsPerPage - 1) / BitsPerPage;
        for (int slot = 0; slot < _bitmaps.Length; slot++)
        {
            _bitmaps[slot] = _bitmaps[slot].Resized(usableSizeBytes);
            Array.Resize(ref _dirty[slot], (int)pages);
        }

        UsableSizeBytes = usableSizeBytes;
        PageCount = pages;
    }

    /// <summary>The bitmap of <paramref name="slot"/>, to pass to MetadataStore. Change it only through this tracker.</summary>
    public QuickSyncBitmap Bitmap(int slot) => _bitmaps[CheckSlot(slot)];

    public long OutOfSyncBytes(int slot) => _bitmaps[CheckSlot(slot)].OutOfSyncBytes;

    public int DirtyPageCount(int slot) => _dirtyCount[CheckSlot(slot)];

    public bool IsPageDirty(int slot, long page) => _dirty[CheckSlot(slot)][page];

    /// <summary>Marks a byte range out of sync (rounded outwards to 4 KiB); returns newly set bits.</summary>
    public long MarkOutOfSync(int slot, long offsetBytes, long lengthBytes)
    {
        CheckRange(offsetBytes, lengthBytes);
        if (lengthBytes == 0)
        {
            return 0;
        }

        long first = offsetBytes / MetadataLayout.BytesPerBit;
        long end = (offsetBytes + lengthBytes + MetadataLayout.BytesPerBit - 1) / MetadataLayout.BytesPerBit;
        return ChangeBits(slot, first, end - first, set: true);
    }

    /// <summary>Marks a byte range in sync (only fully covered 4 KiB blocks, as DRBD); returns cleared bits.</summary>
    public long MarkInSync(int slot, long offsetBytes, long lengthBytes)
    {
        CheckRange(offsetBytes, lengthBytes);
        long first = (offsetBytes + MetadataLayout.BytesPerBit - 1) / MetadataLayout.BytesPerBit;
        long end = (offsetBytes + lengthBytes) / MetadataLayout.BytesPerBit;
        return end > first ? ChangeBits(slot, first, end - first, set: false) : 0;
    }

    /// <summary>Sets bits [first, first+count) of <paramref name="slot"/>; returns newly set bits.</summary>
    public long SetBits(int slot, long firstBit, long bitCount) => ChangeBits(slot, firstBit, bitCount, set: true);

    /// <summary>Clears bits [first, first+count) of <paramref name="slot"/>; returns cleared bits.</summary>
    public long ClearBits(int slot, long firstBit, long bitCount) => ChangeBits(slot, firstBit, bitCount, set: false);

    /// <summary>Full sync: every bit of <paramref name="slot"/> out of sync.</summary>
    public long SetAll(int slot) => ChangeBits(slot, 0, BitCount, set: true);

    /// <summary>Every bit of <paramref name="slot"/> in sync (e.g. new-current-uuid --clear-bitmap).</summary>
    public long ClearAll(int slot) => ChangeBits(slot, 0, BitCount, set: false);

    /// <summary>
    /// DRBD's apply-al in memory: marks every extent in <paramref name="extents"/> out of sync in every
    /// slot (after a Primary crash, so resync covers the writes that may have been in flight).
    /// </summary>
    public long MarkExtentsOutOfSync(IEnumerable<uint> extents)
    {
        long newlySet = 0;
        foreach (uint extent in extents)
        {
            (long first, long count) = ExtentBits(extent);
            for (int slot = 0; slot < PeerSlots && count > 0; slot++)
            {
                newlySet += ChangeBits(slot, first, count, set: true);
            }
        }

        return newlySet;
    }

    /// <summary>The dirty pages of <paramref name="slot"/>, coalesced, in order; they count as clean afterwards.</summary>
    public IReadOnlyList<BitmapWrite> TakeDirtyPages(int slot) => TakePages(slot, 0, PageCount);

    /// <summary>Dirty pages of every slot (for detach and clean shutdown).</summary>
    public IReadOnlyList<BitmapWrite> TakeAllDirtyPages() =>
        [.. Enumerable.Range(0, PeerSlots).SelectMany(TakeDirtyPages)];

    /// <summary>
    /// Write-back policy for the activity log: the dirty pages (every slot) holding bits of
    /// <paramref name="extents"/>, which must be durable before an AL transaction evicting them is
    /// written. They count as clean afterwards.
    /// </summary>
    public IReadOnlyList<BitmapWrite> TakeDirtyPagesForExtents(IEnumerable<uint> extents)
    {
        var pages = new SortedSet<long>();
        foreach (uint extent in extents)
        {
            (long first, long count) = ExtentBits(extent);
            if (count > 0)
            {
                for (long page = first / BitsPerPage; page <= (first + count - 1) / BitsPerPage; page++)
                {
                    pages.Add(page);
                }
            }
        }

        var writes = new List<BitmapWrite>();
        for (int slot = 0; slot < PeerSlots; slot++)
        {
            foreach (long page in pages)
            {
                writes.AddRange(TakePages(slot, page, page + 1));
            }
        }

        return Coalesce(writes);
    }

    /// <summary>Copies of the pages named by <paramref name="writes"/> (from the Take… methods), for writing outside a lock.</summary>
    public IReadOnlyList<BitmapPageImage> Images(IEnumerable<BitmapWrite> writes)
    {
        var images = new List<BitmapPageImage>();
        foreach (var write in writes)
        {
            long firstByte = write.FirstBit / BitsPerPage * MetadataLayout.BlockSizeBytes;
            long endByte = ((write.FirstBit + write.BitCount - 1) / BitsPerPage + 1) * MetadataLayout.BlockSizeBytes;
            var bytes = new byte[endByte - firstByte];
            Bitmap(write.Slot).WriteSlotBytes(firstByte, bytes);
            images.Add(new BitmapPageImage(write.Slot, firstByte, bytes));
        }
        return images;
    }

    /// <summary>Puts the pages of a write that failed back to dirty, so they are written again.</summary>
    public void ReturnDirtyPages(BitmapWrite write)
    {
        CheckSlot(write.Slot);
        Invariant.Assert(write.FirstBit >= 0 && write.BitCount > 0 && write.FirstBit + write.BitCount <= BitCount, "write inside the bitmap");
        for (long page = write.FirstBit / BitsPerPage; page <= (write.FirstBit + write.BitCount - 1) / BitsPerPage; page++)
        {
            MarkDirty(write.Slot, page);
        }
    }

    private (long First, long Count) ExtentBits(uint extent)
    {
        long first = extent * BitsPerExtent;
        return first >= BitCount ? (first, 0) : (first, Math.Min(BitsPerExtent, BitCount - first));
    }

    /// <summary>Changes bits page by page so that exactly the pages whose bits changed become dirty.</summary>
    private long ChangeBits(int slot, long firstBit, long bitCount, bool set)
    {
        QuickSyncBitmap bitmap = _bitmaps[CheckSlot(slot)];
        Invariant.Assert(firstBit >= 0 && bitCount >= 0 && firstBit + bitCount <= BitCount, "bit range inside the bitmap");
        long changed = 0;
        long bit = firstBit, end = firstBit + bitCount;
        while (bit < end)
        {
            long page = bit / BitsPerPage;
            long chunkEnd = Math.Min(end, (page + 1) * BitsPerPage);
            long n = set ? bitmap.SetBits(bit, chunkEnd - bit) : bitmap.ClearBits(bit, chunkEnd - bit);
            if (n > 0)
            {
                MarkDirty(slot, page);
                changed += n;
            }

            bit = chunkEnd;
        }

        return changed;
    }

    private void MarkDirty(int slot, long page)
    {
        if (!_dirty[slot][page])
        {
            _dirty[slot][page] = true;
            _dirtyCount[slot]++;
        }
    }

    private List<BitmapWrite> TakePages(int slot, long fromPage, long endPage)
    {
        bool[] dirty = _dirty[CheckSlot(slot)];
        var writes = new List<BitmapWrite>();
        for (long page = fromPage; page < endPage; page++)
        {
            if (dirty[page])
            {
                dirty[page] = false;
                _dirtyCount[slot]--;
                long first = page * BitsPerPage;
                writes.Add(new BitmapWrite(slot, first, Math.Min(BitsPerPage, BitCount - first)));
            }
        }

        return Coalesce(writes);
    }

    private static List<BitmapWrite> Coalesce(List<BitmapWrite> writes)
    {
        var result = new List<BitmapWrite>(writes.Count);
        foreach (BitmapWrite w in writes)
        {
            if (result.Count > 0 && result[^1].Slot == w.Slot && result[^1].FirstBit + result[^1].BitCount == w.FirstBit)
            {
                result[^1] = result[^1] with { BitCount = result[^1].BitCount + w.BitCount };
            }
            else
            {
                result.Add(w);
            }
        }

        return result;
    }

    private int CheckSlot(int slot)
    {
        Invariant.Assert(slot >= 0 && slot < _bitmaps.Length, "peer slot inside the bitmap set");
        return slot;
    }

    private void CheckRange(long offsetBytes, long lengthBytes) =>
        Invariant.Assert(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= UsableSizeBytes, "byte range inside the data");
}

// The quick-sync bitmap of one peer slot, in memory: one bit per 4 KiB of usable data, set while that
// block may differ from the peer. On disk (a bitmap slot) it is an array of little-endian 64-bit words,
// bit i in word i/64 at position i%64, as DRBD stores its bitmap; the slot is padded to 4 KiB pages.
using System.Buffers.Binary;
using System.Numerics;

namespace Redundancy.Block.Engine.Metadata;

public sealed class QuickSyncBitmap
{
    public const int BytesPerBit = MetadataLayout.BytesPerBit;

    private readonly ulong[] _words;

    /// <summary>A clean bitmap for <paramref name="usableSizeBytes"/> (a multiple of 4 KiB) of data.</summary>
    public QuickSyncBitmap(long usableSizeBytes)
    {
        Invariant.Assert(usableSizeBytes >= 0 && usableSizeBytes % BytesPerBit == 0, "bitmap covers whole 4 KiB blocks");
        UsableSizeBytes = usableSizeBytes;
        BitCount = usableSizeBytes / BytesPerBit;
        _words = new ulong[(BitCount + 63) / 64];
    }

    public long UsableSizeBytes { get; }
    public long BitCount { get; }
    /// <summary>Number of set (out-of-sync) bits, kept up to date.</summary>
    public long SetBitCount { get; private set; }
    /// <summary>Bytes marked out of sync.</summary>
    public long OutOfSyncBytes => SetBitCount * BytesPerBit;

    public bool IsSet(long bit)
    {
        CheckBit(bit);
        return (_words[bit >> 6] & (1UL << (int)(bit & 63))) != 0;
    }

    /// <summary>Counts set bits from scratch (for checking the running count).</summary>
    public long CountSetBits()
    {
        long count = 0;
        foreach (ulong w in _words)
        {
            count += BitOperations.PopCount(w);
        }

        return count;
    }

    /// <summary>Sets bits [first, first+count); returns how many were newly set.</summary>
    public long SetBits(long firstBit, long count) => Change(firstBit, count, set: true);

    /// <summary>Clears bits [first, first+count); returns how many were set before.</summary>
    public long ClearBits(long firstBit, long count) => Change(firstBit, count, set: false);

    /// <summary>Marks a byte range out of sync: every 4 KiB block it touches (rounded outwards).</summary>
    public long SetRange(long offsetBytes, long lengthBytes)
    {
        CheckRange(offsetBytes, lengthBytes);
        if (lengthBytes == 0)
        {
            return 0;
        }

        long first = offsetBytes / BytesPerBit;
        long end = (offsetBytes + lengthBytes + BytesPerBit - 1) / BytesPerBit;
        return SetBits(first, end - first);
    }

    /// <summary>Marks a byte range in sync: only the 4 KiB blocks it fully covers (rounded inwards), as DRBD does.</summary>
    public long ClearRange(long offsetBytes, long lengthBytes)
    {
        CheckRange(offsetBytes, lengthBytes);
        long first = (offsetBytes + BytesPerBit - 1) / BytesPerBit;
        long end = (offsetBytes + lengthBytes) / BytesPerBit;
        return end > first ? ClearBits(first, end - first) : 0;
    }

    public void SetAll() => SetBits(0, BitCount);

    public void ClearAll() => ClearBits(0, BitCount);

    /// <summary>First set bit at or after <paramref name="fromBit"/>, or -1.</summary>
    public long FindNextSet(long fromBit) => Find(fromBit, set: true);

    /// <summary>First clear bit at or after <paramref name="fromBit"/>, or -1.</summary>
    public long FindNextClear(long fromBit) => Find(fromBit, set: false);

    /// <summary>Bytes one slot of this bitmap takes on disk (whole 4 KiB pages).</summary>
    public long SlotSizeBytes => MetadataLayout.BitmapSlotSizeFor(UsableSizeBytes);

    /// <summary>
    /// Writes the slot bytes starting at slot byte <paramref name="slotOffsetBytes"/> (a multiple of 8)
    /// into <paramref name="destination"/>; bytes past the last word are zero.
    /// </summary>
    public void WriteSlotBytes(long slotOffsetBytes, Span<byte> destination)
    {
        Invariant.Assert(slotOffsetBytes >= 0 && slotOffsetBytes % 8 == 0 && destination.Length % 8 == 0, "bitmap bytes are whole words");
        Invariant.Assert(slotOffsetBytes + destination.Length <= SlotSizeBytes, "inside the bitmap slot");
        long firstWord = slotOffsetBytes / 8;
        for (int i = 0; i * 8 < destination.Length; i++)
        {
            long w = firstWord + i;
            BinaryPrimitives.WriteUInt64LittleEndian(destination[(i * 8)..], w < _words.Length ? _words[w] : 0);
        }
    }

    /// <summary>
    /// Loads a bitmap from slot bytes (untrusted). Bits past the end of the data are ignored and
    /// cleared, as DRBD's bm_clear_surplus does.
    /// </summary>
    public static QuickSyncBitmap FromSlotBytes(ReadOnlySpan<byte> slot, long usableSizeBytes)
    {
        var bitmap = new QuickSyncBitmap(usableSizeBytes);
        Invariant.Assert(slot.Length >= bitmap._words.Length * 8L, "slot holds every word");
        for (int i = 0; i < bitmap._words.Length; i++)
        {
            bitmap._words[i] = BinaryPrimitives.ReadUInt64LittleEndian(slot[(i * 8)..]);
        }

        int tailBits = (int)(bitmap.BitCount & 63);
        if (tailBits != 0)
        {
            bitmap._words[^1] &= (1UL << tailBits) - 1;
        }

        bitmap.SetBitCount = bitmap.CountSetBits();
        return bitmap;
    }

    /// <summary>
    /// A copy covering <paramref name="usableSizeBytes"/> instead (after the disk grew): the bits both
    /// cover are kept, new bits are clear, bits past a smaller end are dropped.
    /// </summary>
    public QuickSyncBitmap Resized(long usableSizeBytes)
    {
        var resized = new QuickSyncBitmap(usableSizeBytes);
        Array.Copy(_words, resized._words, Math.Min(_words.Length, resized._words.Length));
        int tailBits = (int)(resized.BitCount & 63);
        if (tailBits != 0 && resized._words.Length <= _words.Length)
        {
            resized._words[^1] &= (1UL << tailBits) - 1;
        }

        resized.SetBitCount = resized.CountSetBits();
        return resized;
    }

    /// <summary>The words (little-endian on disk) for dumps.</summary>
    public ReadOnlySpan<ulong> Words => _words;

    private long Change(long firstBit, long count, bool set)
    {
        Invariant.Assert(firstBit >= 0 && count >= 0 && firstBit + count <= BitCount, "bit range inside the bitmap");
        long changed = 0;
        long bit = firstBit, end = firstBit + count;
        while (bit < end)
        {
            int shift = (int)(bit & 63);
            int n = (int)Math.Min(64 - shift, end - bit);
            ulong mask = (n == 64 ? ulong.MaxValue : ((1UL << n) - 1)) << shift;
            ref ulong word = ref _words[bit >> 6];
            ulong before = word;
            word = set ? before | mask : before & ~mask;
            changed += BitOperations.PopCount(before ^ word);
            bit += n;
        }

        SetBitCount += set ? changed : -changed;
        return changed;
    }

    private long Find(long fromBit, bool set)
    {
        Invariant.Assert(fromBit >= 0, "search starts inside the bitmap");
        if (fromBit >= BitCount)
        {
            return -1;
        }

        long index = fromBit >> 6;
        ulong word = (set ? _words[index] : ~_words[index]) & (ulong.MaxValue << (int)(fromBit & 63));
        while (true)
        {
            if (word != 0)
            {
                long bit = (index << 6) + BitOperations.TrailingZeroCount(word);
                return bit < BitCount ? bit : -1;
            }

            if (++index >= _words.Length)
            {
                return -1;
            }

            word = set ? _words[index] : ~_words[index];
        }
    }

    private void CheckBit(long bit) => Invariant.Assert(bit >= 0 && bit < BitCount, "bit inside the bitmap");

    private void CheckRange(long offsetBytes, long lengthBytes) =>
        Invariant.Assert(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= UsableSizeBytes, "byte range inside the data");
}

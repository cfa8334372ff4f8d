using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Metadata;

public class QuickSyncBitmapTests
{
    [Fact]
    public void Set_rounds_outwards_clear_rounds_inwards()
    {
        var bitmap = new QuickSyncBitmap(1L << 20); // 256 bits
        Assert.Equal(256, bitmap.BitCount);
        Assert.Equal(3, bitmap.SetRange(4095, 4098)); // touches blocks 0, 1, 2
        Assert.True(bitmap.IsSet(0) && bitmap.IsSet(1) && bitmap.IsSet(2) && !bitmap.IsSet(3));
        Assert.Equal(0, bitmap.SetRange(100, 1)); // already set
        Assert.Equal(0, bitmap.ClearRange(1, 8190)); // covers no block fully
        Assert.Equal(1, bitmap.ClearRange(4095, 4098)); // covers block 1 only
        Assert.False(bitmap.IsSet(1));
        Assert.Equal(2, bitmap.SetBitCount);
        Assert.Equal(8192, bitmap.OutOfSyncBytes);
        Assert.Equal(0, bitmap.SetRange(0, 0));
    }

    [Fact]
    public void Resized_keeps_the_common_bits_and_clears_the_rest()
    {
        var bitmap = new QuickSyncBitmap(100 * 4096L);
        bitmap.SetBits(0, 3);
        bitmap.SetBits(62, 4); // across a word boundary
        bitmap.SetBits(97, 3); // the last three

        var grown = bitmap.Resized(200 * 4096L);
        Assert.Equal(200, grown.BitCount);
        Assert.Equal(10, grown.SetBitCount);
        Assert.True(grown.IsSet(99) && !grown.IsSet(100) && grown.FindNextSet(100) < 0);

        var shrunk = bitmap.Resized(64 * 4096L);
        Assert.Equal(5, shrunk.SetBitCount); // 0..2, 62, 63
        Assert.Equal(shrunk.CountSetBits(), shrunk.SetBitCount);
        Assert.True(shrunk.IsSet(63));
        Assert.Equal(10, bitmap.SetBitCount); // the original is unchanged
    }

    [Fact]
    public void Counts_stay_right_across_word_boundaries_and_random_operations()
    {
        var bitmap = new QuickSyncBitmap(1000 * 4096L);
        var model = new bool[1000];
        var random = new Random(11);
        for (int i = 0; i < 2000; i++)
        {
            long first = random.Next(1000);
            long count = random.Next((int)(1000 - first) + 1);
            bool set = random.Next(2) == 0;
            long expectedChange = 0;
            for (long b = first; b < first + count; b++)
            {
                expectedChange += model[b] != set ? 1 : 0;
                model[b] = set;
            }

            Assert.Equal(expectedChange, set ? bitmap.SetBits(first, count) : bitmap.ClearBits(first, count));
            Assert.Equal(model.Count(x => x), bitmap.SetBitCount);
        }

        Assert.Equal(bitmap.SetBitCount, bitmap.CountSetBits());
        for (int b = 0; b < 1000; b++)
        {
            Assert.Equal(model[b], bitmap.IsSet(b));
        }
    }

    [Fact]
    public void Find_next_set_and_clear()
    {
        var bitmap = new QuickSyncBitmap(300 * 4096L);
        Assert.Equal(-1, bitmap.FindNextSet(0));
        Assert.Equal(0, bitmap.FindNextClear(0));
        bitmap.SetBits(5, 1);
        bitmap.SetBits(64, 130);
        bitmap.SetBits(299, 1);
        Assert.Equal(5, bitmap.FindNextSet(0));
        Assert.Equal(5, bitmap.FindNextSet(5));
        Assert.Equal(64, bitmap.FindNextSet(6));
        Assert.Equal(100, bitmap.FindNextSet(100));
        Assert.Equal(194, bitmap.FindNextClear(64));
        Assert.Equal(299, bitmap.FindNextSet(194));
        Assert.Equal(-1, bitmap.FindNextSet(300));
        bitmap.SetAll();
        Assert.Equal(-1, bitmap.FindNextClear(0)); // bits past the end do not count
        Assert.Equal(300, bitmap.SetBitCount);
        bitmap.ClearAll();
        Assert.Equal(0, bitmap.SetBitCount);
    }

    [Fact]
    public void Serialises_as_little_endian_words_in_whole_pages()
    {
        var bitmap = new QuickSyncBitmap(100 * 4096L);
        bitmap.SetBits(0, 1);
        bitmap.SetBits(9, 1);
        bitmap.SetBits(99, 1);
        Assert.Equal(4096, bitmap.SlotSizeBytes);
        byte[] slot = new byte[bitmap.SlotSizeBytes];
        bitmap.WriteSlotBytes(0, slot);
        Assert.Equal(0x01, slot[0]);
        Assert.Equal(0x02, slot[1]);
        Assert.Equal(0x08, slot[12]); // bit 99 = word 1, bit 35 → byte 12, bit 3
        Assert.Equal(3, slot.Count(b => b != 0));
        var back = QuickSyncBitmap.FromSlotBytes(slot, 100 * 4096L);
        Assert.Equal(bitmap.Words.ToArray(), back.Words.ToArray());
        Assert.Equal(3, back.SetBitCount);

        slot[12] |= 0x10; // bit 100: past the end, dropped
        Assert.Equal(3, QuickSyncBitmap.FromSlotBytes(slot, 100 * 4096L).SetBitCount);
    }

    [Fact]
    public void Out_of_range_use_is_a_bug()
    {
        var bitmap = new QuickSyncBitmap(10 * 4096L);
        Assert.Throws<InvariantViolationException>(() => bitmap.SetRange(9 * 4096, 4097));
        Assert.Throws<InvariantViolationException>(() => bitmap.IsSet(10));
        Assert.Throws<InvariantViolationException>(() => new QuickSyncBitmap(100));
    }
}

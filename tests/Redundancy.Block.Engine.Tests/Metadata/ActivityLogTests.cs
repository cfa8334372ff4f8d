using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Metadata;

public class ActivityLogTests
{
    private const uint Free = ActivityLogTransaction.FreeExtent;

    /// <summary>A writer in miniature: applies updates to a slot table and logs each transaction.</summary>
    private static async Task<uint[]> LogAsync(MetadataStore store, int alExtents, int transactions, Random random, uint[]? start = null, ulong firstNumber = 0)
    {
        long extentCount = store.Layout.UsableSizeBytes / ActivityLogTransaction.ExtentSizeBytes;
        uint[] slots = start ?? Enumerable.Repeat(Free, alExtents).ToArray();
        for (int t = 0; t < transactions; t++)
        {
            var updates = new List<ActivityLogUpdate>();
            int count = random.Next(0, ActivityLogTransaction.UpdatesPerTransaction + 1);
            var used = new HashSet<int>();
            for (int i = 0; i < count; i++)
            {
                int slot = random.Next(alExtents);
                if (used.Add(slot))
                {
                    uint extent = random.Next(5) == 0 ? Free : (uint)random.NextInt64(extentCount);
                    updates.Add(new ActivityLogUpdate(slot, extent));
                    slots[slot] = extent;
                }
            }

            await store.WriteActivityLogTransactionAsync(ActivityLogTransaction.Create(firstNumber + (ulong)t, updates, slots));
        }

        return slots;
    }

    [Fact]
    public void Transaction_round_trips_and_rejects_corruption()
    {
        uint[] slots = Enumerable.Repeat(Free, 1237).ToArray();
        slots[3] = 17;
        slots[1000] = 5;
        var tr = ActivityLogTransaction.Create(1, [new(3, 17), new(1000, 5)], slots);
        Assert.Equal(920, tr.ContextStartSlot);
        Assert.Equal(1237 - 920, tr.Context.Length);
        byte[] block = new byte[4096];
        tr.Write(block);
        Assert.True(ActivityLogTransaction.TryRead(block, 1237, 100, out var back, out string error), error);
        Assert.Equal(tr.Updates.ToArray(), back.Updates.ToArray());
        Assert.Equal(tr.Context.ToArray(), back.Context.ToArray());
        Assert.Equal(1UL, back.TransactionNumber);

        Assert.False(ActivityLogTransaction.TryRead(block, 1237, 10, out _, out error)); // extent 17 beyond device
        Assert.Contains("out of range", error);
        Assert.False(ActivityLogTransaction.TryRead(block, 1000, 100, out _, out error));
        Assert.Contains("al-extents 1237", error);
        block[500] ^= 1;
        Assert.False(ActivityLogTransaction.TryRead(block, 1237, 100, out _, out error));
        Assert.Contains("checksum", error);
        Assert.False(ActivityLogTransaction.TryRead(new byte[4096], 1237, 100, out _, out error));
        Assert.Equal("empty", error);
    }

    [Fact]
    public void Ring_positions_follow_drbd_striping()
    {
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7, 0], Enumerable.Range(0, 9).Select(t => ActivityLogRing.BlockIndex((ulong)t, 1, 8)));
        Assert.Equal([0, 4, 1, 5, 2, 6, 3, 7, 0], Enumerable.Range(0, 9).Select(t => ActivityLogRing.BlockIndex((ulong)t, 2, 4)));
    }

    [Theory]
    [InlineData(1, 8, 1237, 3)]
    [InlineData(1, 8, 1237, 50)]
    [InlineData(2, 4, 6000, 40)]
    [InlineData(1, 2, 920, 9)]
    public async Task Replay_recovers_the_slot_table(int stripes, int stripeSize4k, int alExtents, int transactions)
    {
        var device = new MemoryDevice(256L << 20);
        Assert.True(MetadataLayout.TryCreateInternal(device.SizeBytes, 1, out var layout, out _, stripes, stripeSize4k));
        Assert.True(Superblock.TryCreateFresh(layout, new MetadataFormatOptions { NodeId = 0, PeerNodeIds = [1], AlExtents = alExtents }, out var sb, out string error), error);
        var store = new MetadataStore(device, layout);
        await store.FormatAsync(sb);
        uint[] expected = await LogAsync(store, alExtents, transactions, new Random(transactions));
        ActivityLogState state = await store.ReadActivityLogAsync(sb);
        Assert.Equal((ulong)(transactions - 1), state.LastTransactionNumber);
        Assert.Equal((ulong)transactions, state.NextTransactionNumber);
        Assert.Equal(Math.Min(transactions, stripes * stripeSize4k), state.ValidTransactions);
        Assert.Equal(expected, state.Slots.ToArray());
        Assert.Equal(expected.Where(e => e != Free).Distinct().Order(), state.ActiveExtents.ToArray());
        Assert.Empty(state.Problems);
    }

    [Fact]
    public async Task A_torn_last_transaction_falls_back_to_the_one_before()
    {
        var (device, store, sb) = MetadataStoreTests.Formatted();
        uint[] before = await LogAsync(store, sb.AlExtents, 20, new Random(7));
        uint[] after = (uint[])before.Clone();
        after[5] = 3;
        var tr = ActivityLogTransaction.Create(20, [new(5, 3)], after);
        byte[] block = new byte[4096];
        tr.Write(block);
        int at = (int)(store.Layout.ActivityLogOffsetBytes + (ActivityLogRing.BlockIndex(20, 1, 8) * 4096L));
        block.AsSpan(0, 2000).CopyTo(device.Data[at..]); // torn: half new, half the old transaction 12

        ActivityLogState state = await store.ReadActivityLogAsync(sb);
        Assert.Equal(19UL, state.LastTransactionNumber);
        Assert.Equal(before, state.Slots.ToArray());
        Assert.Single(state.Problems);
        Assert.Contains("checksum", state.Problems[0]);

        await store.WriteActivityLogTransactionAsync(tr); // the retry lands whole
        state = await store.ReadActivityLogAsync(sb);
        Assert.Equal(after, state.Slots.ToArray());
        Assert.Empty(state.Problems);
    }

    [Fact]
    public async Task Misplaced_and_stale_transactions_are_ignored()
    {
        var (device, store, sb) = MetadataStoreTests.Formatted();
        uint[] slots = await LogAsync(store, sb.AlExtents, 20, new Random(3));
        // The ring holds 12..19: block k has 16+k for k < 4 and 8+k otherwise. Block 4 has the oldest (12).
        int block4 = (int)store.Layout.ActivityLogOffsetBytes + (4 * 4096);
        device.Data.Slice(block4 - 4096, 4096).CopyTo(device.Data[block4..]); // transaction 19 where 12 belongs
        ActivityLogState state = await store.ReadActivityLogAsync(sb);
        Assert.Contains(state.Problems, p => p.Contains("transaction 19 belongs elsewhere", StringComparison.Ordinal));
        Assert.Equal(19UL, state.LastTransactionNumber);
        Assert.Equal(7, state.ValidTransactions);
        Assert.Equal(slots, state.Slots.ToArray()); // the newer seven restate every slot

        // A stale transaction (4: right place, but a full ring older than the newest) is not replayed.
        var stale = ActivityLogTransaction.Create(4, [new(0, 1)], Enumerable.Repeat(1u, sb.AlExtents).ToArray());
        byte[] b = new byte[4096];
        stale.Write(b);
        b.CopyTo(device.Data[block4..]);
        state = await store.ReadActivityLogAsync(sb);
        Assert.Empty(state.Problems);
        Assert.Equal(7, state.ValidTransactions);
        Assert.Equal(slots, state.Slots.ToArray());
    }
}

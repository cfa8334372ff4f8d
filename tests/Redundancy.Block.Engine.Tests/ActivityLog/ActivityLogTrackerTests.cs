using Redundancy.Block.Engine.ActivityLog;
using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Tests.Metadata;

namespace Redundancy.Block.Engine.Tests.ActivityLog;

public class ActivityLogTrackerTests
{
    private const long Mib4 = ActivityLogTransaction.ExtentSizeBytes;
    private const uint Free = ActivityLogTransaction.FreeExtent;

    /// <summary>The on-disk ring in memory: persists transactions at their ring block and replays them as after a crash.</summary>
    private sealed class Ring(Superblock superblock)
    {
        private readonly byte[] _area = new byte[superblock.ActivityLogSize4k * 4096];

        public List<ActivityLogTransaction> Written { get; } = [];

        public void Persist(ActivityLogTransaction tr)
        {
            int block = ActivityLogRing.BlockIndex(tr.TransactionNumber, superblock.AlStripes, superblock.AlStripeSize4k);
            tr.Write(_area.AsSpan(block * 4096, 4096));
            Written.Add(tr);
        }

        public ActivityLogState Replay() => ActivityLogRing.Replay(_area, superblock);
    }

    private static Superblock SuperblockFor(int alExtents, long usableSizeBytes)
    {
        var (_, _, fresh) = MetadataStoreTests.Formatted(peerSlots: 1);
        return fresh with { AlExtents = alExtents, UsableSizeBytes = usableSizeBytes };
    }

    /// <summary>Begins a write and, when a transaction is needed, persists it and commits, as the caller would.</summary>
    private static AlBeginResult Begin(ActivityLogTracker al, Ring? ring, long offset, long length)
    {
        AlBeginResult r = al.BeginWrite(offset, length);
        if (r.Outcome == AlBeginOutcome.NeedsTransaction)
        {
            ring?.Persist(r.Transaction!);
            al.CommitTransaction(r.Transaction!);
        }

        return r;
    }

    private static void Touch(ActivityLogTracker al, Ring? ring, uint extent)
    {
        Assert.NotEqual(AlBeginOutcome.MustWait, Begin(al, ring, extent * Mib4, 4096).Outcome);
        al.EndWrite(extent * Mib4, 4096);
    }

    [Fact]
    public void First_write_needs_a_transaction_then_the_extent_is_hot()
    {
        var al = new ActivityLogTracker(1237, 1L << 40, 8);
        AlBeginResult r = al.BeginWrite(5 * Mib4 + 8192, 4096);
        Assert.Equal(AlBeginOutcome.NeedsTransaction, r.Outcome);
        ActivityLogTransaction tr = r.Transaction!;
        Assert.Equal(0UL, tr.TransactionNumber);
        Assert.Equal([new ActivityLogUpdate(0, 5)], tr.Updates.ToArray());
        Assert.Equal(0, tr.ContextStartSlot);
        Assert.Equal(920, tr.Context.Length);
        Assert.Equal(5u, tr.Context[0]);
        Assert.All(tr.Context.Skip(1), e => Assert.Equal(Free, e));
        Assert.Empty(r.EvictedExtents);
        Assert.False(al.IsHot(5));

        // Until the commit, a write to the pending extent or to another cold extent waits; nothing is taken.
        Assert.Equal(AlWaitReason.TransactionPending, al.BeginWrite(5 * Mib4, 4096).WaitReason);
        Assert.Equal(AlWaitReason.TransactionPending, al.BeginWrite(6 * Mib4, 4096).WaitReason);
        Assert.Equal(1, al.ReferenceCount(5));

        al.CommitTransaction(tr);
        Assert.True(al.IsHot(5));
        Assert.Equal(1UL, al.NextTransactionNumber);
        Assert.Equal(AlBeginOutcome.Proceed, al.BeginWrite(5 * Mib4, 4096).Outcome);
        Assert.Equal(2, al.ReferenceCount(5));
        al.EndWrite(5 * Mib4, 4096);
        al.EndWrite(5 * Mib4, 4096);
        Assert.Equal(0, al.ReferenceCount(5));
        Assert.True(al.IsHot(5)); // cold extents stay in the log until evicted
        Assert.Equal([5u], al.ActiveExtents.ToArray());
    }

    [Fact]
    public void Transaction_numbers_increase_and_context_windows_cycle()
    {
        var al = new ActivityLogTracker(1237, 1L << 40, 8);
        var starts = new List<int>();
        for (uint e = 0; e < 5; e++)
        {
            AlBeginResult r = al.BeginWrite(e * Mib4, 4096);
            Assert.Equal(e, r.Transaction!.TransactionNumber);
            Assert.Equal(ActivityLogTransaction.ContextWindow(e, 1237), (r.Transaction.ContextStartSlot, r.Transaction.Context.Length));
            starts.Add(r.Transaction.ContextStartSlot);
            al.CommitTransaction(r.Transaction);
            al.EndWrite(e * Mib4, 4096);
        }

        Assert.Equal([0, 920, 0, 920, 0], starts);
    }

    [Fact]
    public void A_write_across_an_extent_boundary_activates_both()
    {
        var al = new ActivityLogTracker(100, 1L << 30, 8);
        AlBeginResult r = al.BeginWrite((3 * Mib4) - 4096, 8192);
        Assert.Equal([new ActivityLogUpdate(0, 2), new ActivityLogUpdate(1, 3)], r.Transaction!.Updates.ToArray());
        al.CommitTransaction(r.Transaction);
        al.EndWrite((3 * Mib4) - 4096, 8192);
        Assert.Equal(0, al.ReferenceCount(2) + al.ReferenceCount(3));
        Assert.Equal(AlBeginOutcome.Proceed, al.BeginWrite(0, 0).Outcome); // zero length needs no extent
    }

    [Fact]
    public void Least_recently_used_idle_extent_is_evicted_first()
    {
        var al = new ActivityLogTracker(3, 1L << 30, 8);
        Touch(al, null, 10);
        Touch(al, null, 11);
        Touch(al, null, 12);
        Touch(al, null, 10); // 10 is now the most recently used

        var evictions = new List<uint>();
        foreach (uint e in new uint[] { 13, 14, 15, 16 })
        {
            AlBeginResult r = al.BeginWrite(e * Mib4, 4096);
            Assert.Equal(AlBeginOutcome.NeedsTransaction, r.Outcome);
            evictions.AddRange(r.EvictedExtents);
            ActivityLogUpdate update = Assert.Single(r.Transaction!.Updates);
            Assert.Equal(e, update.Extent);
            Assert.Equal(e, al.Slots[update.Slot]);
            al.CommitTransaction(r.Transaction);
            al.EndWrite(e * Mib4, 4096);
        }

        Assert.Equal([11u, 12u, 10u, 13u], evictions);
        Assert.Equal([14u, 15u, 16u], al.ActiveExtents.ToArray());
    }

    [Fact]
    public void Extents_with_writes_in_flight_are_never_evicted_and_a_full_log_waits()
    {
        var al = new ActivityLogTracker(3, 1L << 30, 8);
        Begin(al, null, 10 * Mib4, 4096); // held
        Begin(al, null, 11 * Mib4, 4096); // held
        Touch(al, null, 12);              // idle

        AlBeginResult r = Begin(al, null, 13 * Mib4, 4096); // held
        Assert.Equal([12u], r.EvictedExtents.ToArray());

        r = al.BeginWrite(14 * Mib4, 4096);
        Assert.Equal(AlBeginOutcome.MustWait, r.Outcome);
        Assert.Equal(AlWaitReason.AllSlotsBusy, r.WaitReason);
        Assert.Equal(3, al.BusySlots);
        Assert.Equal(4UL, al.NextTransactionNumber); // no transaction was handed out for the waiting write
        Assert.Null(al.PendingTransaction);

        al.EndWrite(11 * Mib4, 4096);
        r = Begin(al, null, 14 * Mib4, 4096);
        Assert.Equal([11u], r.EvictedExtents.ToArray());
        Assert.Equal(1, al.ReferenceCount(10));
        Assert.True(al.IsHot(10));
    }

    [Fact]
    public void A_write_never_evicts_its_own_idle_extents()
    {
        var al = new ActivityLogTracker(2, 1L << 30, 8);
        Touch(al, null, 1); // least recently used
        Touch(al, null, 0);
        // Extents 1 and 2: 1 is hot but idle and the LRU victim would be 1 — it must pick 0 instead.
        AlBeginResult r = al.BeginWrite((2 * Mib4) - 4096, 8192);
        Assert.Equal([0u], r.EvictedExtents.ToArray());
        Assert.Equal(2u, Assert.Single(r.Transaction!.Updates).Extent);

        // Three extents cannot fit two slots however long one waits: the caller must split such writes.
        Assert.Equal(2, al.MaxExtentsPerWrite);
    }

    [Fact]
    public void With_al_updates_no_writes_proceed_without_transactions()
    {
        var al = new ActivityLogTracker(2, 1L << 30, 8, alUpdates: false);
        AlBeginResult r = al.BeginWrite(0, 4096);
        Assert.Equal(AlBeginOutcome.Proceed, r.Outcome);
        Assert.Null(r.Transaction);
        al.EndWrite(0, 4096);
        Touch(al, null, 1);
        r = al.BeginWrite(2 * Mib4, 4096);
        Assert.Equal(AlBeginOutcome.Proceed, r.Outcome);
        Assert.Equal([0u], r.EvictedExtents.ToArray());
        Assert.Equal(0UL, al.NextTransactionNumber);
        Assert.Equal(AlWaitReason.AllSlotsBusy, al.BeginWrite(3 * Mib4, 4096 + Mib4).WaitReason);
    }

    [Fact]
    public void After_a_crash_the_ring_names_exactly_the_extents_that_were_hot()
    {
        const int alExtents = 67;
        long usable = 1L << 30; // 256 extents
        Superblock sb = SuperblockFor(alExtents, usable);
        var ring = new Ring(sb);
        var al = new ActivityLogTracker(alExtents, usable, sb.ActivityLogSize4k);
        var random = new Random(11);
        var held = new List<(long Offset, long Length)>();
        for (int i = 0; i < 3000; i++)
        {
            long offset = random.NextInt64(usable / 4096) * 4096;
            long length = Math.Min(usable - offset, 4096L * random.Next(1, 64));
            if (held.Count > 0 && (random.Next(2) == 0 || Begin(al, ring, offset, length).Outcome == AlBeginOutcome.MustWait))
            {
                int k = random.Next(held.Count);
                al.EndWrite(held[k].Offset, held[k].Length);
                held.RemoveAt(k);
                continue;
            }

            if (held.Count == 0)
            {
                Assert.NotEqual(AlBeginOutcome.MustWait, Begin(al, ring, offset, length).Outcome);
            }

            held.Add((offset, length));
        }

        Assert.True(ring.Written.Count > 100, "the workload evicted and logged many times");
        ActivityLogState state = ring.Replay();
        Assert.Empty(state.Problems);
        Assert.Equal(al.NextTransactionNumber, state.NextTransactionNumber);
        Assert.Equal(al.Slots.ToArray(), state.Slots.ToArray());
        Assert.Equal(al.ActiveExtents.ToArray(), ActivityLogTracker.ActiveExtentsFrom(state).ToArray());
        Assert.NotEmpty(held);
        foreach ((long offset, long length) in held)
        {
            Assert.Contains(ActivityLogTracker.ExtentOf(offset), state.ActiveExtents);
            Assert.Contains(ActivityLogTracker.ExtentOf(offset + length - 1), state.ActiveExtents);
        }
    }

    [Fact]
    public void Apply_al_marks_every_active_extent_out_of_sync_and_recovery_continues_the_numbering()
    {
        const int alExtents = 67;
        long usable = (1L << 30) - (2 * Mib4) + 8192; // the last extent is partial
        Superblock sb = SuperblockFor(alExtents, usable);
        var ring = new Ring(sb);
        var al = new ActivityLogTracker(alExtents, usable, sb.ActivityLogSize4k);
        foreach (uint e in new uint[] { 3, 200, 7, 254 })
        {
            Touch(al, ring, e);
        }

        ActivityLogState state = ring.Replay();
        Assert.Equal([3u, 7u, 200u, 254u], ActivityLogTracker.ActiveExtentsFrom(state).ToArray());
        var bitmap = new QuickSyncBitmap(usable);
        bitmap.SetBits(3 * 1024, 1); // already out of sync: not counted again
        long newlySet = ActivityLogTracker.MarkActiveExtentsOutOfSync(state, bitmap);
        long lastExtentBits = (usable / 4096) - (254 * 1024);
        Assert.Equal((3 * 1024) + lastExtentBits - 1, newlySet);
        Assert.Equal(3 * 1024 + lastExtentBits, bitmap.SetBitCount);
        foreach (uint e in new uint[] { 3, 7, 200 })
        {
            Assert.True(bitmap.IsSet(e * 1024) && bitmap.IsSet((e * 1024) + 1023));
        }

        Assert.False(bitmap.IsSet((3 * 1024) - 1) || bitmap.IsSet(4 * 1024) || bitmap.IsSet(201 * 1024));

        // The same through the bitmap tracker marks every peer slot, with dirty pages to write back.
        var tracker = new BitmapTracker(usable, 2);
        Assert.Equal(2 * bitmap.SetBitCount, tracker.MarkExtentsOutOfSync(state.ActiveExtents));
        Assert.Equal(bitmap.SetBitCount * 4096, tracker.OutOfSyncBytes(1));

        // Recovery keeps the old extents (idle) and continues the numbering, so replay stays right.
        var recovered = ActivityLogTracker.FromRecovered(state, usable, sb.ActivityLogSize4k);
        Assert.Equal(state.NextTransactionNumber, recovered.NextTransactionNumber);
        Assert.Equal([3u, 7u, 200u, 254u], recovered.ActiveExtents.ToArray());
        Assert.Equal(AlBeginOutcome.Proceed, recovered.BeginWrite(7 * Mib4, 4096).Outcome);
        recovered.EndWrite(7 * Mib4, 4096);
        Touch(recovered, ring, 100);
        Assert.Equal([3u, 7u, 100u, 200u, 254u], ActivityLogTracker.ActiveExtentsFrom(ring.Replay()).ToArray());
    }
}

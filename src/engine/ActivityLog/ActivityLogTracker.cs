// The activity log (DRBD's "al"): the set of at most al-extents hot 4 MiB extents in which writes
// may be in flight. Before a write touches a cold extent, an AL transaction naming it must be durable,
// so after a Primary crash only the extents in the on-disk AL (plus the bitmap) need resync.
// Pure logic: BeginWrite says what to persist; the caller writes it (MetadataStore) and calls back.
// Slots are reused least-recently-used first; an extent with writes in flight is never evicted.
// One transaction is in flight at a time, as DRBD serialises them with LC_LOCKED.
using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.ActivityLog;

public sealed class ActivityLogTracker
{
    private const uint Free = ActivityLogTransaction.FreeExtent;
    private const long ExtentSize = ActivityLogTransaction.ExtentSizeBytes;

    private readonly uint[] _slots;
    private readonly int[] _references;
    private readonly Dictionary<uint, int> _slotOf = [];
    /// <summary>Slots holding a committed extent without references, least recently used first.</summary>
    private readonly LinkedList<int> _idle = new();
    private readonly LinkedListNode<int>?[] _idleNode;
    private readonly SortedSet<int> _free = [];
    private readonly HashSet<int> _pendingSlots = [];
    private ActivityLogTransaction? _pending;

    /// <summary>An empty activity log.</summary>
    /// <param name="alExtents">al-extents: number of slots.</param>
    /// <param name="usableSizeBytes">Usable data size; extents beyond it do not exist.</param>
    /// <param name="activityLogSize4k">On-disk ring size (stripes × stripe size), bounds al-extents.</param>
    /// <param name="alUpdates">al-updates: false means no transactions are ever written.</param>
    public ActivityLogTracker(int alExtents, long usableSizeBytes, int activityLogSize4k, bool alUpdates = true)
    {
        Invariant.Assert(activityLogSize4k >= 2, "AL ring has at least two blocks");
        Invariant.Assert(alExtents >= 1 && alExtents <= Superblock.MaxAlExtentsFor(activityLogSize4k), "al-extents fits the on-disk ring");
        Invariant.Assert(alExtents <= ushort.MaxValue, "AL slot numbers are 16-bit on disk");
        Invariant.Assert(usableSizeBytes > 0, "usable size positive");
        AlExtents = alExtents;
        AlUpdates = alUpdates;
        ExtentCount = (usableSizeBytes + ExtentSize - 1) / ExtentSize;
        UsableSizeBytes = usableSizeBytes;
        _slots = new uint[alExtents];
        Array.Fill(_slots, Free);
        _references = new int[alExtents];
        _idleNode = new LinkedListNode<int>?[alExtents];
        for (int slot = 0; slot < alExtents; slot++)
        {
            _free.Add(slot);
        }
    }

    public int AlExtents { get; }
    public bool AlUpdates { get; }
    public long UsableSizeBytes { get; private set; }
    /// <summary>Number of 4 MiB extents of the usable data.</summary>
    public long ExtentCount { get; private set; }

    /// <summary>The disk grew (resize): writes may go up to <paramref name="usableSizeBytes"/> now.</summary>
    public void Grow(long usableSizeBytes)
    {
        Invariant.Assert(usableSizeBytes >= UsableSizeBytes, "the data area only grows");
        UsableSizeBytes = usableSizeBytes;
        ExtentCount = (usableSizeBytes + ExtentSize - 1) / ExtentSize;
    }
    /// <summary>Number the next transaction will carry.</summary>
    public ulong NextTransactionNumber { get; private set; }
    /// <summary>The transaction handed out and not yet committed, if any.</summary>
    public ActivityLogTransaction? PendingTransaction => _pending;
    /// <summary>Most extents one write may span: every new extent must fit in one transaction and in the slots.</summary>
    public int MaxExtentsPerWrite => Math.Min(ActivityLogTransaction.UpdatesPerTransaction, AlExtents);
    /// <summary>Slots holding an extent (committed or pending).</summary>
    public int UsedSlots => AlExtents - _free.Count;
    /// <summary>Slots whose extent has writes in flight.</summary>
    public int BusySlots => _references.Count(r => r > 0);

    /// <summary>The slot table (extent per slot, Free when empty), including a pending transaction.</summary>
    public ImmutableArray<uint> Slots => [.. _slots];

    /// <summary>Committed extents in the activity log, ascending.</summary>
    public ImmutableArray<uint> ActiveExtents =>
        [.. _slotOf.Where(kv => !_pendingSlots.Contains(kv.Value)).Select(kv => kv.Key).Order()];

    /// <summary>The extent holding byte <paramref name="offsetBytes"/>.</summary>
    public static uint ExtentOf(long offsetBytes) => (uint)(offsetBytes / ExtentSize);

    /// <summary>An activity log holding what was recovered from the ring (all extents idle), continuing its numbering.</summary>
    public static ActivityLogTracker FromRecovered(ActivityLogState state, long usableSizeBytes, int activityLogSize4k, bool alUpdates = true)
    {
        var al = new ActivityLogTracker(state.Slots.Length, usableSizeBytes, activityLogSize4k, alUpdates);
        al.NextTransactionNumber = state.NextTransactionNumber;
        for (int slot = 0; slot < state.Slots.Length; slot++)
        {
            uint extent = state.Slots[slot];
            if (extent != Free && extent < al.ExtentCount && !al._slotOf.ContainsKey(extent))
            {
                al._free.Remove(slot);
                al._slots[slot] = extent;
                al._slotOf[extent] = slot;
                al._idleNode[slot] = al._idle.AddLast(slot);
            }
        }

        return al;
    }

    /// <summary>Extents that were hot when the node went down (the regions to resync after a Primary crash).</summary>
    public static ImmutableArray<uint> ActiveExtentsFrom(ActivityLogState state) => state.ActiveExtents;

    /// <summary>
    /// DRBD's apply-al for one peer bitmap: marks every extent of <paramref name="state"/> out of sync
    /// (clamped to the data). Returns the number of newly set bits.
    /// </summary>
    public static long MarkActiveExtentsOutOfSync(ActivityLogState state, QuickSyncBitmap bitmap)
    {
        long newlySet = 0;
        foreach (uint extent in state.ActiveExtents)
        {
            long start = extent * ExtentSize;
            if (start < bitmap.UsableSizeBytes)
            {
                newlySet += bitmap.SetRange(start, Math.Min(ExtentSize, bitmap.UsableSizeBytes - start));
            }
        }

        return newlySet;
    }

    /// <summary>True when <paramref name="extent"/> is in the activity log and committed.</summary>
    public bool IsHot(uint extent) => _slotOf.TryGetValue(extent, out int slot) && !_pendingSlots.Contains(slot);

    /// <summary>Writes in flight in <paramref name="extent"/>.</summary>
    public int ReferenceCount(uint extent) => _slotOf.TryGetValue(extent, out int slot) ? _references[slot] : 0;

    /// <summary>
    /// Asks to start a write of [offset, offset+length). See <see cref="AlBeginOutcome"/> for what each
    /// answer requires. A write must not span more than <see cref="MaxExtentsPerWrite"/> extents (split it).
    /// A zero-length write needs no extent.
    /// </summary>
    public AlBeginResult BeginWrite(long offsetBytes, long lengthBytes)
    {
        if (!TryExtentRange(offsetBytes, lengthBytes, out uint first, out uint last))
        {
            return AlBeginResult.ProceedNow;
        }

        var missing = new List<uint>();
        for (uint e = first; e <= last; e++)
        {
            if (!_slotOf.TryGetValue(e, out int slot))
            {
                missing.Add(e);
            }
            else if (_pendingSlots.Contains(slot))
            {
                return AlBeginResult.Wait(AlWaitReason.TransactionPending);
            }
        }

        if (missing.Count == 0)
        {
            TakeReferences(first, last);
            return AlBeginResult.ProceedNow;
        }

        if (_pending is not null)
        {
            return AlBeginResult.Wait(AlWaitReason.TransactionPending);
        }

        return Activate(first, last, missing);
    }

    /// <summary>Marks <paramref name="transaction"/> (from BeginWrite) durable: its extents become hot.</summary>
    public void CommitTransaction(ActivityLogTransaction transaction)
    {
        Invariant.Assert(_pending is not null && ReferenceEquals(transaction, _pending), "commit the pending AL transaction");
        _pending = null;
        _pendingSlots.Clear();
        NextTransactionNumber++;
    }

    /// <summary>Ends a write begun with BeginWrite (Proceed or committed NeedsTransaction): drops its references.</summary>
    public void EndWrite(long offsetBytes, long lengthBytes)
    {
        if (!TryExtentRange(offsetBytes, lengthBytes, out uint first, out uint last))
        {
            return;
        }

        for (uint e = first; e <= last; e++)
        {
            Invariant.Assert(_slotOf.TryGetValue(e, out int slot), "ended write's extent is in the activity log");
            Invariant.Assert(!_pendingSlots.Contains(slot), "a write ends only after its AL transaction committed");
            Invariant.Assert(_references[slot] > 0, "ended write held a reference");
            if (--_references[slot] == 0)
            {
                _idleNode[slot] = _idle.AddLast(slot);
            }
        }
    }

    private bool TryExtentRange(long offsetBytes, long lengthBytes, out uint first, out uint last)
    {
        Invariant.Assert(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= UsableSizeBytes, "write inside the data");
        first = ExtentOf(offsetBytes);
        last = lengthBytes == 0 ? first : ExtentOf(offsetBytes + lengthBytes - 1);
        Invariant.Assert(lengthBytes == 0 || last - first < MaxExtentsPerWrite, "write spans at most MaxExtentsPerWrite extents");
        return lengthBytes > 0;
    }

    private void TakeReferences(uint first, uint last)
    {
        for (uint e = first; e <= last; e++)
        {
            int slot = _slotOf[e];
            if (_references[slot]++ == 0)
            {
                _idle.Remove(_idleNode[slot]!);
                _idleNode[slot] = null;
            }
        }
    }

    /// <summary>Puts the missing extents into slots (free first, then least recently used idle ones).</summary>
    private AlBeginResult Activate(uint first, uint last, List<uint> missing)
    {
        int idleOutsideWrite = _idle.Count(slot => _slots[slot] < first || _slots[slot] > last);
        if (_free.Count + idleOutsideWrite < missing.Count)
        {
            return AlBeginResult.Wait(AlWaitReason.AllSlotsBusy);
        }

        TakeReferences(first, last, skipMissing: missing);
        var updates = new List<ActivityLogUpdate>(missing.Count);
        var evicted = ImmutableArray.CreateBuilder<uint>();
        foreach (uint extent in missing)
        {
            int slot = TakeVictimSlot();
            uint old = _slots[slot];
            if (old != Free)
            {
                _slotOf.Remove(old);
                evicted.Add(old);
            }

            _slots[slot] = extent;
            _slotOf[extent] = slot;
            _references[slot] = 1;
            updates.Add(new ActivityLogUpdate(slot, extent));
            if (AlUpdates)
            {
                _pendingSlots.Add(slot);
            }
        }

        if (!AlUpdates)
        {
            return new AlBeginResult { Outcome = AlBeginOutcome.Proceed, EvictedExtents = evicted.ToImmutable() };
        }

        _pending = ActivityLogTransaction.Create(NextTransactionNumber, updates, _slots);
        return new AlBeginResult { Outcome = AlBeginOutcome.NeedsTransaction, Transaction = _pending, EvictedExtents = evicted.ToImmutable() };
    }

    private void TakeReferences(uint first, uint last, List<uint> skipMissing)
    {
        for (uint e = first; e <= last; e++)
        {
            if (!skipMissing.Contains(e))
            {
                TakeReferences(e, e);
            }
        }
    }

    private int TakeVictimSlot()
    {
        if (_free.Count > 0)
        {
            int slot = _free.Min;
            _free.Remove(slot);
            return slot;
        }

        LinkedListNode<int> lru = _idle.First!;
        _idle.RemoveFirst();
        _idleNode[lru.Value] = null;
        Invariant.Assert(_references[lru.Value] == 0, "only idle extents are evicted");
        return lru.Value;
    }
}

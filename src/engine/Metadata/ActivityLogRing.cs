// The on-disk activity-log ring: where transaction N lives (DRBD's al_tr_number_to_on_disk_sector,
// striped), and recovery of the slot table by replaying the valid transactions in tr_number order.
// Which extents become hot is the activity log's business (next layer); this is the format.
using System.Collections.Immutable;

namespace Redundancy.Block.Engine.Metadata;

/// <summary>The slot table recovered from the ring.</summary>
public sealed record ActivityLogState
{
    /// <summary>Extent held by each AL slot (length = al-extents), <see cref="ActivityLogTransaction.FreeExtent"/> when empty.</summary>
    public required ImmutableArray<uint> Slots { get; init; }
    /// <summary>Newest valid transaction number, or null when the ring holds none (fresh metadata).</summary>
    public required ulong? LastTransactionNumber { get; init; }
    public required int ValidTransactions { get; init; }
    /// <summary>Ring blocks that are neither empty nor valid, with why (a torn last write shows up here).</summary>
    public required ImmutableArray<string> Problems { get; init; }

    /// <summary>Number the next transaction must carry.</summary>
    public ulong NextTransactionNumber => LastTransactionNumber is { } last ? last + 1 : 0;

    /// <summary>Distinct extents in use, ascending: the regions to resync after a Primary crash.</summary>
    public ImmutableArray<uint> ActiveExtents =>
        [.. Slots.Where(e => e != ActivityLogTransaction.FreeExtent).Distinct().Order()];
}

public static class ActivityLogRing
{
    /// <summary>Index of the 4 KiB block (from the AL start) that holds transaction <paramref name="transactionNumber"/>.</summary>
    public static int BlockIndex(ulong transactionNumber, int alStripes, int alStripeSize4k)
    {
        Invariant.Assert(alStripes >= 1 && alStripeSize4k >= 1, "AL geometry positive");
        int ringSize = alStripes * alStripeSize4k;
        int t = (int)(transactionNumber % (ulong)ringSize);
        return ((t % alStripes) * alStripeSize4k) + (t / alStripes);
    }

    /// <summary>Replays the ring in <paramref name="area"/> (the whole AL area) under the superblock's geometry.</summary>
    public static ActivityLogState Replay(ReadOnlySpan<byte> area, Superblock superblock)
    {
        int ringSize = superblock.ActivityLogSize4k;
        Invariant.Assert(area.Length >= ringSize * ActivityLogTransaction.SizeBytes, "whole AL area given");
        long extentCount = (superblock.UsableSizeBytes + ActivityLogTransaction.ExtentSizeBytes - 1) / ActivityLogTransaction.ExtentSizeBytes;
        var valid = new List<ActivityLogTransaction>();
        var problems = ImmutableArray.CreateBuilder<string>();
        for (int block = 0; block < ringSize; block++)
        {
            ReadOnlySpan<byte> bytes = area.Slice(block * ActivityLogTransaction.SizeBytes, ActivityLogTransaction.SizeBytes);
            if (!ActivityLogTransaction.TryRead(bytes, superblock.AlExtents, extentCount, out var tr, out string error))
            {
                if (error != "empty")
                {
                    problems.Add($"AL block {block}: {error}");
                }
            }
            else if (BlockIndex(tr.TransactionNumber, superblock.AlStripes, superblock.AlStripeSize4k) != block)
            {
                problems.Add($"AL block {block}: transaction {tr.TransactionNumber} belongs elsewhere in the ring");
            }
            else
            {
                valid.Add(tr);
            }
        }

        return Apply(valid, superblock.AlExtents, ringSize, problems.ToImmutable());
    }

    private static ActivityLogState Apply(List<ActivityLogTransaction> valid, int alExtents, int ringSize, ImmutableArray<string> problems)
    {
        var slots = new uint[alExtents];
        Array.Fill(slots, ActivityLogTransaction.FreeExtent);
        if (valid.Count == 0)
        {
            return new ActivityLogState { Slots = [.. slots], LastTransactionNumber = null, ValidTransactions = 0, Problems = problems };
        }

        ulong last = valid.Max(t => t.TransactionNumber);
        var window = valid.Where(t => last - t.TransactionNumber < (ulong)ringSize).OrderBy(t => t.TransactionNumber).ToList();
        foreach (ActivityLogTransaction tr in window)
        {
            foreach (ActivityLogUpdate update in tr.Updates)
            {
                slots[update.Slot] = update.Extent;
            }

            tr.Context.CopyTo(slots, tr.ContextStartSlot);
        }

        return new ActivityLogState { Slots = [.. slots], LastTransactionNumber = last, ValidTransactions = window.Count, Problems = problems };
    }
}

// Human-readable dump of the metadata in the spirit of drbdmeta dump-md: one "key value;" per line,
// flag names as comments, and each bitmap slot as 64-bit words with runs of equal words folded
// ("0x0000000000000000; 12 times;").
using System.Globalization;
using System.Text;

namespace Redundancy.Block.Engine.Metadata;

public static class MetadataDump
{
    private const int WordsPerLine = 4;

    /// <summary>
    /// The dump text. <paramref name="bitmaps"/> holds the bitmap of slot i at index i (may be fewer
    /// than the slots, e.g. none); <paramref name="activityLog"/> adds the recovered AL when given.
    /// </summary>
    public static string Format(Superblock superblock, MetadataLayout layout, IReadOnlyList<QuickSyncBitmap> bitmaps, ActivityLogState? activityLog = null)
    {
        var text = new StringBuilder();
        AppendHeader(text, superblock, layout);
        AppendActivityLog(text, activityLog);
        for (int slot = 0; slot < bitmaps.Count; slot++)
        {
            AppendBitmap(text, slot, bitmaps[slot]);
        }

        return text.ToString();
    }

    private static void AppendHeader(StringBuilder text, Superblock sb, MetadataLayout layout)
    {
        var c = CultureInfo.InvariantCulture;
        text.Append(c, $"# Redundancy.Block metadata, format v{sb.FormatVersion}\n");
        text.Append(c, $"# layout: {(layout.IsInternal ? "internal" : "external")}; superblock at {layout.SuperblockAreaOffsetBytes} ({MetadataLayout.SuperblockCopies} copies of {Superblock.SizeBytes} bytes), ");
        text.Append(c, $"al at {layout.ActivityLogOffsetBytes} ({layout.ActivityLogSizeBytes} bytes), ");
        text.Append(c, $"bitmap at {layout.BitmapOffsetBytes} ({layout.PeerSlots} slot(s) of {layout.BitmapSlotSizeBytes} bytes), data 0..{layout.UsableSizeBytes}\n");
        text.Append(c, $"# sequence {sb.Sequence}; creation-time {sb.CreationTime}\n");
        text.Append(c, $"version \"rb-v{sb.FormatVersion}\";\n");
        text.Append(c, $"max-peers {sb.PeerSlots};\n");
        text.Append(c, $"node-id {sb.NodeId};\n");
        text.Append(c, $"current-uuid 0x{sb.CurrentUuid:X16}; flags 0x{(uint)sb.Flags:X8}; # {MetadataFlagBits.Names(sb.Flags)}\n");
        text.Append(c, $"device-uuid 0x{sb.DeviceUuid:X16};\n");
        for (int i = 0; i < sb.Peers.Length; i++)
        {
            PeerSlot p = sb.Peers[i];
            text.Append(c, $"peer[{i}] {{ node-id {p.NodeId}; bitmap-uuid 0x{p.BitmapUuid:X16}; flags 0x{(uint)p.Flags:X8}; bitmap-index {p.BitmapIndex}; }} # {(p.IsFree ? "free" : MetadataFlagBits.Names(p.Flags))}\n");
        }

        text.Append("history-uuids");
        foreach (ulong uuid in sb.HistoryUuids)
        {
            text.Append(c, $" 0x{uuid:X16}");
        }

        text.Append(";\n");
        text.Append(c, $"la-size-sect {sb.UsableSizeBytes / 512};\n");
        text.Append(c, $"bm-byte-per-bit {sb.BytesPerBit};\n");
        text.Append(c, $"al-extents {sb.AlExtents};\n");
        text.Append(c, $"al-stripes {sb.AlStripes};\n");
        text.Append(c, $"al-stripe-size-4k {sb.AlStripeSize4k};\n");
    }

    private static void AppendActivityLog(StringBuilder text, ActivityLogState? al)
    {
        if (al is null)
        {
            return;
        }

        var c = CultureInfo.InvariantCulture;
        string last = al.LastTransactionNumber is { } n ? n.ToString(c) : "none";
        var active = al.ActiveExtents;
        text.Append(c, $"# activity log: last transaction {last}, {al.ValidTransactions} valid, {active.Length} active extent(s):");
        foreach (uint extent in active)
        {
            text.Append(c, $" {extent}");
        }

        text.Append('\n');
        foreach (string problem in al.Problems)
        {
            text.Append(c, $"# {problem}\n");
        }
    }

    private static void AppendBitmap(StringBuilder text, int slot, QuickSyncBitmap bitmap)
    {
        var c = CultureInfo.InvariantCulture;
        text.Append(c, $"bitmap[{slot}] {{\n");
        text.Append(c, $"   # {bitmap.SetBitCount} bits set, {bitmap.OutOfSyncBytes / 1024} KiB out of sync\n");
        ReadOnlySpan<ulong> words = bitmap.Words;
        int onLine = 0;
        for (int i = 0; i < words.Length;)
        {
            int run = 1;
            while (i + run < words.Length && words[i + run] == words[i])
            {
                run++;
            }

            if (run >= WordsPerLine)
            {
                EndLine(text, ref onLine);
                text.Append(c, $"   0x{words[i]:X16}; {run} times;\n");
                i += run;
                continue;
            }

            text.Append(onLine == 0 ? "   " : " ").Append(c, $"0x{words[i]:X16};");
            if (++onLine == WordsPerLine)
            {
                EndLine(text, ref onLine);
            }

            i++;
        }

        EndLine(text, ref onLine);
        text.Append("}\n");
    }

    private static void EndLine(StringBuilder text, ref int onLine)
    {
        if (onLine > 0)
        {
            text.Append('\n');
            onLine = 0;
        }
    }
}

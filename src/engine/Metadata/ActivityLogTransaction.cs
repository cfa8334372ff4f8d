// One 4 KiB activity-log transaction, after DRBD's al_transaction_on_disk but in our own format
// (big-endian, CRC32C, 64-bit transaction numbers that never wrap). Offsets:
//   0 magic "RBAL" u32 | 4 format version u16 | 6 update count u16 | 8 tr_number u64 | 16 crc32c u32
//  20 context size u16 | 22 reserved u16 | 24 context start slot u32 | 28 al-extents u32
//  32 updates[64] × {slot u16, extent u32} | 416 context[920] × extent u32
// An update says "AL slot S now holds extent E" (E = Free for an emptied slot). The context is a
// window of the whole slot table as it stands AFTER the updates; the window advances with the
// transaction number so the last ring-1 transactions together restate every slot.
using System.Buffers.Binary;
using System.Collections.Immutable;

namespace Redundancy.Block.Engine.Metadata;

/// <summary>One "slot now holds extent" change.</summary>
public readonly record struct ActivityLogUpdate(int Slot, uint Extent);

public sealed record ActivityLogTransaction
{
    public const int SizeBytes = MetadataLayout.BlockSizeBytes;
    /// <summary>"RBAL".</summary>
    public const uint Magic = 0x5242414C;
    public const int FormatVersion = 1;
    public const int UpdatesPerTransaction = 64;
    public const int ContextPerTransaction = (SizeBytes - ContextOffset) / 4;
    /// <summary>Extent number of an empty slot (DRBD's LC_FREE).</summary>
    public const uint FreeExtent = uint.MaxValue;
    /// <summary>One AL extent covers 4 MiB of data (DRBD's AL_EXTENT_SHIFT 22).</summary>
    public const long ExtentSizeBytes = 4L << 20;

    private const int CrcOffset = 16;
    private const int UpdatesOffset = 32;
    private const int ContextOffset = UpdatesOffset + (UpdatesPerTransaction * 6);

    public required ulong TransactionNumber { get; init; }
    /// <summary>Number of AL slots (al-extents) the writer used.</summary>
    public required int AlExtents { get; init; }
    public required ImmutableArray<ActivityLogUpdate> Updates { get; init; }
    public required int ContextStartSlot { get; init; }
    /// <summary>Extents of slots [ContextStartSlot, ContextStartSlot + Context.Length) after the updates.</summary>
    public required ImmutableArray<uint> Context { get; init; }

    /// <summary>
    /// Builds transaction <paramref name="transactionNumber"/> from its updates and the full slot table
    /// as it is after them (<paramref name="slotsAfter"/>, length = al-extents); picks the context window.
    /// </summary>
    public static ActivityLogTransaction Create(ulong transactionNumber, IReadOnlyList<ActivityLogUpdate> updates, ReadOnlySpan<uint> slotsAfter)
    {
        Invariant.Assert(updates.Count <= UpdatesPerTransaction, "at most 64 updates per AL transaction");
        (int start, int size) = ContextWindow(transactionNumber, slotsAfter.Length);
        return new ActivityLogTransaction
        {
            TransactionNumber = transactionNumber,
            AlExtents = slotsAfter.Length,
            Updates = [.. updates],
            ContextStartSlot = start,
            Context = [.. slotsAfter.Slice(start, size)],
        };
    }

    /// <summary>The context window of a transaction: consecutive windows of 920 slots, cycling.</summary>
    public static (int Start, int Size) ContextWindow(ulong transactionNumber, int alExtents)
    {
        Invariant.Assert(alExtents > 0, "al-extents positive");
        int windows = (alExtents + ContextPerTransaction - 1) / ContextPerTransaction;
        int start = (int)(transactionNumber % (ulong)windows) * ContextPerTransaction;
        return (start, Math.Min(ContextPerTransaction, alExtents - start));
    }

    public void Write(Span<byte> block)
    {
        Invariant.Assert(block.Length >= SizeBytes, "AL transaction buffer is 4 KiB");
        Invariant.Assert(Updates.Length <= UpdatesPerTransaction && Context.Length <= ContextPerTransaction, "AL transaction fits");
        Invariant.Assert(ContextStartSlot + Context.Length <= AlExtents, "context inside the slot table");
        Span<byte> b = block[..SizeBytes];
        b.Clear();
        BinaryPrimitives.WriteUInt32BigEndian(b, Magic);
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], FormatVersion);
        BinaryPrimitives.WriteUInt16BigEndian(b[6..], (ushort)Updates.Length);
        BinaryPrimitives.WriteUInt64BigEndian(b[8..], TransactionNumber);
        BinaryPrimitives.WriteUInt16BigEndian(b[20..], (ushort)Context.Length);
        BinaryPrimitives.WriteUInt32BigEndian(b[24..], (uint)ContextStartSlot);
        BinaryPrimitives.WriteUInt32BigEndian(b[28..], (uint)AlExtents);
        for (int i = 0; i < Updates.Length; i++)
        {
            Invariant.Assert(Updates[i].Slot >= 0 && Updates[i].Slot < AlExtents, "update slot inside the table");
            BinaryPrimitives.WriteUInt16BigEndian(b[(UpdatesOffset + (i * 6))..], (ushort)Updates[i].Slot);
            BinaryPrimitives.WriteUInt32BigEndian(b[(UpdatesOffset + (i * 6) + 2)..], Updates[i].Extent);
        }

        for (int i = 0; i < Context.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(b[(ContextOffset + (i * 4))..], Context[i]);
        }

        BinaryPrimitives.WriteUInt32BigEndian(b[CrcOffset..], Crc32C.ComputeWithZeroedField(b, CrcOffset));
    }

    /// <summary>
    /// Decodes untrusted bytes. <paramref name="alExtents"/> is the superblock's al-extents and
    /// <paramref name="extentCount"/> the number of 4 MiB extents of the usable data (extent numbers
    /// must be below it, or Free). An all-zero (never written) block reports "empty".
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> block, int alExtents, long extentCount, out ActivityLogTransaction transaction, out string error)
    {
        transaction = null!;
        error = CheckHeader(block, alExtents);
        if (error.Length != 0)
        {
            return false;
        }

        int updateCount = BinaryPrimitives.ReadUInt16BigEndian(block[6..]);
        var updates = ImmutableArray.CreateBuilder<ActivityLogUpdate>(updateCount);
        for (int i = 0; i < updateCount; i++)
        {
            int slot = BinaryPrimitives.ReadUInt16BigEndian(block[(UpdatesOffset + (i * 6))..]);
            uint extent = BinaryPrimitives.ReadUInt32BigEndian(block[(UpdatesOffset + (i * 6) + 2)..]);
            if (slot >= alExtents || (extent != FreeExtent && extent >= extentCount))
            {
                error = $"update {i} (slot {slot}, extent {extent}) out of range";
                return false;
            }

            updates.Add(new ActivityLogUpdate(slot, extent));
        }

        int contextSize = BinaryPrimitives.ReadUInt16BigEndian(block[20..]);
        int contextStart = (int)BinaryPrimitives.ReadUInt32BigEndian(block[24..]);
        var context = ImmutableArray.CreateBuilder<uint>(contextSize);
        for (int i = 0; i < contextSize; i++)
        {
            uint extent = BinaryPrimitives.ReadUInt32BigEndian(block[(ContextOffset + (i * 4))..]);
            if (extent != FreeExtent && extent >= extentCount)
            {
                error = $"context slot {contextStart + i} holds extent {extent}, beyond the device";
                return false;
            }

            context.Add(extent);
        }

        transaction = new ActivityLogTransaction
        {
            TransactionNumber = BinaryPrimitives.ReadUInt64BigEndian(block[8..]),
            AlExtents = alExtents,
            Updates = updates.MoveToImmutable(),
            ContextStartSlot = contextStart,
            Context = context.MoveToImmutable(),
        };
        return true;
    }

    private static string CheckHeader(ReadOnlySpan<byte> block, int alExtents)
    {
        if (block.Length < SizeBytes)
        {
            return $"AL transaction needs {SizeBytes} bytes, got {block.Length}";
        }

        uint magic = BinaryPrimitives.ReadUInt32BigEndian(block);
        if (magic != Magic)
        {
            return block[..SizeBytes].ContainsAnyExcept((byte)0) ? $"bad AL magic 0x{magic:x8}" : "empty";
        }

        uint stored = BinaryPrimitives.ReadUInt32BigEndian(block[CrcOffset..]);
        if (stored != Crc32C.ComputeWithZeroedField(block[..SizeBytes], CrcOffset))
        {
            return "AL transaction checksum mismatch";
        }

        int version = BinaryPrimitives.ReadUInt16BigEndian(block[4..]);
        int updates = BinaryPrimitives.ReadUInt16BigEndian(block[6..]);
        int contextSize = BinaryPrimitives.ReadUInt16BigEndian(block[20..]);
        uint contextStart = BinaryPrimitives.ReadUInt32BigEndian(block[24..]);
        uint writerExtents = BinaryPrimitives.ReadUInt32BigEndian(block[28..]);
        if (version != FormatVersion)
        {
            return $"unsupported AL format version {version}";
        }

        if (writerExtents != (uint)alExtents)
        {
            return $"AL transaction written for al-extents {writerExtents}, metadata says {alExtents}";
        }

        if (updates > UpdatesPerTransaction || contextSize > ContextPerTransaction || contextStart + (ulong)contextSize > (ulong)alExtents)
        {
            return $"AL transaction counts out of range (updates {updates}, context {contextStart}+{contextSize})";
        }

        return "";
    }
}

// Fuzz target "metadata": a corrupted metadata device opened as attach and dump-md do
// (MetadataStore.OpenAsync: superblock probe, both copies, layout; then every bitmap slot, the
// activity-log ring replay and the dump). Input: u8 mode (bit 0: internal metadata), u16 disk size in
// 4 KiB units, then the metadata image (external: the whole meta device; internal: the end of the
// backing disk). Repair recomputes the superblock and AL transaction checksums so the field checks
// behind them are reached. Oracle: no exception (an unusable device is an Error result, a bad AL block
// a Problem), no write, no read outside the device, and an accepted superblock re-encodes to itself.
using System.Buffers.Binary;
using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Fuzz.Support;

namespace Redundancy.Block.Fuzz.Targets;

public sealed class MetadataTarget : IFuzzTarget
{
    private const int HeaderBytes = 3;

    public string Name => "metadata";

    public IReadOnlyList<byte[]> Dictionary { get; } =
    [
        [0x52, 0x42, 0x4D, 0x44], [0x52, 0x42, 0x41, 0x4C], [0, 1], [0xFF, 0xFF, 0xFF, 0xFF],
    ];

    public IReadOnlyList<(string Name, byte[] Input)> Seeds() => MetadataSeeds.All();

    public string Execute(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!TryDescribe(input, out bool isInternal, out long diskSizeBytes, out byte[] image, out long deviceSizeBytes))
        {
            return "short";
        }

        var device = new ImageDevice(image, deviceSizeBytes);
        MetadataOpenResult opened = MetadataStore.OpenAsync(device, isInternal, diskSizeBytes).AsTask().GetAwaiter().GetResult();
        if (opened.Store is null || opened.Superblock is null)
        {
            return string.IsNullOrEmpty(opened.Error)
                ? throw new FuzzOracleException("OpenAsync failed without an error message")
                : $"{(opened.NoMetadata ? "none" : "unusable")}:{Outcome.Normalize(opened.Error)}";
        }

        return Inspect(opened.Store, opened.Superblock);
    }

    /// <summary>What attach and dump-md read after the superblock, with the properties they rely on.</summary>
    private static string Inspect(MetadataStore store, Superblock superblock)
    {
        var block = new byte[Superblock.SizeBytes];
        superblock.Write(block);
        if (!Superblock.TryRead(block, out Superblock again, out string error) || !again.Equals(superblock))
        {
            throw new FuzzOracleException($"an accepted superblock does not re-encode to itself ({error})");
        }

        var bitmaps = new List<QuickSyncBitmap>();
        for (int slot = 0; slot < store.Layout.PeerSlots; slot++)
        {
            QuickSyncBitmap bitmap = store.ReadBitmapAsync(slot).AsTask().GetAwaiter().GetResult();
            if (bitmap.BitCount != store.Layout.BitmapBits || bitmap.SetBitCount != bitmap.CountSetBits())
            {
                throw new FuzzOracleException($"bitmap slot {slot} has {bitmap.BitCount} bits / {bitmap.SetBitCount} set, expected {store.Layout.BitmapBits}");
            }

            bitmaps.Add(bitmap);
        }

        ActivityLogState activityLog = store.ReadActivityLogAsync(superblock).AsTask().GetAwaiter().GetResult();
        long extents = (superblock.UsableSizeBytes + ActivityLogTransaction.ExtentSizeBytes - 1) / ActivityLogTransaction.ExtentSizeBytes;
        if (activityLog.Slots.Length != superblock.AlExtents || activityLog.ActiveExtents.Any(extent => extent >= extents))
        {
            throw new FuzzOracleException($"the recovered AL has {activityLog.Slots.Length} slots (al-extents {superblock.AlExtents}) or an extent beyond {extents}");
        }

        _ = superblock.GenerationIds;
        _ = MetadataDump.Format(superblock, store.Layout, bitmaps, activityLog);
        return $"ok:{activityLog.ValidTransactions > 0}:{string.Join(',', activityLog.Problems.Select(Outcome.Normalize).Distinct().Order(StringComparer.Ordinal))}";
    }

    private static bool TryDescribe(byte[] input, out bool isInternal, out long diskSizeBytes, out byte[] image, out long deviceSizeBytes)
    {
        isInternal = input.Length > 0 && (input[0] & 1) != 0;
        diskSizeBytes = input.Length >= HeaderBytes ? BinaryPrimitives.ReadUInt16BigEndian(input.AsSpan(1)) * 4096L : 0;
        image = input.Length >= HeaderBytes ? input[HeaderBytes..] : [];
        deviceSizeBytes = isInternal ? Math.Max(diskSizeBytes, image.Length) : image.Length;
        return input.Length >= HeaderBytes;
    }

    public byte[] Repair(byte[] input)
    {
        if (!TryDescribe(input, out bool isInternal, out _, out byte[] image, out long deviceSizeBytes))
        {
            return input;
        }

        long imageStart = deviceSizeBytes - image.Length;
        long area = MetadataLayout.SuperblockAreaOffsetFor(isInternal, deviceSizeBytes) - imageStart;
        int alBlocks = 0;
        for (int copy = 0; copy < MetadataLayout.SuperblockCopies; copy++)
        {
            long at = area + (copy * Superblock.SizeBytes);
            if (at >= 0 && at + Superblock.SizeBytes <= image.Length && RepairBlock(image.AsSpan((int)at, Superblock.SizeBytes), Superblock.Magic) && alBlocks == 0)
            {
                long stripes = BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan((int)at + 40));
                long stripeSize = BinaryPrimitives.ReadUInt32BigEndian(image.AsSpan((int)at + 44));
                alBlocks = stripes * stripeSize is > 0 and <= MetadataLayout.MaxAlSize4k ? (int)(stripes * stripeSize) : 0;
            }
        }

        long alStart = isInternal ? area - (alBlocks * 4096L) : area + MetadataLayout.SuperblockAreaSizeBytes;
        for (int i = 0; i < alBlocks; i++)
        {
            long at = alStart + (i * 4096L);
            if (at >= 0 && at + 4096 <= image.Length)
            {
                RepairBlock(image.AsSpan((int)at, 4096), ActivityLogTransaction.Magic);
            }
        }

        byte[] repaired = [.. input.AsSpan(0, HeaderBytes), .. image];
        return repaired;
    }

    /// <summary>Recomputes the CRC32C at offset 16 of a 4 KiB block starting with <paramref name="magic"/>.</summary>
    private static bool RepairBlock(Span<byte> block, uint magic)
    {
        if (BinaryPrimitives.ReadUInt32BigEndian(block) != magic)
        {
            return false;
        }

        BinaryPrimitives.WriteUInt32BigEndian(block[16..], Crc32C.ComputeWithZeroedField(block, 16));
        return true;
    }

    public IReadOnlyList<(string Name, Func<string?> Check)> Checks() => [];

    /// <summary>Peer node-ids for seeds.</summary>
    internal static ImmutableArray<int> Peers(int count) => [.. Enumerable.Range(1, count)];
}

// Where the metadata lives and how much of the backing disk is left for data, after drbdmeta's
// max_usable_sectors. Internal (flexible) metadata sits at the END of the backing disk:
//   [data][bitmap slots][activity log][superblock area = 2 × 4 KiB copies]
// External metadata (meta-disk /dev/x) fills the start of a separate device:
//   [superblock area][activity log][bitmap slots]
// Sizes are in bytes; all offsets are on the metadata device (= the backing disk when internal).

namespace Redundancy.Block.Engine.Metadata;

public sealed record MetadataLayout
{
    public const int BlockSizeBytes = 4096;
    /// <summary>Quick-sync granularity: one bitmap bit covers this many bytes of data.</summary>
    public const int BytesPerBit = 4096;
    /// <summary>Two 4 KiB superblock copies, so an interrupted update never loses the metadata.</summary>
    public const int SuperblockCopies = 2;
    public const long SuperblockAreaSizeBytes = SuperblockCopies * BlockSizeBytes;
    public const long MinUsableSizeBytes = 1L << 20;
    /// <summary>Upper bound of usable data size (64 PiB): keeps every size computation far from overflow.</summary>
    public const long MaxUsableSizeBytes = 1L << 56;
    public const int MaxPeerSlots = 32;
    /// <summary>DRBD's default activity log: one stripe of 8 × 4 KiB transactions (32 KiB).</summary>
    public const int DefaultAlStripes = 1;
    public const int DefaultAlStripeSize4k = 8;
    public const int MaxAlSize4k = 8192;

    /// <summary>Data bytes covered by one 4 KiB page of bitmap (128 MiB).</summary>
    private const long BytesPerBitmapPage = (long)BlockSizeBytes * 8 * BytesPerBit;

    public required bool IsInternal { get; init; }
    /// <summary>Size of the backing (data) disk.</summary>
    public required long DiskSizeBytes { get; init; }
    /// <summary>Size of the device holding the metadata (= <see cref="DiskSizeBytes"/> when internal).</summary>
    public required long MetaDeviceSizeBytes { get; init; }
    /// <summary>Data area [0, UsableSizeBytes) of the backing disk; a multiple of 4 KiB.</summary>
    public required long UsableSizeBytes { get; init; }
    public required int PeerSlots { get; init; }
    public required int AlStripes { get; init; }
    public required int AlStripeSize4k { get; init; }
    public required long SuperblockAreaOffsetBytes { get; init; }
    public required long ActivityLogOffsetBytes { get; init; }
    public required long BitmapOffsetBytes { get; init; }

    /// <summary>Bitmap bits per peer slot: one per 4 KiB of usable data.</summary>
    public long BitmapBits => UsableSizeBytes / BytesPerBit;
    /// <summary>One slot's size: the bits rounded up to whole 4 KiB pages.</summary>
    public long BitmapSlotSizeBytes => BitmapSlotSizeFor(UsableSizeBytes);
    public long BitmapSizeBytes => BitmapSlotSizeBytes * PeerSlots;
    public int ActivityLogSize4k => AlStripes * AlStripeSize4k;
    public long ActivityLogSizeBytes => (long)ActivityLogSize4k * BlockSizeBytes;
    /// <summary>Total metadata size: superblock area + AL + bitmap slots.</summary>
    public long MetadataSizeBytes => SuperblockAreaSizeBytes + ActivityLogSizeBytes + BitmapSizeBytes;
    /// <summary>Start of the metadata on the metadata device.</summary>
    public long MetadataOffsetBytes => IsInternal ? BitmapOffsetBytes : 0;

    public long SuperblockOffsetBytes(int copy)
    {
        Invariant.Assert(copy is >= 0 and < SuperblockCopies, "superblock copy index");
        return SuperblockAreaOffsetBytes + ((long)copy * BlockSizeBytes);
    }

    public long BitmapSlotOffsetBytes(int slot)
    {
        Invariant.Assert(slot >= 0 && slot < PeerSlots, "bitmap slot index");
        return BitmapOffsetBytes + (slot * BitmapSlotSizeBytes);
    }

    /// <summary>Where the superblock area is, which depends only on placement and device size.</summary>
    public static long SuperblockAreaOffsetFor(bool isInternal, long metaDeviceSizeBytes) =>
        isInternal ? AlignDown(metaDeviceSizeBytes) - SuperblockAreaSizeBytes : 0;

    public static long BitmapSlotSizeFor(long usableSizeBytes)
    {
        long bits = usableSizeBytes / BytesPerBit;
        long bytes = (bits + 7) / 8;
        return AlignUp(bytes);
    }

    /// <summary>Internal metadata at the end of <paramref name="diskSizeBytes"/>: solves for the largest usable size.</summary>
    public static bool TryCreateInternal(long diskSizeBytes, int peerSlots, out MetadataLayout layout, out string error,
        int alStripes = DefaultAlStripes, int alStripeSize4k = DefaultAlStripeSize4k)
    {
        layout = null!;
        if (!CheckCommon(peerSlots, alStripes, alStripeSize4k, out error))
        {
            return false;
        }

        long alBytes = (long)alStripes * alStripeSize4k * BlockSizeBytes;
        long end = AlignDown(Math.Max(diskSizeBytes, 0));
        long available = end - SuperblockAreaSizeBytes - alBytes;
        long usable = Math.Min(MaxUsableForInternal(available, peerSlots), MaxUsableSizeBytes);
        if (usable < MinUsableSizeBytes)
        {
            long needed = SuperblockAreaSizeBytes + alBytes + (peerSlots * BitmapSlotSizeFor(MinUsableSizeBytes));
            error = $"disk too small for internal metadata: disk size {diskSizeBytes} bytes, " +
                $"metadata size needed {needed} bytes ({peerSlots} peer slot(s)), " +
                $"minimum disk size {MinUsableSizeBytes + needed} bytes";
            return false;
        }

        long bitmapOffset = end - SuperblockAreaSizeBytes - alBytes - (peerSlots * BitmapSlotSizeFor(usable));
        layout = new MetadataLayout
        {
            IsInternal = true,
            DiskSizeBytes = diskSizeBytes,
            MetaDeviceSizeBytes = diskSizeBytes,
            UsableSizeBytes = usable,
            PeerSlots = peerSlots,
            AlStripes = alStripes,
            AlStripeSize4k = alStripeSize4k,
            SuperblockAreaOffsetBytes = end - SuperblockAreaSizeBytes,
            ActivityLogOffsetBytes = end - SuperblockAreaSizeBytes - alBytes,
            BitmapOffsetBytes = bitmapOffset,
        };
        Invariant.Assert(layout.UsableSizeBytes <= layout.BitmapOffsetBytes, "data ends before the bitmap");
        return true;
    }

    /// <summary>External metadata at the start of a separate device of <paramref name="metaDeviceSizeBytes"/>.</summary>
    public static bool TryCreateExternal(long diskSizeBytes, long metaDeviceSizeBytes, int peerSlots,
        out MetadataLayout layout, out string error,
        int alStripes = DefaultAlStripes, int alStripeSize4k = DefaultAlStripeSize4k)
    {
        layout = null!;
        if (!CheckCommon(peerSlots, alStripes, alStripeSize4k, out error))
        {
            return false;
        }

        long usable = Math.Min(AlignDown(Math.Max(diskSizeBytes, 0)), MaxUsableSizeBytes);
        long alBytes = (long)alStripes * alStripeSize4k * BlockSizeBytes;
        if (usable < MinUsableSizeBytes)
        {
            error = $"disk too small: disk size {diskSizeBytes} bytes, minimum disk size {MinUsableSizeBytes} bytes";
            return false;
        }

        long needed = SuperblockAreaSizeBytes + alBytes + (peerSlots * BitmapSlotSizeFor(usable));
        if (metaDeviceSizeBytes < needed)
        {
            error = $"metadata device too small: metadata device size {metaDeviceSizeBytes} bytes, " +
                $"metadata size needed {needed} bytes (disk size {diskSizeBytes} bytes, {peerSlots} peer slot(s)), " +
                $"minimum metadata device size {needed} bytes";
            return false;
        }

        layout = new MetadataLayout
        {
            IsInternal = false,
            DiskSizeBytes = diskSizeBytes,
            MetaDeviceSizeBytes = metaDeviceSizeBytes,
            UsableSizeBytes = usable,
            PeerSlots = peerSlots,
            AlStripes = alStripes,
            AlStripeSize4k = alStripeSize4k,
            SuperblockAreaOffsetBytes = 0,
            ActivityLogOffsetBytes = SuperblockAreaSizeBytes,
            BitmapOffsetBytes = SuperblockAreaSizeBytes + alBytes,
        };
        return true;
    }

    /// <summary>
    /// The layout an existing superblock describes (its peer slots and AL geometry) on devices of the
    /// given sizes; fails when the disk no longer holds the size the metadata recorded.
    /// </summary>
    public static bool TryFromSuperblock(Superblock superblock, bool isInternal, long diskSizeBytes,
        long metaDeviceSizeBytes, out MetadataLayout layout, out string error)
    {
        bool ok = isInternal
            ? TryCreateInternal(diskSizeBytes, superblock.PeerSlots, out layout, out error,
                superblock.AlStripes, superblock.AlStripeSize4k)
            : TryCreateExternal(diskSizeBytes, metaDeviceSizeBytes, superblock.PeerSlots, out layout, out error,
                superblock.AlStripes, superblock.AlStripeSize4k);
        if (ok && superblock.UsableSizeBytes > layout.UsableSizeBytes)
        {
            error = $"disk shrank: metadata records a usable size of {superblock.UsableSizeBytes} bytes, " +
                $"the disk (size {diskSizeBytes} bytes) now holds {layout.UsableSizeBytes} bytes";
            layout = null!;
            return false;
        }

        return ok;
    }

    private static bool CheckCommon(int peerSlots, int alStripes, int alStripeSize4k, out string error)
    {
        error = "";
        if (peerSlots is < 1 or > MaxPeerSlots)
        {
            error = $"peer slots must be 1..{MaxPeerSlots}, got {peerSlots}";
        }
        else if (alStripes < 1 || alStripeSize4k < 1 || (long)alStripes * alStripeSize4k is < 2 or > MaxAlSize4k)
        {
            error = $"activity log geometry invalid: {alStripes} stripe(s) of {alStripeSize4k} × 4 KiB " +
                $"(total must be 2..{MaxAlSize4k} blocks)";
        }

        return error.Length == 0;
    }

    /// <summary>Largest usable size U (4 KiB aligned) with U + peers × slot(U) ≤ available.</summary>
    private static long MaxUsableForInternal(long available, int peerSlots)
    {
        if (available <= 0)
        {
            return 0;
        }

        // Each bitmap page per slot covers 128 MiB. U ≤ available × 128 MiB / (128 MiB + peers × 4 KiB),
        // so no answer needs more pages than that bound (+1 for rounding); try page counts downwards.
        long pageCost = BytesPerBitmapPage + ((long)peerSlots * BlockSizeBytes);
        long pages = Math.Min((available / pageCost) + 2, (available + BytesPerBitmapPage - 1) / BytesPerBitmapPage);
        for (; pages > 0; pages--)
        {
            long candidate = Math.Min(pages * BytesPerBitmapPage, AlignDown(available - (peerSlots * pages * BlockSizeBytes)));
            if (candidate > (pages - 1) * BytesPerBitmapPage)
            {
                return candidate;
            }
        }

        return 0;
    }

    private static long AlignDown(long value) => value & ~(long)(BlockSizeBytes - 1);

    private static long AlignUp(long value) => AlignDown(value + BlockSizeBytes - 1);
}

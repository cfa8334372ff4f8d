// Reads and writes the metadata area of one volume through IBlockDevice: the two superblock copies
// (updates alternate between them, so at every instant at least one valid copy exists), the bitmap
// slots and the activity-log ring. Not thread-safe: its owner serialises calls.
using System.Collections.Immutable;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Engine.Metadata;

public sealed class MetadataStore
{
    private readonly IBlockDevice _device;
    // Sequence of each superblock copy as last read or written; null = invalid. Unknown until read.
    private readonly ulong?[] _copySequence = new ulong?[MetadataLayout.SuperblockCopies];
    private bool _copiesKnown;

    /// <param name="device">The metadata device: the backing disk when internal, the meta-disk when external.</param>
    /// <param name="layout">Where the metadata is on <paramref name="device"/>.</param>
    public MetadataStore(IBlockDevice device, MetadataLayout layout)
    {
        Invariant.Assert(layout.SuperblockAreaOffsetBytes + MetadataLayout.SuperblockAreaSizeBytes <= device.SizeBytes, "superblock area on the device");
        Invariant.Assert(layout.BitmapOffsetBytes + layout.BitmapSizeBytes <= device.SizeBytes, "bitmap on the device");
        _device = device;
        Layout = layout;
    }

    public MetadataLayout Layout { get; }

    /// <summary>
    /// create-md: invalidates any old superblock first, zeroes the AL and every bitmap slot, then writes
    /// both superblock copies (sequence 1 and 2) and flushes. Returns the superblock as written last.
    /// </summary>
    public async ValueTask<Superblock> FormatAsync(Superblock fresh, CancellationToken cancellationToken = default)
    {
        CheckMatchesLayout(fresh);
        await _device.WriteZeroesAsync(Layout.SuperblockAreaOffsetBytes, MetadataLayout.SuperblockAreaSizeBytes, mayUnmap: false, cancellationToken).ConfigureAwait(false);
        await _device.FlushAsync(cancellationToken).ConfigureAwait(false);
        await _device.WriteZeroesAsync(Layout.ActivityLogOffsetBytes, Layout.ActivityLogSizeBytes, mayUnmap: false, cancellationToken).ConfigureAwait(false);
        await _device.WriteZeroesAsync(Layout.BitmapOffsetBytes, Layout.BitmapSizeBytes, mayUnmap: false, cancellationToken).ConfigureAwait(false);
        await _device.FlushAsync(cancellationToken).ConfigureAwait(false);
        byte[] block = new byte[Superblock.SizeBytes];
        Superblock written = fresh;
        for (int copy = 0; copy < MetadataLayout.SuperblockCopies; copy++)
        {
            written = fresh with { Sequence = (ulong)copy + 1 };
            written.Write(block);
            await _device.WriteAsync(Layout.SuperblockOffsetBytes(copy), block, fua: false, cancellationToken).ConfigureAwait(false);
            _copySequence[copy] = written.Sequence;
        }

        await _device.FlushAsync(cancellationToken).ConfigureAwait(false);
        _copiesKnown = true;
        return written;
    }

    /// <summary>
    /// Reads both copies and returns the valid one with the higher sequence; fails when neither is
    /// valid or the superblock does not describe this layout (peer slots, AL geometry, size).
    /// </summary>
    public async ValueTask<MetadataReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        (MetadataReadResult result, ulong?[] sequences) = await ReadCopiesAsync(_device, Layout.SuperblockAreaOffsetBytes, cancellationToken).ConfigureAwait(false);
        sequences.CopyTo(_copySequence, 0);
        _copiesKnown = true;
        if (result.Success && LayoutMismatch(result.Superblock) is { } mismatch)
        {
            return result with { Superblock = null, Error = mismatch };
        }

        return result;
    }

    /// <summary>
    /// Opens the metadata of a volume whose layout is not known yet (attach, dump-md): finds the
    /// superblock, rebuilds the layout it describes for this disk and reads the best valid copy.
    /// On failure <see cref="MetadataOpenResult.Error"/> says why and <see cref="MetadataOpenResult.NoMetadata"/>
    /// tells "nothing there" (run create-md) apart from "there but unusable".
    /// </summary>
    public static async ValueTask<MetadataOpenResult> OpenAsync(IBlockDevice metaDevice, bool isInternal, long diskSizeBytes, CancellationToken cancellationToken = default)
    {
        var probe = await ProbeAsync(metaDevice, isInternal, cancellationToken).ConfigureAwait(false);
        if (!probe.Success)
        {
            const string prefix = "no valid metadata";
            string error = probe.Error.StartsWith(prefix, StringComparison.Ordinal) ? probe.Error : $"{prefix}: {probe.Error}";
            return new MetadataOpenResult(null, null, error, NoMetadata: true);
        }
        if (!MetadataLayout.TryFromSuperblock(probe.Superblock!, isInternal, diskSizeBytes, metaDevice.SizeBytes, out var layout, out string layoutError))
        {
            return new MetadataOpenResult(null, null, $"the metadata does not fit the disk: {layoutError}", NoMetadata: false);
        }
        var store = new MetadataStore(metaDevice, layout);
        var read = await store.ReadAsync(cancellationToken).ConfigureAwait(false);
        return read.Success
            ? new MetadataOpenResult(store, read.Superblock, null, NoMetadata: false)
            : new MetadataOpenResult(null, null, read.Error, NoMetadata: false);
    }

    /// <summary>
    /// Reads the superblock copies of a device without knowing its layout (they sit at a place that
    /// depends only on placement and device size): for create-md's "existing metadata?" check and for
    /// attach, which then builds the layout with <see cref="MetadataLayout.TryFromSuperblock"/>.
    /// </summary>
    public static async ValueTask<MetadataReadResult> ProbeAsync(IBlockDevice device, bool isInternal, CancellationToken cancellationToken = default)
    {
        long offset = MetadataLayout.SuperblockAreaOffsetFor(isInternal, device.SizeBytes);
        if (offset < 0 || offset + MetadataLayout.SuperblockAreaSizeBytes > device.SizeBytes)
        {
            return new MetadataReadResult { Error = $"device of {device.SizeBytes} bytes cannot hold metadata", CopyErrors = [null, null] };
        }

        return (await ReadCopiesAsync(device, offset, cancellationToken).ConfigureAwait(false)).Result;
    }

    /// <summary>
    /// Writes <paramref name="superblock"/> with sequence = newest + 1 over the OLDER (or invalid) copy,
    /// then flushes. Returns the superblock as written (with its new sequence).
    /// </summary>
    public async ValueTask<Superblock> WriteAsync(Superblock superblock, CancellationToken cancellationToken = default)
    {
        CheckMatchesLayout(superblock);
        if (!_copiesKnown)
        {
            await ReadAsync(cancellationToken).ConfigureAwait(false);
        }

        ulong newest = Math.Max(_copySequence[0] ?? 0, _copySequence[1] ?? 0);
        int target = _copySequence[0] is not { } s0 ? 0
            : _copySequence[1] is not { } s1 ? 1
            : s0 <= s1 ? 0 : 1;
        Superblock written = superblock with { Sequence = newest + 1 };
        byte[] block = new byte[Superblock.SizeBytes];
        written.Write(block);
        _copySequence[target] = null; // in doubt until the write and flush complete
        await _device.WriteAsync(Layout.SuperblockOffsetBytes(target), block, fua: false, cancellationToken).ConfigureAwait(false);
        await _device.FlushAsync(cancellationToken).ConfigureAwait(false);
        _copySequence[target] = written.Sequence;
        return written;
    }

    /// <summary>Reads bitmap slot <paramref name="slot"/> (bits past the end of the data are dropped).</summary>
    public async ValueTask<QuickSyncBitmap> ReadBitmapAsync(int slot, CancellationToken cancellationToken = default)
    {
        byte[] bytes = new byte[Layout.BitmapSlotSizeBytes];
        await _device.ReadAsync(Layout.BitmapSlotOffsetBytes(slot), bytes, cancellationToken).ConfigureAwait(false);
        return QuickSyncBitmap.FromSlotBytes(bytes, Layout.UsableSizeBytes);
    }

    /// <summary>Writes the whole bitmap of slot <paramref name="slot"/> and flushes.</summary>
    public ValueTask WriteBitmapAsync(int slot, QuickSyncBitmap bitmap, CancellationToken cancellationToken = default) =>
        WriteBitmapBitsAsync(slot, bitmap, 0, bitmap.BitCount, cancellationToken);

    /// <summary>
    /// Writes the 4 KiB bitmap pages holding bits [firstBit, firstBit+bitCount) of slot
    /// <paramref name="slot"/> (lazy write-out as AL extents go cold) and flushes.
    /// </summary>
    public async ValueTask WriteBitmapBitsAsync(int slot, QuickSyncBitmap bitmap, long firstBit, long bitCount, CancellationToken cancellationToken = default)
    {
        Invariant.Assert(bitmap.UsableSizeBytes == Layout.UsableSizeBytes, "bitmap sized for this layout");
        Invariant.Assert(firstBit >= 0 && bitCount >= 0 && firstBit + bitCount <= bitmap.BitCount, "bit range inside the bitmap");
        if (bitCount == 0)
        {
            return;
        }

        const long bitsPerPage = MetadataLayout.BlockSizeBytes * 8L;
        long firstPage = firstBit / bitsPerPage;
        long endPage = ((firstBit + bitCount - 1) / bitsPerPage) + 1;
        const int pagesPerChunk = 256; // 1 MiB writes
        byte[] buffer = new byte[pagesPerChunk * MetadataLayout.BlockSizeBytes];
        for (long page = firstPage; page < endPage; page += pagesPerChunk)
        {
            int length = (int)(Math.Min(pagesPerChunk, endPage - page) * MetadataLayout.BlockSizeBytes);
            long slotOffset = page * MetadataLayout.BlockSizeBytes;
            bitmap.WriteSlotBytes(slotOffset, buffer.AsSpan(0, length));
            await _device.WriteAsync(Layout.BitmapSlotOffsetBytes(slot) + slotOffset, buffer.AsMemory(0, length), fua: false, cancellationToken).ConfigureAwait(false);
        }

        await _device.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes bitmap page images taken with <see cref="QuickSyncBitmap.WriteSlotBytes"/> at
    /// <paramref name="slotOffsetBytes"/> within slot <paramref name="slot"/>; the caller flushes.
    /// </summary>
    public ValueTask WriteBitmapBytesAsync(int slot, long slotOffsetBytes, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default)
    {
        Invariant.Assert(slotOffsetBytes >= 0 && slotOffsetBytes + bytes.Length <= Layout.BitmapSlotSizeBytes, "bitmap bytes inside the slot");
        return _device.WriteAsync(Layout.BitmapSlotOffsetBytes(slot) + slotOffsetBytes, bytes, fua: false, cancellationToken);
    }

    /// <summary>Makes the metadata writes so far durable.</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => _device.FlushAsync(cancellationToken);

    /// <summary>Writes one AL transaction at its ring position, durably (FUA), as DRBD does before the data write.</summary>
    public async ValueTask WriteActivityLogTransactionAsync(ActivityLogTransaction transaction, CancellationToken cancellationToken = default)
    {
        byte[] block = new byte[ActivityLogTransaction.SizeBytes];
        transaction.Write(block);
        int index = ActivityLogRing.BlockIndex(transaction.TransactionNumber, Layout.AlStripes, Layout.AlStripeSize4k);
        await _device.WriteAsync(Layout.ActivityLogOffsetBytes + ((long)index * ActivityLogTransaction.SizeBytes), block, fua: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads the whole ring and replays it under <paramref name="superblock"/>'s al-extents.</summary>
    public async ValueTask<ActivityLogState> ReadActivityLogAsync(Superblock superblock, CancellationToken cancellationToken = default)
    {
        CheckMatchesLayout(superblock);
        byte[] area = new byte[Layout.ActivityLogSizeBytes];
        await _device.ReadAsync(Layout.ActivityLogOffsetBytes, area, cancellationToken).ConfigureAwait(false);
        return ActivityLogRing.Replay(area, superblock);
    }

    private static async ValueTask<(MetadataReadResult Result, ulong?[] Sequences)> ReadCopiesAsync(IBlockDevice device, long areaOffset, CancellationToken cancellationToken)
    {
        byte[] area = new byte[MetadataLayout.SuperblockAreaSizeBytes];
        await device.ReadAsync(areaOffset, area, cancellationToken).ConfigureAwait(false);
        var copies = new Superblock?[MetadataLayout.SuperblockCopies];
        var errors = new string?[MetadataLayout.SuperblockCopies];
        for (int copy = 0; copy < copies.Length; copy++)
        {
            bool ok = Superblock.TryRead(area.AsSpan(copy * Superblock.SizeBytes, Superblock.SizeBytes), out var sb, out string error);
            copies[copy] = ok ? sb : null;
            errors[copy] = ok ? null : error;
        }

        ulong?[] sequences = [copies[0]?.Sequence, copies[1]?.Sequence];
        int winner = copies[0] is null ? (copies[1] is null ? -1 : 1)
            : copies[1] is null || copies[0]!.Sequence >= copies[1]!.Sequence ? 0 : 1;
        var result = new MetadataReadResult
        {
            Superblock = winner >= 0 ? copies[winner] : null,
            Copy = winner,
            Error = winner >= 0 ? null : $"no valid metadata: copy 0: {errors[0]}; copy 1: {errors[1]}",
            CopyErrors = ImmutableArray.Create(errors),
        };
        return (result, sequences);
    }

    private string? LayoutMismatch(Superblock sb)
    {
        if (sb.PeerSlots != Layout.PeerSlots || sb.AlStripes != Layout.AlStripes || sb.AlStripeSize4k != Layout.AlStripeSize4k)
        {
            return $"metadata has {sb.PeerSlots} peer slot(s) and an AL of {sb.AlStripes}×{sb.AlStripeSize4k} blocks; " +
                $"expected {Layout.PeerSlots} and {Layout.AlStripes}×{Layout.AlStripeSize4k}";
        }

        return sb.UsableSizeBytes > Layout.UsableSizeBytes
            ? $"metadata records a usable size of {sb.UsableSizeBytes} bytes, larger than the {Layout.UsableSizeBytes} available"
            : null;
    }

    private void CheckMatchesLayout(Superblock sb)
    {
        string? error = sb.ValidationError() ?? LayoutMismatch(sb);
        Invariant.Assert(error == null, "superblock does not fit the layout: " + error);
    }
}

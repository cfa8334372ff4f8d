namespace Redundancy.Block.Engine.Io;

/// <summary>
/// A block device the engine reads and writes: a backing disk (file or kernel block device), a range
/// of one, or a simulated disk. Contract:
/// <list type="bullet">
/// <item>Offsets and lengths are in bytes and must lie inside [0, <see cref="SizeBytes"/>);
/// callers validate, implementations assert.</item>
/// <item>A completed write is visible to every later read, but durable only after
/// <see cref="FlushAsync"/> completes, or at once when written with <c>fua</c>.</item>
/// <item>Failures are reported as <see cref="IOException"/>; the caller turns them into an EIO for
/// the request and a logged event, never a crash.</item>
/// </list>
/// </summary>
public interface IBlockDevice : IDisposable
{
    /// <summary>Usable size of the device in bytes.</summary>
    long SizeBytes { get; }

    /// <summary>True when zeroing can be done without writing data (fallocate, BLKZEROOUT).</summary>
    bool CanFastZero { get; }

    /// <summary>Reads exactly <c>buffer.Length</c> bytes at <paramref name="offsetBytes"/>.</summary>
    ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Writes all of <paramref name="data"/>; with <paramref name="fua"/> it is durable on return.</summary>
    ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default);

    /// <summary>Makes every completed write durable (fdatasync).</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Discards a range. The contents afterwards read as zeroes (we guarantee it, stricter than NBD,
    /// so replicas never diverge on trimmed blocks).
    /// </summary>
    ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default);

    /// <summary>
    /// Makes a range read as zeroes. <paramref name="mayUnmap"/> lets it deallocate (punch a hole);
    /// without it the blocks stay allocated (NBD's NO_HOLE).
    /// </summary>
    ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default);

    /// <summary>
    /// Describes allocation from <paramref name="offsetBytes"/> for at most <paramref name="lengthBytes"/>,
    /// appending at least one extent (covering at least one byte) to <paramref name="extents"/>. A device that
    /// cannot tell reports one allocated, non-zero extent for the whole range.
    /// </summary>
    ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default);
}

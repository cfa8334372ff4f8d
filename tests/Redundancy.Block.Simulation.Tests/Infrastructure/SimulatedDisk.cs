using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Simulation.Infrastructure;

/// <summary>
/// A disk with a volatile write cache, after FoundationDB's AsyncFileNonDurable: a completed write
/// is visible to reads at once but durable only after a flush (or when written with FUA). A crash
/// loses unflushed writes, or tears them (some sectors land, some do not). Faults: failing writes
/// and flushes, latent read errors on chosen 4 KiB blocks. Operations complete synchronously;
/// the simulation models latency by when it calls them.
/// </summary>
public sealed class SimulatedDisk : IBlockDevice
{
    public const int SectorBytes = 512;
    private const int BlockBytes = 4096;
    private readonly byte[] durable;
    private readonly byte[] visible;
    private readonly List<(long Offset, byte[] Data, bool Durable)> unflushed = [];
    private readonly HashSet<long> latentReadErrorBlocks = [];

    public SimulatedDisk(string name, long sizeBytes)
    {
        Name = name;
        SizeBytes = sizeBytes;
        durable = new byte[sizeBytes];
        visible = new byte[sizeBytes];
    }

    public string Name { get; }

    public long SizeBytes { get; }

    public bool CanFastZero => true;

    /// <summary>When set, writes (and zeroing, discards) fail with an I/O error.</summary>
    public bool FailWrites { get; set; }

    /// <summary>
    /// A lying disk (a test double for the checkers): writes report success but change nothing.
    /// Never part of a random run: it breaks the contract every replication layer relies on.
    /// </summary>
    public bool LoseWritesSilently { get; set; }

    /// <summary>When set, flushes fail with an I/O error.</summary>
    public bool FailFlushes { get; set; }

    public int UnflushedWrites => unflushed.Count;

    /// <summary>Bytes as they would be after a clean shutdown (everything flushed).</summary>
    public ReadOnlySpan<byte> Contents => visible;

    /// <summary>Bytes that survive a crash for sure.</summary>
    public ReadOnlySpan<byte> DurableContents => durable;

    /// <summary>Makes reads of the 4 KiB block holding <paramref name="offsetBytes"/> fail.</summary>
    public void AddLatentReadError(long offsetBytes) => latentReadErrorBlocks.Add(offsetBytes / BlockBytes);

    /// <summary>The disk is replaced or its bad blocks remapped: no read fails any more.</summary>
    public void ClearLatentReadErrors() => latentReadErrorBlocks.Clear();

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, buffer.Length);
        for (long block = offsetBytes / BlockBytes; block * BlockBytes < offsetBytes + buffer.Length; block++)
        {
            if (latentReadErrorBlocks.Contains(block))
            {
                return ValueTask.FromException(new IOException($"{Name}: latent read error in block {block}"));
            }
        }
        visible.AsSpan((int)offsetBytes, buffer.Length).CopyTo(buffer.Span);
        return default;
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, data.Length);
        if (FailWrites)
        {
            return ValueTask.FromException(new IOException($"{Name}: write error at {offsetBytes}"));
        }
        if (LoseWritesSilently)
        {
            return default;
        }
        data.Span.CopyTo(visible.AsSpan((int)offsetBytes));
        if (fua)
        {
            data.Span.CopyTo(durable.AsSpan((int)offsetBytes));
        }
        // Kept even when durable: a torn crash replays the cache in order, and a FUA write must
        // then win over older cached writes to the same sectors.
        unflushed.Add((offsetBytes, data.ToArray(), fua));
        latentReadErrorBlocks.RemoveWhere(b => b * BlockBytes >= offsetBytes && b * BlockBytes < offsetBytes + data.Length);
        return default;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (FailFlushes)
        {
            return ValueTask.FromException(new IOException($"{Name}: flush error"));
        }
        visible.CopyTo(durable, 0);
        unflushed.Clear();
        return default;
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap: true, cancellationToken);

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) =>
        WriteAsync(offsetBytes, new byte[lengthBytes], fua: false, cancellationToken);

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default)
    {
        CheckRange(offsetBytes, lengthBytes);
        extents.Add(new AllocationExtent(lengthBytes, AllocationFlags.Data));
        return default;
    }

    /// <summary>
    /// Power loss: what was not flushed is lost, except that each unflushed write may have reached
    /// the platter in part (torn at sector granularity) when <paramref name="tear"/> is set.
    /// </summary>
    public void Crash(SimRandom random, bool tear)
    {
        durable.CopyTo(visible, 0);
        if (tear)
        {
            foreach (var (offset, data, wasDurable) in unflushed)
            {
                for (int sector = 0; sector < data.Length; sector += SectorBytes)
                {
                    if (wasDurable || random.Chance(0.5))
                    {
                        int length = Math.Min(SectorBytes, data.Length - sector);
                        data.AsSpan(sector, length).CopyTo(visible.AsSpan((int)offset + sector));
                    }
                }
            }
            visible.CopyTo(durable, 0);
        }
        unflushed.Clear();
    }

    public void Dispose()
    {
    }

    private void CheckRange(long offsetBytes, long lengthBytes) =>
        Engine.Invariant.Assert(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= SizeBytes,
            $"{Name}: {lengthBytes} bytes at {offsetBytes} outside the disk of {SizeBytes} bytes");
}

// A decorator that makes a block device fail on demand, in the spirit of nbdkit's error filter: tests
// switch reads, writes or flushes to failing (or give a predicate on the request) and check that a
// disk I/O error becomes an EIO for the request and a logged event, never a crash. Failed requests do
// not reach the inner device. All switches may be flipped while I/O is in flight.
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Storage;

/// <summary>The kinds of request a <see cref="FaultInjectingBlockDevice"/> can fail.</summary>
public enum BlockOperation
{
    Read,
    Write,
    Flush,
    Discard,
    WriteZeroes,
    Allocation,
}

public sealed class FaultInjectingBlockDevice(IBlockDevice inner) : IBlockDevice
{
    private const int EIO = 5;

    private readonly IBlockDevice inner = inner ?? throw new ArgumentNullException(nameof(inner));
    private volatile bool failReads;
    private volatile bool failWrites;
    private volatile bool failFlush;
    private volatile Func<BlockOperation, long, long, bool>? failWhen;
    private long injectedFaults;

    /// <summary>Fail every read.</summary>
    public bool FailReads { get => failReads; set => failReads = value; }

    /// <summary>Fail every write, discard and write-zeroes (anything that changes data).</summary>
    public bool FailWrites { get => failWrites; set => failWrites = value; }

    /// <summary>Fail every flush (and FUA writes, whose durability is a flush).</summary>
    public bool FailFlush { get => failFlush; set => failFlush = value; }

    /// <summary>Fail a request when this returns true for (operation, offset, length); flush passes (0, 0).</summary>
    public Func<BlockOperation, long, long, bool>? FailWhen { get => failWhen; set => failWhen = value; }

    /// <summary>The errno put in the exception's HResult; EIO unless a test wants another.</summary>
    public int Errno { get; set; } = EIO;

    /// <summary>How many requests have been failed so far.</summary>
    public long InjectedFaults => Interlocked.Read(ref injectedFaults);

    public long SizeBytes => inner.SizeBytes;

    public bool CanFastZero => inner.CanFastZero;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ShouldFail(BlockOperation.Read, failReads, offsetBytes, buffer.Length)
            ? Fault(BlockOperation.Read, offsetBytes, buffer.Length)
            : inner.ReadAsync(offsetBytes, buffer, cancellationToken);

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default) =>
        ShouldFail(BlockOperation.Write, failWrites || (fua && failFlush), offsetBytes, data.Length)
            ? Fault(BlockOperation.Write, offsetBytes, data.Length)
            : inner.WriteAsync(offsetBytes, data, fua, cancellationToken);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        ShouldFail(BlockOperation.Flush, failFlush, 0, 0)
            ? Fault(BlockOperation.Flush, 0, 0)
            : inner.FlushAsync(cancellationToken);

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        ShouldFail(BlockOperation.Discard, failWrites, offsetBytes, lengthBytes)
            ? Fault(BlockOperation.Discard, offsetBytes, lengthBytes)
            : inner.DiscardAsync(offsetBytes, lengthBytes, cancellationToken);

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) =>
        ShouldFail(BlockOperation.WriteZeroes, failWrites, offsetBytes, lengthBytes)
            ? Fault(BlockOperation.WriteZeroes, offsetBytes, lengthBytes)
            : inner.WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap, cancellationToken);

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default) =>
        ShouldFail(BlockOperation.Allocation, false, offsetBytes, lengthBytes)
            ? Fault(BlockOperation.Allocation, offsetBytes, lengthBytes)
            : inner.GetAllocationAsync(offsetBytes, lengthBytes, extents, cancellationToken);

    /// <summary>Disposes the inner device: the decorator stands in for it.</summary>
    public void Dispose() => inner.Dispose();

    private bool ShouldFail(BlockOperation operation, bool switchedOn, long offsetBytes, long lengthBytes) =>
        switchedOn || (failWhen?.Invoke(operation, offsetBytes, lengthBytes) ?? false);

    private ValueTask Fault(BlockOperation operation, long offsetBytes, long lengthBytes)
    {
        Interlocked.Increment(ref injectedFaults);
        return ValueTask.FromException(new IOException(
            $"injected fault: {operation} of {lengthBytes} bytes at offset {offsetBytes} failed " +
            $"(errno {Errno})", Errno));
    }
}

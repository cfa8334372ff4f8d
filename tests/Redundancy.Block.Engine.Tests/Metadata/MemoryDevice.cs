// An in-memory IBlockDevice for metadata tests: bytes in an array, flushes counted, raw access for
// simulating torn writes and corruption.
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Engine.Tests.Metadata;

public sealed class MemoryDevice(long sizeBytes) : IBlockDevice
{
    private readonly byte[] _data = new byte[sizeBytes];

    public long SizeBytes => _data.LongLength;

    public bool CanFastZero => true;

    public int Flushes { get; private set; }

    public int Writes { get; private set; }

    /// <summary>The raw contents, for tests that tear writes or corrupt bytes.</summary>
    public Span<byte> Data => _data;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Check(offsetBytes, buffer.Length);
        _data.AsSpan((int)offsetBytes, buffer.Length).CopyTo(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default)
    {
        Check(offsetBytes, data.Length);
        data.Span.CopyTo(_data.AsSpan((int)offsetBytes));
        Writes++;
        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        Flushes++;
        return ValueTask.CompletedTask;
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap: true, cancellationToken);

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default)
    {
        Check(offsetBytes, lengthBytes);
        _data.AsSpan((int)offsetBytes, (int)lengthBytes).Clear();
        Writes++;
        return ValueTask.CompletedTask;
    }

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default)
    {
        Check(offsetBytes, lengthBytes);
        extents.Add(new AllocationExtent(lengthBytes, AllocationFlags.Data));
        return ValueTask.CompletedTask;
    }

    public void Dispose()
    {
    }

    private void Check(long offsetBytes, long lengthBytes) =>
        Invariant.Assert(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= SizeBytes, "I/O inside the memory device");
}

// A small in-memory IBlockDevice for the fuzzed NBD exports. An access outside the device means the
// server let an unchecked range through: it fails as an invariant (a crash for the fuzzer).
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Fuzz.Support;

public sealed class ArrayDevice(int sizeBytes, bool canFastZero) : IBlockDevice
{
    private readonly byte[] _data = new byte[sizeBytes];
    private readonly Lock _lock = new();

    public long SizeBytes => _data.Length;

    public bool CanFastZero { get; } = canFastZero;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Check(offsetBytes, buffer.Length);
        lock (_lock)
        {
            _data.AsSpan((int)offsetBytes, buffer.Length).CopyTo(buffer.Span);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default)
    {
        Check(offsetBytes, data.Length);
        lock (_lock)
        {
            data.Span.CopyTo(_data.AsSpan((int)offsetBytes));
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap: true, cancellationToken);

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default)
    {
        Check(offsetBytes, lengthBytes);
        lock (_lock)
        {
            _data.AsSpan((int)offsetBytes, (int)lengthBytes).Clear();
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(extents);
        Check(offsetBytes, lengthBytes);
        Invariant.Assert(lengthBytes > 0, "allocation asked for at least one byte");
        long half = Math.Max(1, lengthBytes / 2);
        extents.Add(new AllocationExtent(half, AllocationFlags.Data));
        if (half < lengthBytes)
        {
            extents.Add(new AllocationExtent(lengthBytes - half, AllocationFlags.Hole | AllocationFlags.Zero));
        }

        return ValueTask.CompletedTask;
    }

    public void Dispose()
    {
    }

    private void Check(long offsetBytes, long lengthBytes) =>
        Invariant.Assert(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= _data.Length,
            $"device access {offsetBytes}+{lengthBytes} outside the {_data.Length}-byte export");
}

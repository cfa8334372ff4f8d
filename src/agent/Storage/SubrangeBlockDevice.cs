// A view of a byte range of another block device, e.g. the data area [0, usable) of a disk with
// internal metadata, or the metadata area after it. Offsets are shifted by the range's start; every
// call is asserted to stay inside the range. The view does not own the inner device: disposing the
// view leaves it open (several views share one disk).
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Storage;

public sealed class SubrangeBlockDevice : IBlockDevice
{
    private readonly IBlockDevice inner;

    public SubrangeBlockDevice(IBlockDevice inner, long offsetBytes, long sizeBytes)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Invariant.Assert(offsetBytes >= 0 && sizeBytes >= 0 && offsetBytes <= inner.SizeBytes - sizeBytes,
            $"subrange [{offsetBytes}, +{sizeBytes}) does not fit in a device of {inner.SizeBytes} bytes");
        this.inner = inner;
        OffsetBytes = offsetBytes;
        SizeBytes = sizeBytes;
    }

    /// <summary>Where the view starts on the inner device.</summary>
    public long OffsetBytes { get; }

    public long SizeBytes { get; }

    public bool CanFastZero => inner.CanFastZero;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, buffer.Length, "read");
        return inner.ReadAsync(OffsetBytes + offsetBytes, buffer, cancellationToken);
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, data.Length, "write");
        return inner.WriteAsync(OffsetBytes + offsetBytes, data, fua, cancellationToken);
    }

    /// <summary>Flushes the whole inner device: durability is per device, not per range.</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, lengthBytes, "discard");
        return inner.DiscardAsync(OffsetBytes + offsetBytes, lengthBytes, cancellationToken);
    }

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, lengthBytes, "write-zeroes");
        return inner.WriteZeroesAsync(OffsetBytes + offsetBytes, lengthBytes, mayUnmap, cancellationToken);
    }

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, lengthBytes, "allocation query");
        return inner.GetAllocationAsync(OffsetBytes + offsetBytes, lengthBytes, extents, cancellationToken);
    }

    /// <summary>Does nothing: the inner device belongs to whoever opened it.</summary>
    public void Dispose()
    {
    }

    private void AssertRange(long offsetBytes, long lengthBytes, string operation)
    {
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > SizeBytes - lengthBytes)
        {
            Invariant.Fail($"subrange: {operation} of {lengthBytes} bytes at offset {offsetBytes} " +
                $"is outside [0, {SizeBytes})");
        }
    }
}

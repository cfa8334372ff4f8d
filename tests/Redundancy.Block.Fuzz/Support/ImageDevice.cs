// A read-only metadata device made from a fuzz input: SizeBytes long, the image at its end (internal
// metadata sits at the end of the backing disk) and zeroes before it. Reading metadata must never
// write, and never read outside the device: both fail as invariants (crashes for the fuzzer).
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Fuzz.Support;

public sealed class ImageDevice(byte[] image, long sizeBytes) : IBlockDevice
{
    private readonly long _imageStart = sizeBytes - image.Length;

    public long SizeBytes { get; } = sizeBytes;

    public bool CanFastZero => false;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Invariant.Assert(offsetBytes >= 0 && offsetBytes + buffer.Length <= SizeBytes, $"metadata read {offsetBytes}+{buffer.Length} outside the {SizeBytes}-byte device");
        Span<byte> span = buffer.Span;
        span.Clear();
        long from = Math.Max(offsetBytes, _imageStart);
        long to = offsetBytes + buffer.Length;
        if (from < to)
        {
            image.AsSpan((int)(from - _imageStart), (int)(to - from)).CopyTo(span[(int)(from - offsetBytes)..]);
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default) =>
        throw new InvariantViolationException("reading metadata wrote to the device");

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        throw new InvariantViolationException("reading metadata discarded on the device");

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) =>
        throw new InvariantViolationException("reading metadata zeroed the device");

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default) =>
        throw new InvariantViolationException("reading metadata asked for allocation");

    public void Dispose()
    {
    }
}

// The data path of a disk opened with O_DIRECT: whole-block reads and writes go to the kernel through
// the disk's DirectIoQueue (Linux AIO), so an NBD client's queue depth reaches the disk; everything
// else, and whatever the queue does not take, runs synchronously on the FileBlockDevice. Only the data
// area is wrapped: the metadata store waits for its writes synchronously, sometimes under the
// replica's lock, and must not depend on the queue's thread, which itself takes that lock.
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Storage;

public sealed class QueuedBlockDevice(FileBlockDevice disk) : IBlockDevice
{
    public long SizeBytes => disk.SizeBytes;

    public bool CanFastZero => disk.CanFastZero;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        !cancellationToken.IsCancellationRequested && disk.TryQueueRead(offsetBytes, buffer) is ValueTask started
            ? started
            : disk.ReadAsync(offsetBytes, buffer, cancellationToken);

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default) =>
        !cancellationToken.IsCancellationRequested && disk.TryQueueWrite(offsetBytes, data, fua) is ValueTask started
            ? started
            : disk.WriteAsync(offsetBytes, data, fua, cancellationToken);

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => disk.FlushAsync(cancellationToken);

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        disk.DiscardAsync(offsetBytes, lengthBytes, cancellationToken);

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) =>
        disk.WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap, cancellationToken);

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default) =>
        disk.GetAllocationAsync(offsetBytes, lengthBytes, extents, cancellationToken);

    /// <summary>The FileBlockDevice stays its owner's to dispose.</summary>
    public void Dispose()
    {
    }
}

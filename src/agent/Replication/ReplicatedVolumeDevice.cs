using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Replication;

/// <summary>
/// A volume of a replicated resource as its NBD clients see it: reads are served from the local
/// disk (DRBD reads locally), every write, zeroing, trim and flush goes through the replica, which
/// completes it when the protocol's guarantee holds on this node and its connected peers. Its size
/// is the size the nodes agreed on when the client opened it (the smallest disk's), not the local
/// disk's: the replica fails any write past the agreed size.
/// </summary>
internal sealed class ReplicatedVolumeDevice(ReplicaHost host, int volume, IBlockDevice local, long sizeBytes) : IBlockDevice
{
    public long SizeBytes { get; } = sizeBytes;

    /// <summary>A replicated zeroing is never guaranteed fast (the peer's disk decides too).</summary>
    public bool CanFastZero => false;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        local.ReadAsync(offsetBytes, buffer, cancellationToken);

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default) =>
        Outcome(host.WriteAsync(volume, offsetBytes, data, fua), "write");

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => Outcome(host.FlushAsync(), "flush");

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        Outcome(host.ZeroAsync(volume, offsetBytes, lengthBytes, trim: true), "trim");

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) =>
        Outcome(host.ZeroAsync(volume, offsetBytes, lengthBytes, trim: false), "write-zeroes");

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default) =>
        local.GetAllocationAsync(offsetBytes, lengthBytes, extents, cancellationToken);

    /// <summary>The local disk belongs to the volume; nothing to release here.</summary>
    public void Dispose()
    {
    }

    private static async ValueTask Outcome(Task<bool> replicated, string what)
    {
        if (!await replicated.ConfigureAwait(false))
        {
            throw new IOException($"replicated {what} failed (no UpToDate data reachable, or not Primary)");
        }
    }
}

using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Replication;

/// <summary>
/// A volume of a replicated resource as its NBD clients see it. Reads are served from the local
/// disk while it is UpToDate (without the replica's lock); otherwise — Diskless after an I/O error,
/// or a SyncTarget after `attach` — and whenever the local read fails or the disk state moved while
/// it ran, through the replica, which reads from a peer whose disk is UpToDate. Every write, zeroing,
/// trim and flush goes through the replica, which completes it when the protocol's guarantee holds
/// on this node and its connected peers. Its size is the size the nodes agreed on when the client
/// opened it (the smallest disk's), not the local disk's: the replica fails any write or read past
/// the agreed size.
/// </summary>
internal sealed class ReplicatedVolumeDevice(ReplicaHost host, int volume, IBlockDevice local, long sizeBytes) : IBlockDevice
{
    public long SizeBytes { get; } = sizeBytes;

    /// <summary>A replicated zeroing is never guaranteed fast (the peer's disk decides too).</summary>
    public bool CanFastZero => false;

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!host.TryBeginLocalRead(volume, out int stamp))
        {
            return ReplicaReadAsync(offsetBytes, buffer);
        }
        var pending = local.ReadAsync(offsetBytes, buffer, cancellationToken);
        return pending.IsCompletedSuccessfully && host.LocalReadStillValid(volume, stamp)
            ? pending
            : LocalThenReplicaAsync(pending, stamp, offsetBytes, buffer);
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default) =>
        Outcome(host.WriteAsync(volume, offsetBytes, data, fua), "write");

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => Outcome(host.FlushAsync(), "flush");

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        Outcome(host.ZeroAsync(volume, offsetBytes, lengthBytes, trim: true), "trim");

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) =>
        Outcome(host.ZeroAsync(volume, offsetBytes, lengthBytes, trim: false), "write-zeroes");

    /// <summary>The local disk's allocation while it is UpToDate; otherwise all data (what the peer holds is not known here).</summary>
    public async ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default)
    {
        int before = extents.Count;
        if (host.TryBeginLocalRead(volume, out _))
        {
            try
            {
                await local.GetAllocationAsync(offsetBytes, lengthBytes, extents, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (IOException)
            {
                extents.RemoveRange(before, extents.Count - before);
            }
        }
        extents.Add(new AllocationExtent(lengthBytes, AllocationFlags.Data));
    }

    /// <summary>The local disk belongs to the volume; nothing to release here.</summary>
    public void Dispose()
    {
    }

    /// <summary>
    /// A local read that failed (the disk's `on-io-error` policy deals with the disk) or raced with a
    /// change of the disk state is done again through the replica, as DRBD retries a failed local
    /// read at a peer.
    /// </summary>
    private async ValueTask LocalThenReplicaAsync(ValueTask pending, int stamp, long offsetBytes, Memory<byte> buffer)
    {
        try
        {
            await pending.ConfigureAwait(false);
            if (host.LocalReadStillValid(volume, stamp))
            {
                return;
            }
        }
        catch (IOException)
        {
            // Served by a peer below.
        }
        await ReplicaReadAsync(offsetBytes, buffer).ConfigureAwait(false);
    }

    private async ValueTask ReplicaReadAsync(long offsetBytes, Memory<byte> buffer)
    {
        if (!await host.ReadAsync(volume, offsetBytes, buffer).ConfigureAwait(false))
        {
            throw new IOException("replicated read failed (no UpToDate data reachable, or not Primary)");
        }
    }

    private static async ValueTask Outcome(Task<bool> replicated, string what)
    {
        if (!await replicated.ConfigureAwait(false))
        {
            throw new IOException($"replicated {what} failed (no UpToDate data reachable, or not Primary)");
        }
    }
}

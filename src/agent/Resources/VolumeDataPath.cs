using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// The data path of one volume as NBD clients see it: the data area of the backing disk, with I/O
/// statistics, in-flight accounting so a detach can drain, and disk errors reported to the resource
/// (on-io-error) before they reach the client as EIO. While no disk is attached every request fails
/// with an <see cref="IOException"/>, which the NBD server turns into EIO.
/// </summary>
internal sealed class VolumeDataPath(string subject, long sizeBytes, Action<IOException> onDiskError) : IBlockDevice
{
    private readonly Lock gate = new();
    private IBlockDevice? disk;
    private int inFlight;
    private TaskCompletionSource? drained;
    private long readBytes;
    private long writtenBytes;
    private long size = sizeBytes;

    /// <summary>All the disk holds for data (the export shows the agreed size of it); grows with <see cref="Grow"/>.</summary>
    public long SizeBytes => Interlocked.Read(ref size);

    public bool CanFastZero => Volatile.Read(ref disk)?.CanFastZero ?? false;

    public long ReadBytes => Interlocked.Read(ref readBytes);

    public long WrittenBytes => Interlocked.Read(ref writtenBytes);

    public int InFlight => Volatile.Read(ref inFlight);

    /// <summary>Connects the data area of a freshly attached disk.</summary>
    public void Connect(IBlockDevice dataArea)
    {
        lock (gate)
        {
            Engine.Invariant.Assert(disk is null, $"{subject}: data path connected twice");
            Engine.Invariant.Assert(dataArea.SizeBytes >= SizeBytes, $"{subject}: data area smaller than the volume");
            Volatile.Write(ref disk, dataArea);
        }
    }

    /// <summary>
    /// `resize` grew the disk: new requests go to <paramref name="dataArea"/> (a bigger view of the same
    /// disk, so requests in flight on the old view stay valid).
    /// </summary>
    public void Grow(IBlockDevice dataArea)
    {
        lock (gate)
        {
            Engine.Invariant.Assert(dataArea.SizeBytes >= SizeBytes, $"{subject}: a data path only grows");
            if (Volatile.Read(ref disk) is not null)
            {
                Volatile.Write(ref disk, dataArea);
            }
            Interlocked.Exchange(ref size, dataArea.SizeBytes);
        }
    }

    /// <summary>Stops new requests from reaching the disk and waits for those in flight.</summary>
    public async Task DisconnectAsync()
    {
        Task wait;
        lock (gate)
        {
            // The exchange is a full fence: a request entering after it sees no disk, and one that
            // entered before it is counted in inFlight when that is read below.
            Interlocked.Exchange(ref disk, null);
            if (Volatile.Read(ref inFlight) == 0)
            {
                return;
            }
            drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wait = drained.Task;
        }
        await wait.ConfigureAwait(false);
    }

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Enter() is { } disk ? Complete(disk.ReadAsync(offsetBytes, buffer, cancellationToken), Counter.Read, buffer.Length) : NoDisk();

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default) =>
        Enter() is { } disk ? Complete(disk.WriteAsync(offsetBytes, data, fua, cancellationToken), Counter.Written, data.Length) : NoDisk();

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        Enter() is { } disk ? Complete(disk.FlushAsync(cancellationToken)) : NoDisk();

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        Enter() is { } disk ? Complete(disk.DiscardAsync(offsetBytes, lengthBytes, cancellationToken)) : NoDisk();

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) =>
        Enter() is { } disk ? Complete(disk.WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap, cancellationToken)) : NoDisk();

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default) =>
        Enter() is { } disk ? Complete(disk.GetAllocationAsync(offsetBytes, lengthBytes, extents, cancellationToken)) : NoDisk();

    /// <summary>The data path does not own the disk; the volume closes it after a drain.</summary>
    public void Dispose()
    {
    }

    private enum Counter
    {
        None,
        Read,
        Written,
    }

    /// <summary>
    /// Finishes an operation entered with <see cref="Enter"/>: counts its bytes, reports a disk error
    /// to the resource, leaves. When the disk answered at once (the usual case) nothing is allocated.
    /// </summary>
    private ValueTask Complete(ValueTask pending, Counter counter = Counter.None, long bytes = 0)
    {
        if (pending.IsCompletedSuccessfully)
        {
            // Consumed even so: a pooled source (the direct I/O queue's) takes its slot back in GetResult.
            pending.GetAwaiter().GetResult();
            Count(counter, bytes);
            Exit();
            return default;
        }
        return AwaitAsync(pending, counter, bytes);
    }

    private async ValueTask AwaitAsync(ValueTask pending, Counter counter, long bytes)
    {
        try
        {
            await pending.ConfigureAwait(false);
            Count(counter, bytes);
        }
        catch (IOException e)
        {
            onDiskError(e);
            throw;
        }
        finally
        {
            Exit();
        }
    }

    private void Count(Counter counter, long bytes)
    {
        if (counter == Counter.Read)
        {
            Interlocked.Add(ref readBytes, bytes);
        }
        else if (counter == Counter.Written)
        {
            Interlocked.Add(ref writtenBytes, bytes);
        }
    }

    private ValueTask NoDisk() => ValueTask.FromException(new IOException($"{subject}: no disk attached (Diskless)"));

    /// <summary>
    /// Counts a request in; null when no disk is attached (the request then fails with EIO). Lock-free:
    /// the count goes up first, then the disk is read, so <see cref="DisconnectAsync"/> either sees the
    /// request in flight or the request sees no disk.
    /// </summary>
    private IBlockDevice? Enter()
    {
        if (Volatile.Read(ref disk) is null)
        {
            return null;
        }
        Interlocked.Increment(ref inFlight);
        IBlockDevice? current = Volatile.Read(ref disk);
        if (current is null)
        {
            Exit();
        }
        return current;
    }

    private void Exit()
    {
        if (Interlocked.Decrement(ref inFlight) != 0 || Volatile.Read(ref disk) is not null)
        {
            return;
        }
        TaskCompletionSource? done;
        lock (gate)
        {
            done = drained;
            drained = null;
        }
        done?.TrySetResult();
    }
}

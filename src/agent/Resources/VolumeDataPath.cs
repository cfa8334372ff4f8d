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

    public long SizeBytes { get; } = sizeBytes;

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
            disk = dataArea;
        }
    }

    /// <summary>Stops new requests from reaching the disk and waits for those in flight.</summary>
    public async Task DisconnectAsync()
    {
        Task wait;
        lock (gate)
        {
            disk = null;
            if (inFlight == 0)
            {
                return;
            }
            drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            wait = drained.Task;
        }
        await wait.ConfigureAwait(false);
    }

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var target = Enter();
        try
        {
            await target.ReadAsync(offsetBytes, buffer, cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref readBytes, buffer.Length);
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

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default)
    {
        var target = Enter();
        try
        {
            await target.WriteAsync(offsetBytes, data, fua, cancellationToken).ConfigureAwait(false);
            Interlocked.Add(ref writtenBytes, data.Length);
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

    public ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        Run(static (d, _, _, _, ct) => d.FlushAsync(ct), 0, 0, false, cancellationToken);

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        Run(static (d, o, l, _, ct) => d.DiscardAsync(o, l, ct), offsetBytes, lengthBytes, false, cancellationToken);

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) =>
        Run(static (d, o, l, u, ct) => d.WriteZeroesAsync(o, l, u, ct), offsetBytes, lengthBytes, mayUnmap, cancellationToken);

    public async ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default)
    {
        var target = Enter();
        try
        {
            await target.GetAllocationAsync(offsetBytes, lengthBytes, extents, cancellationToken).ConfigureAwait(false);
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

    /// <summary>The data path does not own the disk; the volume closes it after a drain.</summary>
    public void Dispose()
    {
    }

    private async ValueTask Run(Func<IBlockDevice, long, long, bool, CancellationToken, ValueTask> operation, long offsetBytes, long lengthBytes, bool flag, CancellationToken cancellationToken)
    {
        var target = Enter();
        try
        {
            await operation(target, offsetBytes, lengthBytes, flag, cancellationToken).ConfigureAwait(false);
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

    private IBlockDevice Enter()
    {
        lock (gate)
        {
            if (disk is null)
            {
                throw new IOException($"{subject}: no disk attached (Diskless)");
            }
            inFlight++;
            return disk;
        }
    }

    private void Exit()
    {
        TaskCompletionSource? done = null;
        lock (gate)
        {
            inFlight--;
            if (inFlight == 0 && disk is null)
            {
                done = drained;
                drained = null;
            }
        }
        done?.TrySetResult();
    }
}

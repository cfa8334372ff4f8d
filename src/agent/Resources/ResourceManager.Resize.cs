using Microsoft.Extensions.Logging;
using Redundancy.Block.Agent.Replication;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Agent.Resources;

// `resize` (drbdadm resize), after the backing disks grew: the device grows to what every node now
// holds. This node re-reads its disk, moves its metadata to where the bigger disk keeps it (the end,
// for internal metadata) and grows the replica's bitmaps and the data path; then the replica agrees
// the new size with the peers — each re-reads its own disk when asked (RefreshCapacityAsync) — and
// the Primary resyncs the new area. Without peers the device simply takes the bigger disk. Growing
// only: a smaller disk than the device is refused at attach, and online shrinking is not supported.
internal sealed partial class ResourceManager
{
    private static readonly TimeSpan ResizeAnswerTimeout = TimeSpan.FromSeconds(10);
    /// <summary>How long moving the metadata waits for a moment without an AL transaction in flight (within the answer timeout).</summary>
    private static readonly TimeSpan RelocateTimeout = TimeSpan.FromSeconds(5);

    /// <summary>`resize [--assume-clean]`: grow the volumes to what every node's disk holds now.</summary>
    public Task<ControlResponse> ResizeAsync(string name, int? volume, bool assumeClean, CancellationToken cancellationToken) =>
        WithResource(name, async runtime =>
        {
            try
            {
                foreach (int number in SelectVolumes(runtime, volume))
                {
                    if (await ResizeVolumeAsync(runtime, number, assumeClean, cancellationToken).ConfigureAwait(false) is { } failure)
                    {
                        return failure;
                    }
                }
            }
            catch (IOException e)
            {
                LogDiskError(logger, runtime.Name, $"resize: {e.Message}");
                return ControlResponse.Failure($"{name}: resize failed: {e.Message}", ExitCodes.DiskError);
            }
            Publish(runtime);
            return ControlResponse.Success();
        }, cancellationToken);

    /// <summary>A peer runs `resize`: grow this node's disk too if it holds more now (under the gate, as a command would).</summary>
    private async Task RefreshCapacityAsync(ResourceRuntime runtime, int number)
    {
        await gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (resources.GetValueOrDefault(runtime.Name) != runtime || !runtime.Attached.ContainsKey(number))
            {
                return;
            }
            if (await GrowCapacityAsync(runtime, number, CancellationToken.None).ConfigureAwait(false) is { } error)
            {
                LogResize(logger, runtime.ExportName(number), $"the disk cannot grow: {error}");
            }
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task<ControlResponse?> ResizeVolumeAsync(ResourceRuntime runtime, int number, bool assumeClean, CancellationToken cancellationToken)
    {
        string subject = runtime.ExportName(number);
        if (!runtime.Attached.ContainsKey(number))
        {
            return ControlResponse.Failure($"{subject}: resize needs a local disk (Diskless)", ExitCodes.StateChangeFailed);
        }
        if (await GrowCapacityAsync(runtime, number, cancellationToken).ConfigureAwait(false) is { } error)
        {
            return ControlResponse.Failure($"{subject}: resize failed: {error}", ExitCodes.StateChangeFailed);
        }
        if (runtime.Replication is not { } host)
        {
            long usable = runtime.Attached[number].Store.Layout.UsableSizeBytes;
            if (runtime.State.Volume(number).Metadata!.UsableSizeBytes < usable)
            {
                runtime.State.SetAgreedSize(number, usable);
                await PersistAsync(runtime, cancellationToken).ConfigureAwait(false);
            }
            LogResize(logger, subject, $"device size {usable / 1024} KiB");
            return null;
        }
        var result = host.Locked(replica => replica.Resize(number, assumeClean));
        if (result == StateChangeResult.NoConnection)
        {
            long agreed = host.Locked(replica => replica.Volume(number).AgreedSizeBytes);
            return ControlResponse.Failure($"{subject}: resize needs every peer connected (a node out of reach may hold less); the size stays {agreed / 1024} KiB", ExitCodes.StateChangeFailed);
        }
        if (!result.IsSuccess())
        {
            return Refused(runtime, subject, result);
        }
        var deadline = DateTime.UtcNow + ResizeAnswerTimeout;
        while (host.Locked(replica => replica.ResizePending(number)))
        {
            if (DateTime.UtcNow > deadline)
            {
                return ControlResponse.Failure($"{subject}: the peers did not answer the resize within {ResizeAnswerTimeout.TotalSeconds:0} s", ExitCodes.StateChangeFailed);
            }
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
        LogResize(logger, subject, $"device size {host.Locked(replica => replica.Volume(number).AgreedSizeBytes) / 1024} KiB");
        return null;
    }

    /// <summary>
    /// Re-reads the disk of an attached volume; when it holds more now, moves the metadata and grows
    /// the data path (and the replica's bitmaps). Null on success, grown or not; else why not.
    /// </summary>
    private async Task<string?> GrowCapacityAsync(ResourceRuntime runtime, int number, CancellationToken cancellationToken)
    {
        var attached = runtime.Attached[number];
        var layout = attached.GrownLayout(out string? error);
        if (layout is null)
        {
            return error;
        }
        long before = attached.Store.Layout.UsableSizeBytes;
        if (runtime.Replication is not { } host)
        {
            var bitmaps = new List<QuickSyncBitmap>();
            for (int slot = 0; slot < attached.Store.Layout.PeerSlots; slot++)
            {
                bitmaps.Add((await attached.Store.ReadBitmapAsync(slot, cancellationToken).ConfigureAwait(false)).Resized(layout.UsableSizeBytes));
            }
            await attached.RelocateAsync(layout, runtime.State.Volume(number).Metadata!, bitmaps, cancellationToken).ConfigureAwait(false);
            runtime.DataPaths[number]?.Grow(attached.DataArea);
        }
        else if (await RelocateReplicatedAsync(runtime, host, number, layout, cancellationToken).ConfigureAwait(false) is { } refusal)
        {
            return refusal;
        }
        LogResize(logger, runtime.ExportName(number), $"the disk grew: usable {before / 1024} KiB -> {layout.UsableSizeBytes / 1024} KiB, metadata moved");
        return null;
    }

    /// <summary>
    /// Moves the metadata of a replicated volume under the replica lock, so no bitmap page, AL
    /// transaction or superblock is written meanwhile (DRBD suspends I/O for it too): waits for the
    /// bitmap writer and for the AL transaction in flight, refuses while a resync or verify runs.
    /// </summary>
    private static async Task<string?> RelocateReplicatedAsync(ResourceRuntime runtime, ReplicaHost host, int number, MetadataLayout layout, CancellationToken cancellationToken)
    {
        while (Interlocked.CompareExchange(ref runtime.BitmapWriterBusy, 1, 0) != 0)
        {
            await Task.Delay(5, cancellationToken).ConfigureAwait(false);
        }
        try
        {
            var deadline = DateTime.UtcNow + RelocateTimeout;
            while (DateTime.UtcNow < deadline)
            {
                var (done, refusal) = host.Locked(replica => TryRelocateLocked(runtime, replica, number, layout));
                if (done)
                {
                    return refusal;
                }
                await Task.Delay(5, cancellationToken).ConfigureAwait(false);
            }
            return "the activity log stayed busy with writes; try again";
        }
        finally
        {
            Volatile.Write(ref runtime.BitmapWriterBusy, 0);
        }
    }

    private static (bool Done, string? Refusal) TryRelocateLocked(ResourceRuntime runtime, Replica replica, int number, MetadataLayout layout)
    {
        if (!replica.CanSetCapacity(number))
        {
            return (true, "a resync or online verify is running; resize when it is done");
        }
        var volume = replica.Volume(number);
        if (volume.ActivityLog?.PendingTransaction is not null)
        {
            return (false, null); // its write goes to the old place: let it land first
        }
        var attached = runtime.Attached[number];
        var bitmaps = Enumerable.Range(0, volume.Bitmaps.PeerSlots).Select(slot => volume.Bitmaps.Bitmap(slot).Resized(layout.UsableSizeBytes)).ToList();
        attached.RelocateAsync(layout, runtime.State.Volume(number).Metadata!, bitmaps, CancellationToken.None).GetAwaiter().GetResult();
        replica.SetCapacity(number, layout.UsableSizeBytes);
        runtime.DataPaths[number]?.Grow(attached.DataArea);
        return (true, null);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Subject}: resize: {What}")]
    private static partial void LogResize(ILogger logger, string subject, string what);
}

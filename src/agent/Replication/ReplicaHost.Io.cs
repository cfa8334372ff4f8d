using Microsoft.Extensions.Logging;

namespace Redundancy.Block.Agent.Replication;

// The replica's I/O, done for real. Called with the lock held: nothing here blocks or calls back.
// Disk reads and writes and client completions become effects (run right after the lock is
// released, see ReplicaHost.Effects.cs); flushes and AL transactions go to the thread pool.
public sealed partial class ReplicaHost
{
    public void Send(int peerNodeId, ReadOnlySpan<byte> frame)
    {
        if (connections.TryGetValue(peerNodeId, out var connection))
        {
            connection.SendRaw(frame);
        }
    }

    public void Send(int peerNodeId, ReadOnlySpan<byte> head, ReadOnlySpan<byte> payload)
    {
        if (connections.TryGetValue(peerNodeId, out var connection))
        {
            connection.SendRaw(head, payload);
        }
    }

    public void CloseTransport(int peerNodeId, string reason)
    {
        if (connections.Remove(peerNodeId, out var connection))
        {
            connection.Close(reason);
        }
    }

    public void Dial(int peerNodeId)
    {
        var settings = Replica.Links[peerNodeId].Settings; // under the lock (the replica asks); adjust may have changed them
        string name = $"{settings.ResourceName} {settings.PeerNodeName}";
        _ = Task.Run(async () =>
        {
            var result = await dialer.DialAsync(peerAddresses[peerNodeId], name, TimeSpan.FromMilliseconds(settings.TimeoutMs), stopping.Token).ConfigureAwait(false);
            if (result.Connection is { } connection)
            {
                Dialled(peerNodeId, connection);
            }
        });
    }

    public void WriteLocal(int volume, long offsetBytes, ReadOnlyMemory<byte> data, bool fua, long token) =>
        Effect(() => LocalOperation(token, () => disks[volume].WriteAsync(offsetBytes, data, fua)));

    /// <summary>Reads into a rented buffer, given back once the replica has used the data (it copies what it keeps).</summary>
    public void ReadLocal(int volume, long offsetBytes, int lengthBytes, long token) => Effect(() =>
    {
        var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(lengthBytes);
        var buffer = rented.AsMemory(0, lengthBytes);
        ValueTask reading;
        try
        {
            reading = disks[volume].ReadAsync(offsetBytes, buffer);
        }
        catch (IOException e)
        {
            reading = ValueTask.FromException(e);
        }
        if (reading.IsCompletedSuccessfully)
        {
            reading.GetAwaiter().GetResult(); // consumed: a pooled source recycles in GetResult
            lock (gate)
            {
                Replica.LocalReadDone(token, true, buffer);
            }
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            return;
        }
        _ = Task.Run(async () =>
        {
            bool ok = await Succeeds(() => reading).ConfigureAwait(false);
            Enter(() => Replica.LocalReadDone(token, ok, buffer));
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        });
    });

    public void ZeroLocal(int volume, long offsetBytes, long lengthBytes, bool trim, long token) =>
        Effect(() => LocalOperation(token, () => trim ? disks[volume].DiscardAsync(offsetBytes, lengthBytes) : disks[volume].WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap: false)));

    public void FlushLocal(long token) => Background(token, async () =>
    {
        foreach (var disk in disks.Values)
        {
            await disk.FlushAsync().ConfigureAwait(false);
        }
    });

    public void CompleteClient(long clientToken, bool succeeded)
    {
        if (clients.Remove(clientToken, out var completion))
        {
            Effect(() => completion.TrySetResult(succeeded)); // outside the lock: the continuation runs inline
        }
    }

    public void CompleteClientRead(long clientToken, bool succeeded, ReadOnlyMemory<byte> data)
    {
        if (reads.Remove(clientToken, out var read))
        {
            if (succeeded)
            {
                data.Span.CopyTo(read.Buffer.Span); // under the lock: the replica's buffer is only valid now
            }
            Effect(() => read.Completion.TrySetResult(succeeded)); // outside the lock: the continuation runs inline
        }
    }

    public void PersistVolume(int volume) => resource.PersistVolume(Replica.Volume(volume), Replica.ConnectedPeers);

    public bool RunHandler(string handler, int peerNodeId, int volume, long token)
    {
        // What the kernel adds for its helpers: the connection's state and who has UpToDate data
        // (crm-fence-peer.9.sh reads both).
        var state = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["UP_TO_DATE_NODES"] = $"0x{Replica.UpToDateNodes(volume):X8}",
        };
        if (Replica.Links.TryGetValue(peerNodeId, out var link))
        {
            state["DRBD_CSTATE"] = link.State.ToString();
        }
        var running = resource.StartHandler(handler, peerNodeId, volume, state);
        if (running is null)
        {
            return false;
        }
        if (token != 0)
        {
            // Under the lock (the replica asks from inside it), so the continuation, which takes the
            // lock, cannot remove the entry before it is made.
            handlersRunning[token] = running.ContinueWith(done => Enter(() =>
            {
                handlersRunning.Remove(token);
                Replica.HandlerDone(token, done.IsCompletedSuccessfully ? done.Result : -1);
            }), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
        return true;
    }

    /// <summary>Completes once the replica has taken the exit code of the handler started with <paramref name="token"/>.</summary>
    public Task HandlerSettledAsync(long token)
    {
        lock (gate)
        {
            return handlersRunning.GetValueOrDefault(token) ?? Task.CompletedTask;
        }
    }

    public bool TryBecomeSecondary() => resource.TryBecomeSecondary();

    public void PromotionAnswered(long token)
    {
        if (promotionWaiters.Remove(token, out var waiter))
        {
            Effect(() => waiter.TrySetResult()); // outside the lock: the waiting command takes it again
        }
    }

    /// <summary>
    /// Completes when the replica next has news about promotion request <paramref name="token"/>.
    /// Call under the lock (from <see cref="Locked(Action{Engine.Replication.Replica})"/>), after
    /// reading the request's answer there, so no news is missed in between.
    /// </summary>
    public Task PromotionNewsUnderLock(long token)
    {
        if (!promotionWaiters.TryGetValue(token, out var waiter))
        {
            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            promotionWaiters[token] = waiter;
        }
        return waiter.Task;
    }

    public void RefreshCapacity(int volume)
    {
        _ = Task.Run(async () =>
        {
            try
            {
                await resource.RefreshCapacityAsync(volume).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                LogDiskError(logger, $"resize: {e.Message}");
            }
            lock (gate)
            {
                Replica.CapacityRefreshed(volume);
            }
        });
    }

    public void WriteActivityLog(int volume, Engine.Metadata.ActivityLogTransaction transaction, IReadOnlyList<uint> evictedExtents, long token)
    {
        var bitmaps = Replica.Volume(volume).Bitmaps;
        var pages = evictedExtents.Count == 0 ? [] : bitmaps.Images(bitmaps.TakeDirtyPagesForExtents(evictedExtents));
        Background(token, () => new ValueTask(resource.WriteMetadataAsync(volume, pages, transaction)));
    }

    void Engine.Replication.IReplicaIo.Log(string line) => LogLine(logger, line);

    private void Dialled(int peer, Peers.PeerConnection connection)
    {
        lock (gate)
        {
            if (stopping.IsCancellationRequested || connections.ContainsKey(peer))
            {
                connection.Close("already connected");
                return;
            }
            connections[peer] = connection;
            Replica.TransportConnected(peer, NowMs);
        }
        RunEffects();
        connection.Start((in Engine.Peers.Protocol.FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => OnFrame(peer, connection, h, p),
            reason => OnClosed(peer, connection, reason));
    }

    private void Background(long token, Func<ValueTask> operation)
    {
        _ = Task.Run(async () =>
        {
            bool ok = await Succeeds(operation).ConfigureAwait(false);
            Enter(() => Replica.LocalDone(token, ok));
        });
    }

    private async Task<bool> Succeeds(Func<ValueTask> operation)
    {
        try
        {
            await operation().ConfigureAwait(false);
            return true;
        }
        catch (IOException e)
        {
            LogDiskError(logger, e.Message);
            return false;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Line}")]
    private static partial void LogLine(ILogger logger, string line);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Pending} local disk operations still pending after {TimeoutMs} ms; detaching anyway")]
    private static partial void LogDrainTimeout(ILogger logger, int pending, int timeoutMs);

    [LoggerMessage(Level = LogLevel.Error, Message = "local disk I/O error: {Reason}")]
    private static partial void LogDiskError(ILogger logger, string reason);
}

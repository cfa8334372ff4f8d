using Microsoft.Extensions.Logging;

namespace Redundancy.Block.Agent.Replication;

// The replica's I/O, done for real. Called with the lock held: nothing here blocks or calls back;
// completions are posted to the thread pool and re-enter through the lock.
public sealed partial class ReplicaHost
{
    public void Send(int peerNodeId, byte[] frame)
    {
        if (connections.TryGetValue(peerNodeId, out var connection))
        {
            connection.SendRaw(frame);
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
        var settings = peers[peerNodeId];
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
        Background(token, () => disks[volume].WriteAsync(offsetBytes, data, fua));

    public void ReadLocal(int volume, long offsetBytes, int lengthBytes, long token)
    {
        _ = Task.Run(async () =>
        {
            var buffer = new byte[lengthBytes];
            bool ok = await Succeeds(() => disks[volume].ReadAsync(offsetBytes, buffer)).ConfigureAwait(false);
            lock (gate)
            {
                Replica.LocalReadDone(token, ok, buffer);
            }
        });
    }

    public void ZeroLocal(int volume, long offsetBytes, long lengthBytes, bool trim, long token) =>
        Background(token, () => trim ? disks[volume].DiscardAsync(offsetBytes, lengthBytes) : disks[volume].WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap: false));

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
            completion.TrySetResult(succeeded); // continuations run asynchronously, outside the lock
        }
    }

    public void CompleteClientRead(long clientToken, bool succeeded, ReadOnlyMemory<byte> data)
    {
        if (reads.Remove(clientToken, out var read))
        {
            if (succeeded)
            {
                data.Span.CopyTo(read.Buffer.Span);
            }
            read.Completion.TrySetResult(succeeded); // continuations run asynchronously, outside the lock
        }
    }

    public void PersistVolume(int volume) => persistVolume(Replica.Volume(volume));

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
        connection.Start((in Engine.Peers.Protocol.FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => OnFrame(peer, connection, h, p),
            reason => OnClosed(peer, connection, reason));
    }

    private void Background(long token, Func<ValueTask> operation)
    {
        _ = Task.Run(async () =>
        {
            bool ok = await Succeeds(operation).ConfigureAwait(false);
            lock (gate)
            {
                Replica.LocalDone(token, ok);
            }
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

    [LoggerMessage(Level = LogLevel.Error, Message = "local disk I/O error: {Reason}")]
    private static partial void LogDiskError(ILogger logger, string reason);
}

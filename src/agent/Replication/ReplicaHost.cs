using System.Buffers;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Agent.Replication;

/// <summary>
/// Runs one resource's <see cref="Replica"/> for real: peer connections over TCP (dialled by the
/// lower node-id, accepted through the shared listener), local disk I/O on the thread pool, a
/// 100 ms tick for the link timers. Every call into the replica happens under one lock, and every
/// completion comes back on another thread, so the replica is never re-entered.
/// </summary>
public sealed partial class ReplicaHost : IReplicaIo, IAsyncDisposable
{
    private static readonly TimeSpan TickInterval = TimeSpan.FromMilliseconds(100);
    private const int DrainTimeoutMs = 10_000;
    private readonly Lock gate = new();
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly Dictionary<int, PeerConnection> connections = [];
    private readonly Dictionary<int, PeerLinkSettings> peers;
    private readonly Dictionary<int, string> peerAddresses;
    private readonly IReadOnlyDictionary<int, IBlockDevice> disks;
    private readonly Dictionary<long, TaskCompletionSource<bool>> clients = [];
    private readonly Dictionary<long, (TaskCompletionSource<bool> Completion, Memory<byte> Buffer)> reads = [];
    private readonly Dictionary<long, Task> handlersRunning = [];
    private readonly Dictionary<long, TaskCompletionSource> promotionWaiters = [];
    private readonly PeerListener listener;
    private readonly PeerDialer dialer;
    private readonly ILogger logger;
    private readonly IReplicaResource resource;
    private readonly CancellationTokenSource stopping = new();
    private readonly Task ticker;
    private long nextClientToken = 1;

    /// <param name="peers">One settings record per peer, with the peer's replication address.</param>
    /// <param name="volumes">The replica's volumes (their state as read from the metadata).</param>
    /// <param name="disks">The data area of each volume.</param>
    /// <param name="listener">The listener on this node's replication address (shared, already started).</param>
    /// <param name="dialer">Opens connections to peers this node dials (the lower node-id dials).</param>
    /// <param name="random">Randomness for UUIDs and challenges.</param>
    /// <param name="logger">Where the replica's DRBD-style log lines go.</param>
    /// <param name="resource">The resource replicated: persistence, handlers, demotion, tick.</param>
    public ReplicaHost(IEnumerable<(PeerLinkSettings Settings, string Address)> peers, IEnumerable<ReplicaVolume> volumes,
        IReadOnlyDictionary<int, IBlockDevice> disks, PeerListener listener, PeerDialer dialer, IReplicaResource resource,
        IRandom random, ILogger logger)
    {
        var peerList = peers.ToList();
        this.peers = peerList.ToDictionary(p => p.Settings.PeerNodeId, p => p.Settings);
        peerAddresses = peerList.ToDictionary(p => p.Settings.PeerNodeId, p => p.Address);
        this.disks = disks;
        this.listener = listener;
        this.dialer = dialer;
        this.logger = logger;
        this.resource = resource;
        Replica = new Replica(peerList.Select(p => p.Settings), volumes, this, random);
        foreach (var settings in this.peers.Values)
        {
            listener.Register(settings.ResourceName, settings.PeerNodeId, (connection, frames) => Accepted(settings.PeerNodeId, connection, frames));
        }
        ticker = TickAsync(stopping.Token);
    }

    /// <summary>The replica; touch it only through <see cref="Locked{T}"/>.</summary>
    private Replica Replica { get; }

    /// <summary>The replica's clock (milliseconds since the host started).</summary>
    public long NowMs => clock.ElapsedMilliseconds;

    /// <summary>Runs <paramref name="read"/> on the replica under its lock (status, tests).</summary>
    public T Locked<T>(Func<Replica, T> read) => Enter(() => read(Replica));

    /// <summary>Runs <paramref name="change"/> on the replica under its lock (the resource's state changes).</summary>
    public void Locked(Action<Replica> change) => Enter(() => change(Replica));

    public void SetRole(Role role) => Enter(() => Replica.SetRole(role));

    public void Connect() => Enter(() => Replica.Connect(NowMs));

    public void Disconnect(int peerNodeId) => Enter(() => Replica.Disconnect(peerNodeId));

    /// <summary>A client write; true when the protocol's guarantee holds.</summary>
    public Task<bool> WriteAsync(int volume, long offsetBytes, ReadOnlyMemory<byte> data, bool fua) =>
        Client(token => Replica.ClientWrite(token, volume, offsetBytes, data, fua));

    public Task<bool> ZeroAsync(int volume, long offsetBytes, long lengthBytes, bool trim) =>
        Client(token => Replica.ClientZero(token, volume, offsetBytes, lengthBytes, trim));

    public Task<bool> FlushAsync() => Client(Replica.ClientFlush);

    /// <summary>A client read through the replica (the local disk if UpToDate, else a peer's); true when <paramref name="buffer"/> is filled.</summary>
    public Task<bool> ReadAsync(int volume, long offsetBytes, Memory<byte> buffer)
    {
        // As for writes: the data is copied into the buffer under the lock, the completion is an effect.
        var completion = new TaskCompletionSource<bool>();
        Enter(() =>
        {
            long token = nextClientToken++;
            reads[token] = (completion, buffer);
            Replica.ClientRead(token, volume, offsetBytes, buffer.Length);
        });
        return completion.Task;
    }

    /// <summary>
    /// Without the lock: whether the local disk of <paramref name="volume"/> is UpToDate, so a read may
    /// go to it directly; <paramref name="stamp"/> is for <see cref="LocalReadStillValid"/>.
    /// </summary>
    public bool TryBeginLocalRead(int volume, out int stamp)
    {
        var state = Replica.Volume(volume); // the volumes map never changes; Disk and DiskChanges are volatile
        stamp = state.DiskChanges;
        return state.Disk == DiskState.UpToDate;
    }

    /// <summary>True when the disk state did not move since <see cref="TryBeginLocalRead"/>: the local data read in between is good.</summary>
    public bool LocalReadStillValid(int volume, int stamp) => Replica.Volume(volume).DiskChanges == stamp;

    private Task<bool> Client(Action<long> start)
    {
        // Completed by an effect, outside the lock: the client's continuation (the NBD reply) runs
        // inline on the thread that drains, without another hop.
        var completion = new TaskCompletionSource<bool>();
        Enter(() =>
        {
            long token = nextClientToken++;
            clients[token] = completion;
            start(token);
        });
        return completion.Task;
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        await ticker.ConfigureAwait(false);
        List<PeerConnection> open;
        lock (gate)
        {
            foreach (var settings in peers.Values)
            {
                listener.Unregister(settings.ResourceName, settings.PeerNodeId);
            }
            open = [.. connections.Values];
            connections.Clear();
        }
        foreach (var connection in open)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        // Writes from the peer already received (and the flushes and releases that follow them) must
        // reach the disk before it is detached: under protocol A the peer counted them as done.
        for (int waitedMs = 0; Locked(r => r.PendingLocalIo) is int pending && pending > 0; waitedMs += 10)
        {
            if (waitedMs >= DrainTimeoutMs)
            {
                LogDrainTimeout(logger, pending, DrainTimeoutMs);
                break;
            }
            await Task.Delay(10).ConfigureAwait(false);
        }
        stopping.Dispose();
    }

    private async Task TickAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TickInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
            {
                Enter(() => Replica.Tick(NowMs));
                resource.Tick();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private void Accepted(int peer, PeerConnection connection, IReadOnlyList<(FrameHeader Header, byte[] Payload)> frames)
    {
        bool refused;
        lock (gate)
        {
            if (connections.ContainsKey(peer))
            {
                connection.Close("already connected");
                return;
            }
            connections[peer] = connection;
            Replica.TransportConnected(peer, NowMs);
            // The replica may refuse it (the last connection's writes are still landing): it closed it.
            refused = !connections.TryGetValue(peer, out var kept) || !ReferenceEquals(kept, connection);
            if (!refused)
            {
                foreach (var (header, payload) in frames)
                {
                    Replica.Receive(peer, header, new ReadOnlySequence<byte>(payload), NowMs);
                }
                RaiseFrameLimit(peer, connection);
            }
        }
        RunEffects();
        if (refused)
        {
            return;
        }
        connection.Start((in FrameHeader h, in ReadOnlySequence<byte> p) => OnFrame(peer, connection, h, p), reason => OnClosed(peer, connection, reason));
    }

    private void OnFrame(int peer, PeerConnection connection, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        List<Action>? effectsToRun;
        lock (gate)
        {
            if (connections.TryGetValue(peer, out var current) && ReferenceEquals(current, connection))
            {
                Replica.Receive(peer, header, payload, NowMs);
                RaiseFrameLimit(peer, connection);
            }
            effectsToRun = TakeEffects();
        }
        RunEffects(effectsToRun);
    }

    private void OnClosed(int peer, PeerConnection connection, PeerCloseReason reason)
    {
        lock (gate)
        {
            if (connections.TryGetValue(peer, out var current) && ReferenceEquals(current, connection))
            {
                connections.Remove(peer);
                Replica.TransportClosed(peer, reason.Message, NowMs);
            }
        }
        RunEffects();
        _ = connection.DisposeAsync().AsTask();
    }

    /// <summary>After the features exchange the link allows bigger frames; the transport must too.</summary>
    private void RaiseFrameLimit(int peer, PeerConnection connection)
    {
        int allowed = Replica.Links[peer].MaxFramePayloadBytes;
        if (allowed > connection.MaxPayloadBytes)
        {
            connection.SetMaxPayloadBytes(allowed);
        }
    }
}

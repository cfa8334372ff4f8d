using System.Buffers;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// One resource's replication on this node: the peer links, the Primary's write tracking (protocol
/// A/B/C, epochs, transfer log), each connection's receiver on a Secondary, and the quick-sync
/// bitmaps that record what a disconnected peer misses. Pure: all I/O goes through
/// <see cref="IReplicaIo"/> and comes back through <see cref="LocalDone"/>, <see cref="Receive"/>
/// and the transport events. Not thread-safe: the host serialises every call.
/// </summary>
public sealed partial class Replica : IPeerLinkHost
{
    private readonly IReplicaIo io;
    private readonly IRandom random;
    private readonly Dictionary<int, PeerLink> links = [];
    private readonly Dictionary<int, PeerWriteReceiver> receivers = [];
    private readonly HashSet<int> connected = [];
    private readonly HashSet<int> discardMyData = [];
    private readonly Dictionary<int, ReplicaVolume> volumes;
    private readonly Dictionary<(int Peer, int Volume), ReplicationState> replication = [];
    private readonly Dictionary<long, PendingIo> pendingIo = [];
    /// <summary>The time of the last Tick or Receive: for what is timed but not driven by the clock (resync totals).</summary>
    private long clockMs;
    private readonly Dictionary<ulong, long> clientOfRequest = [];
    private readonly WriteTracker writes;
    private long nextToken = 1;
    private ulong nextSequence = 1;

    public Replica(IEnumerable<PeerLinkSettings> peers, IEnumerable<ReplicaVolume> replicaVolumes, IReplicaIo io, IRandom random)
    {
        this.io = io;
        this.random = random;
        volumes = replicaVolumes.ToDictionary(v => v.Number);
        var protocol = ReplicationProtocol.C;
        foreach (var settings in peers)
        {
            links[settings.PeerNodeId] = new PeerLink(settings, this, random);
            protocol = settings.Protocol.Protocol;
        }
        writes = new WriteTracker(protocol);
        Invariant.Assert(volumes.Count > 0, "a replica has at least one volume");
        Invariant.Assert(volumes.Values.All(v => links.Keys.All(v.SlotOfPeer.ContainsKey)), "every peer has a bitmap slot in every volume");
    }

    /// <summary>The replication protocol new requests are sent under (adjust or the peer's ProtocolUpdate may change it, see Replica.Adjust.cs).</summary>
    public ReplicationProtocol Protocol => writes.Protocol;

    public Role Role { get; private set; } = Role.Secondary;

    public IReadOnlyDictionary<int, PeerLink> Links => links;

    public ReplicaVolume Volume(int number) => volumes[number];

    /// <summary>
    /// DRBD's UP_TO_DATE_NODES for a handler: a mask of the node ids (this one and connected peers)
    /// whose copy of <paramref name="volume"/> is UpToDate, or of every volume for -1 (a resource's handler).
    /// </summary>
    public ulong UpToDateNodes(int volume)
    {
        var numbers = volume >= 0 ? [volume] : volumes.Keys.ToList();
        ulong mask = 0;
        if (numbers.All(v => volumes[v].Disk == DiskState.UpToDate))
        {
            mask |= 1UL << links.Values.First().Settings.LocalNodeId;
        }
        foreach (var (peer, link) in links.Where(l => l.Value.State == ConnectionState.Connected))
        {
            if (numbers.All(v => link.PeerDisks.GetValueOrDefault(v) == DiskState.UpToDate))
            {
                mask |= 1UL << peer;
            }
        }
        return mask;
    }

    public ReplicationState ReplicationOf(int peerNodeId, int volume) =>
        replication.TryGetValue((peerNodeId, volume), out var state) ? state : ReplicationState.Off;

    /// <summary>Local disk operations started and not yet reported done (a host drains them before detaching).</summary>
    public int PendingLocalIo => pendingIo.Count;

    /// <summary>Client requests accepted and not yet completed.</summary>
    public int PendingClientRequests => clientOfRequest.Count;

    public IReadOnlyList<LocalVolumeView> VolumesFor(int peerNodeId) => [.. volumes.Values.OrderBy(v => v.Number).Select(v =>
    {
        int slot = v.SlotOfPeer[peerNodeId];
        var uuids = UuidSet.FromGenerationIds(v.Ids, slot);
        if (v.Disk == DiskState.Diskless && v.ExposedDataUuid != 0)
        {
            uuids = uuids.WithCurrent(v.ExposedDataUuid); // a diskless Primary tells the generation it serves, as DRBD 9
        }
        return new LocalVolumeView(v.Number, uuids, v.Flags, v.Disk,
            v.Bitmaps.Bitmap(slot).SetBitCount, v.UsableSizeBytes, DiscardMyData: discardMyData.Contains(peerNodeId),
            AgreedSizeBytes: v.AgreedSizeBytes, SizeLimitBytes: OtherPeersLimit(peerNodeId, v), MissedWrites: v.MissedWritesGeneration != 0);
    })];

    /// <summary>`connect --discard-my-data`: the next handshake with the peer resolves a split brain against this node.</summary>
    public void SetDiscardMyData(int peerNodeId, bool discard)
    {
        if (discard)
        {
            discardMyData.Add(peerNodeId);
        }
        else
        {
            discardMyData.Remove(peerNodeId);
        }
    }

    public void Connect(long nowMs)
    {
        foreach (var (peer, link) in links)
        {
            link.Connect(nowMs);
            Drain(peer);
        }
    }

    public void Disconnect(int peerNodeId)
    {
        links[peerNodeId].Disconnect();
        Drain(peerNodeId);
    }

    public void TransportConnected(int peerNodeId, long nowMs)
    {
        if (EndedConnectionDraining(peerNodeId))
        {
            // As DRBD's conn_disconnect: no new connection before the last one's writes are done.
            io.Log($"{Subject(peerNodeId)}: the last connection's writes are not on the disk yet: the new connection is refused");
            io.CloseTransport(peerNodeId, "the last connection's writes are still being written");
            return;
        }
        links[peerNodeId].TransportConnected(nowMs);
        Drain(peerNodeId);
    }

    public void TransportClosed(int peerNodeId, string reason, long nowMs)
    {
        links[peerNodeId].TransportClosed(reason, nowMs);
        Drain(peerNodeId);
    }

    public void Tick(long nowMs)
    {
        clockMs = nowMs;
        foreach (var (peer, link) in links)
        {
            link.Tick(nowMs);
            Drain(peer);
        }
        ResyncTurns(nowMs);
        VerifyTurns(nowMs);
        KoCountCheck(nowMs);
        CongestionTurns(nowMs);
        PromotionTurn(nowMs);
    }

    /// <summary>A frame from the peer: the data path's own messages here, the rest to the link.</summary>
    public void Receive(int peerNodeId, in FrameHeader header, in ReadOnlySequence<byte> payload, long nowMs)
    {
        clockMs = nowMs;
        var link = links[peerNodeId];
        if (connected.Contains(peerNodeId) && IsDataPath(header.Type))
        {
            link.Heard(nowMs);
            ReceiveDataPath(peerNodeId, header, payload);
        }
        else if (connected.Contains(peerNodeId) && IsResync(header.Type))
        {
            link.Heard(nowMs);
            ReceiveResync(peerNodeId, header, payload);
        }
        else if (connected.Contains(peerNodeId) && IsVerify(header.Type))
        {
            link.Heard(nowMs);
            ReceiveVerify(peerNodeId, header, payload);
        }
        else if (connected.Contains(peerNodeId) && IsStateChange(header.Type))
        {
            link.Heard(nowMs);
            ReceiveStateChange(peerNodeId, header, payload);
        }
        else if (connected.Contains(peerNodeId) && header.Type == MessageType.Sizes)
        {
            link.Heard(nowMs);
            ReceiveSizes(peerNodeId, header, payload);
        }
        else
        {
            link.Receive(header, payload, nowMs);
            if (header.Type == MessageType.Uuids && connected.Contains(peerNodeId) && link.State == ConnectionState.Connected)
            {
                AcceptSkipInitialSync(peerNodeId, header.Volume, payload);
            }
            if (header.Type == MessageType.State && connected.Contains(peerNodeId) && link.State == ConnectionState.Connected)
            {
                PeerDiskReported(peerNodeId, header.Volume);
                OnPeerReplicationState(peerNodeId, header.Volume, payload);
                OnPeerState(peerNodeId, header.Volume);
                PromotionPeerState(peerNodeId);
            }
        }
        Drain(peerNodeId);
    }

    private static bool IsDataPath(MessageType type) =>
        type is MessageType.Data or MessageType.Ack or MessageType.Barrier or MessageType.BarrierAck or MessageType.OutOfSync
            or MessageType.DataRequest or MessageType.DataReply or MessageType.NegDReply;

    /// <summary>Carries out what a link asked for and notices when its connection came or went.</summary>
    private void Drain(int peerNodeId)
    {
        var link = links[peerNodeId];
        var output = link.TakeOutput();
        foreach (var frame in output.Frames)
        {
            io.Send(peerNodeId, frame);
        }
        foreach (string line in output.Log)
        {
            io.Log(line);
        }
        foreach (var transition in output.Transitions)
        {
            io.Log(transition.ToString());
        }
        if (output.CloseReason is { } reason)
        {
            io.CloseTransport(peerNodeId, reason);
        }
        if (output.Dial)
        {
            io.Dial(peerNodeId);
        }
        if (output.HandlerCalls.Count > 0)
        {
            RunHandshakeHandlers(peerNodeId, output.HandlerCalls);
        }
        if (output.ProtocolUpdated)
        {
            SwitchProtocol(link.Settings.Protocol.Protocol, "the peer's adjust");
        }
        if (output.Decisions is { } decisions)
        {
            OnConnected(peerNodeId, decisions);
        }
        foreach (var decision in output.Renegotiated.Where(_ => connected.Contains(peerNodeId) && link.State == ConnectionState.Connected))
        {
            Renegotiated(peerNodeId, decision);
        }
        if (connected.Contains(peerNodeId) && link.State != ConnectionState.Connected)
        {
            OnConnectionLost(peerNodeId, output.GracefulDisconnectPeerRole);
        }
        PromotionLinkChanged(peerNodeId);
        CompleteRequests();
        TrackExposedData();
        ReleasePrimaryIndicator();
    }

    private void OnConnected(int peerNodeId, IReadOnlyList<VolumeDecision> decisions)
    {
        if (decisions.FirstOrDefault(d => d.Outcome.Demote) is { } lost && Role == Role.Primary && !io.TryBecomeSecondary())
        {
            SplitBrainLostWithoutDemotion(peerNodeId, lost.Volume);
            return;
        }
        connected.Add(peerNodeId);
        discardMyData.Remove(peerNodeId); // DRBD's flag is for one handshake
        receivers[peerNodeId] = new PeerWriteReceiver(links[peerNodeId].Settings.DiskFlushes);
        // Application writes go to a connected peer whatever the resync direction, as DRBD's do.
        writes.AddPeer(peerNodeId, links[peerNodeId].Settings.SendBoundBytes);
        // Sizes first, as DRBD handles P_SIZES before P_UUIDS: the resync covers the agreed size.
        var grown = decisions.Where(d => AdoptHandshakeSize(peerNodeId, d)).Select(d => d.Volume).ToHashSet();
        foreach (var decision in decisions)
        {
            if (decision.Outcome.Demote)
            {
                DemoteAfterSplitBrain(peerNodeId, decision.Volume);
            }
            BeginSync(peerNodeId, decision, grown.Contains(decision.Volume));
        }
        TrackPeersWithoutDisk();
        PersistConnectedIndicator();
        // Last: requests fencing held back go out now, to this peer too.
        FencingOnConnected(peerNodeId);
    }

    /// <summary>Peers whose connection is established (handshake done); persisted as MDF_PEER_CONNECTED.</summary>
    public IReadOnlyCollection<int> ConnectedPeers => connected;

    /// <summary>
    /// The metadata records which peers are connected (DRBD's MDF_CONNECTED_IND), so that a Primary
    /// that goes down without a peer comes back waiting degr-wfc-timeout, not wfc-timeout.
    /// </summary>
    private void PersistConnectedIndicator()
    {
        foreach (var volume in volumes.Values.Where(v => v.HasLocalData))
        {
            io.PersistVolume(volume.Number);
        }
    }

    /// <summary>
    /// The connection is gone: whatever the peer may lack goes into its bitmap, and a Primary starts
    /// a new data generation so the next handshake knows who moved on — unless fencing holds that
    /// back (Replica.Fencing.cs). <paramref name="gracefulPeerRole"/>: the peer's role when a
    /// `disconnect` ended it, null for a failure.
    /// </summary>
    private void OnConnectionLost(int peerNodeId, Role? gracefulPeerRole)
    {
        StopVerifies(peerNodeId);
        ForgetCongestion(peerNodeId);
        connected.Remove(peerNodeId);
        EndReceiver(peerNodeId);
        invalidateRequested.RemoveWhere(k => k.Peer == peerNodeId);
        foreach (var volume in volumes.Values)
        {
            replication[(peerNodeId, volume.Number)] = ReplicationState.Off;
            abortedSyncs.Remove((peerNodeId, volume.Number));
            if (syncs.Remove((peerNodeId, volume.Number), out var sync))
            {
                // Cleared bits stay cleared: the next connection resumes the resync, it does not restart it.
                sync.Planner?.Interrupt();
            }
        }
        ForgetPeerSizes(peerNodeId);
        deferredReads.RemoveAll(r => r.Peer == peerNodeId);
        // Writes waiting here for a resync write or a conflicting client request are dropped (the resync covers them).
        AbandonPeerWrites(deferredPeerWrites, peerNodeId);
        AbandonPeerWrites(conflictingPeerWrites, peerNodeId);
        AbandonSupersededPeerWrites(peerNodeId);
        // Writes the peer may not have: unacknowledged ones, and those sent under protocol A or B
        // (sent, or only received) that its transfer log still holds.
        bool lostUnacked = writes.PeerMayLackWrites(peerNodeId);
        writes.PeerLost(peerNodeId);
        RedispatchRemoteReads(peerNodeId);
        NegotiationLost();
        bool deferGeneration = FencingOnConnectionLost(peerNodeId, gracefulPeerRole, lostUnacked);
        if (Role == Role.Primary && !deferGeneration)
        {
            // Only an UpToDate disk moves the data on; a SyncTarget's or a reattached disk's is behind.
            foreach (var volume in volumes.Values.Where(v => v.Disk == DiskState.UpToDate))
            {
                StartNewGeneration(volume);
            }
        }
        PersistConnectedIndicator();
        RetryDeferredClientWrites();
    }

    /// <summary>
    /// drbd_uuid_new_current: the old current UUID becomes the bitmap UUID of every disconnected peer's
    /// slot, and of every peer this Primary is Ahead of (DRBD's weak nodes: they miss the writes too).
    /// </summary>
    private void StartNewGeneration(ReplicaVolume volume)
    {
        Span<bool> disconnected = stackalloc bool[volume.Ids.Bitmap.Length];
        foreach (var (peer, slot) in volume.SlotOfPeer)
        {
            disconnected[slot] = !connected.Contains(peer) || ReplicationOf(peer, volume.Number) == ReplicationState.Ahead;
        }
        volume.Ids = volume.Ids.NewCurrentUuid(random.NextUInt64(), Role == Role.Primary, disconnected);
        io.PersistVolume(volume.Number);
    }

    private long NewToken(PendingIo pending)
    {
        long token = nextToken++;
        pendingIo[token] = pending;
        return token;
    }

    private static byte[] Frame<T>(ushort volume, in T message, ReadOnlySpan<byte> trailing = default) where T : struct, IPeerMessage<T>
    {
        var frame = new byte[FrameWriter.FrameLength(message) + trailing.Length];
        int written = FrameWriter.Write(frame, volume, message, trailing.Length);
        trailing.CopyTo(frame.AsSpan(written));
        return frame;
    }

    /// <summary>What a local I/O token stands for.</summary>
    private abstract record PendingIo;

    /// <summary>The local part of a client request; <see cref="Admissions"/> are the resync planners' tokens on a SyncTarget.</summary>
    private sealed record ClientIo(ulong RequestId, int Volume, long OffsetBytes, long LengthBytes, ReplicatedRequestKind Kind, ReadOnlyMemory<byte> Data, bool Fua) : PendingIo
    {
        public List<(ResyncPlanner Planner, long Token)> Admissions { get; } = [];
    }

    /// <summary>A write from the peer; <paramref name="Admission"/> is the resync planner's token on a SyncTarget.</summary>
    private sealed record PeerWriteIo(int Peer, PeerWriteReceiver Receiver, ulong RequestId, ResyncPlanner? Planner = null, long Admission = 0, PooledBlock? Block = null,
        int Volume = 0, long OffsetBytes = 0, long LengthBytes = 0) : PendingIo;

    private sealed record PeerFlushIo(int Peer, PeerWriteReceiver Receiver) : PendingIo;
}

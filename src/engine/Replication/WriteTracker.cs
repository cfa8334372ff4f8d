using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

/// <summary>A replicated request as the Primary tracks it.</summary>
public enum ReplicatedRequestKind
{
    Write,
    Trim,
    Zeroes,
    /// <summary>FLUSH: durable locally and on every peer it is sent to (protocol C semantics).</summary>
    Flush,
}

/// <summary>Where a request's local write stands.</summary>
public enum LocalWriteState
{
    /// <summary>The request has no local part: the node was Diskless when it started.</summary>
    None,
    Pending,
    Succeeded,
    Failed,
}

/// <summary>What the host must do to start a request: the id, the epoch and the peers to send it to.</summary>
/// <param name="RequestId">Unique per tracker; acks and completions name it.</param>
/// <param name="Epoch">The epoch the request belongs to (DRBD's transfer-log epoch).</param>
/// <param name="SendTo">Peers (node-ids) that get the request, in this order.</param>
/// <param name="BarrierBefore">When set, send Barrier(this epoch number) to every peer in <paramref name="SendTo"/> first.</param>
public readonly record struct TrackedRequest(ulong RequestId, uint Epoch, IReadOnlyList<int> SendTo, uint? BarrierBefore);

/// <summary>A range a peer may have missed: it goes into that peer's bitmap slot.</summary>
public readonly record struct OutOfSyncRange(int PeerNodeId, int Volume, long OffsetBytes, long LengthBytes);

/// <summary>A request whose protocol guarantee now holds (or that failed): reply to the client.</summary>
/// <param name="RequestId">The request's id (<see cref="TrackedRequest.RequestId"/>).</param>
/// <param name="Succeeded">The local disk or a peer has the data.</param>
/// <param name="Postponed">
/// Dual-primary: the peer answered RetryWrite (its concurrent write to the same blocks wins this
/// round), so the client is not answered yet: the host issues the request again after the peer's
/// write (DRBD's RQ_POSTPONED and drbd_restart_request).
/// </param>
public readonly record struct CompletedRequest(ulong RequestId, bool Succeeded, bool Postponed = false);

/// <summary>
/// The Primary's bookkeeping of replicated requests, after DRBD's request states and transfer log:
/// <list type="bullet">
/// <item>a request completes when the local disk is done and every peer it went to acknowledged it
/// the way the protocol says (A: handed to the send path, B: RecvAck, C: WriteAck);</item>
/// <item>it stays in the peer's transfer log until that peer's BarrierAck for its epoch; a new epoch
/// starts after any completion (so dependent writes land in a later epoch) or after max-epoch-size
/// requests;</item>
/// <item>when a connection is lost, every request still in its transfer log — acknowledged or not —
/// is reported out of sync for that peer, so a later resync covers whatever the peer may lack;
/// pending acks from it are no longer awaited;</item>
/// <item>a request succeeds when the local disk or a peer has it (DRBD's drbd_req_complete: local OK
/// or net OK), so a failing local disk under `on-io-error detach` is not the application's error;
/// a failed local write is out of sync for every peer it went to (this disk lacks what they have).
/// Unlike DRBD, the local disk alone counts only when it was UpToDate: an Inconsistent SyncTarget
/// (or a disk still negotiating) is overwritten from its sync source at the next resync, which would
/// take a write only it holds with it;</item>
/// <item>a peer the Primary pulled ahead of (on-congestion pull-ahead) gets no new requests until it
/// resumes; its transfer log still drains by BarrierAck.</item>
/// <item>dual-primary (protocol C): the resolving peer may answer a conflicting write with
/// Superseded (its own write covers it: counts as written) or RetryWrite (the request is
/// <see cref="CompletedRequest.Postponed"/>).</item>
/// </list>
/// Pure and not thread-safe: the host serialises calls.
/// </summary>
public sealed class WriteTracker(ReplicationProtocol protocol, int maxEpochSize = 2048)
{
    /// <summary>Every request not yet completed, or still in some peer's transfer log.</summary>
    private readonly Dictionary<ulong, Request> requests = [];
    private readonly Dictionary<int, PeerLog> peers = [];
    private readonly HashSet<int> pulledAhead = [];
    private readonly List<CompletedRequest> completed = [];
    private readonly List<OutOfSyncRange> outOfSync = [];
    private ulong nextRequestId = 1;
    private uint epoch = 1;
    private int epochSize;
    private bool completionInEpoch;

    public ReplicationProtocol Protocol { get; private set; } = protocol;

    /// <summary>
    /// A new protocol for the requests to come. Each request keeps the protocol it was sent under
    /// (its Data frame told the peer which acknowledgement to send), as DRBD's requests keep the
    /// RQ_EXP_* bits they were created with when P_PROTOCOL_UPDATE changes the connection's protocol.
    /// </summary>
    public void SwitchProtocol(ReplicationProtocol protocol) => Protocol = protocol;

    /// <summary>
    /// True while the peer may lack a write it was sent: one it has not acknowledged, or, sent under
    /// protocol A or B (only sent, or only received), one its transfer log still holds.
    /// </summary>
    public bool PeerMayLackWrites(int peerNodeId) =>
        peers.TryGetValue(peerNodeId, out var log)
        && (log.Unacked.Count > 0 || log.Order.Any(id => requests[id].Protocol != ReplicationProtocol.C));

    public uint CurrentEpoch => epoch;

    /// <summary>Requests not yet completed to the client.</summary>
    public int PendingRequests => requests.Values.Count(r => !r.Completed);

    /// <summary>Requests sent to <paramref name="peerNodeId"/> and not yet acknowledged (DRBD's ap-in-flight).</summary>
    public int InFlight(int peerNodeId) => peers.TryGetValue(peerNodeId, out var log) ? log.Unacked.Count : 0;

    /// <summary>
    /// True while <paramref name="requestId"/> was sent to <paramref name="peerNodeId"/> and the peer has not
    /// answered it yet: a write the peer sends now was issued without knowing of this one (dual-primary: a conflict).
    /// </summary>
    public bool AwaitsAck(int peerNodeId, ulong requestId) => peers.TryGetValue(peerNodeId, out var log) && log.Unacked.Contains(requestId);

    /// <summary>The oldest request sent to <paramref name="peerNodeId"/> that it has not acknowledged (ids grow), if any.</summary>
    public ulong? OldestUnacked(int peerNodeId) =>
        peers.TryGetValue(peerNodeId, out var log) && log.Unacked.Count > 0 ? log.Unacked.Min() : null;

    /// <summary>True while some peer's transfer log holds a request carrying data (a write, trim or zeroing) not yet BarrierAcked.</summary>
    public bool HoldsUnconfirmedWrites => peers.Values.Any(log => log.Order.Any(id => requests[id].LengthBytes > 0));

    /// <summary>Requests in the peer's transfer log, not yet released by a BarrierAck.</summary>
    public int InTransferLog(int peerNodeId) => peers.TryGetValue(peerNodeId, out var log) ? log.Entries.Count : 0;

    /// <summary>
    /// Write payload bytes in the peer's transfer log: sent and not yet released by a BarrierAck
    /// (DRBD's ap_in_flight; trims, zeroes and flushes carry no payload).
    /// </summary>
    public long InTransferLogBytes(int peerNodeId) => peers.TryGetValue(peerNodeId, out var log) ? log.PayloadBytes : 0;

    /// <summary>
    /// on-congestion pull-ahead: new requests no longer go to <paramref name="peerNodeId"/> (the
    /// Primary marks them out of sync instead); what it already has stays in its transfer log.
    /// </summary>
    public void PullAhead(int peerNodeId)
    {
        Invariant.Assert(peers.ContainsKey(peerNodeId), $"peer {peerNodeId} is replicating before it is pulled ahead of");
        pulledAhead.Add(peerNodeId);
    }

    /// <summary>The peer gets new requests again (its resync starts).</summary>
    public void Resume(int peerNodeId) => pulledAhead.Remove(peerNodeId);

    /// <summary>True while new requests skip the peer (see <see cref="PullAhead"/>).</summary>
    public bool IsPulledAhead(int peerNodeId) => pulledAhead.Contains(peerNodeId);

    /// <summary>
    /// Closes the current epoch now if it holds requests (DRBD's start_new_tl_epoch), returning its
    /// number: the caller sends Barrier(number) to every peer, so what they hold can be BarrierAcked
    /// even if no request follows. Null when the epoch is empty.
    /// </summary>
    public uint? CloseEpoch()
    {
        if (epochSize == 0)
        {
            return null;
        }
        uint closed = epoch;
        epoch++;
        epochSize = 0;
        completionInEpoch = false;
        return closed;
    }

    /// <summary>Peers (node-ids) that receive replicated requests or still hold some in their transfer log.</summary>
    public IReadOnlyCollection<int> Peers => peers.Keys;

    /// <summary>The range of a request still known (pending or in a transfer log), or null.</summary>
    public (int Volume, long OffsetBytes, long LengthBytes)? RangeOf(ulong requestId) =>
        requests.TryGetValue(requestId, out var r) ? (r.Volume, r.OffsetBytes, r.LengthBytes) : null;

    /// <summary>
    /// A peer now receives replicated requests (connected and replicating). Under protocol A a write
    /// is acknowledged when handed to the send path only while the write data sent to this peer in
    /// earlier epochs and not yet released by a BarrierAck is at most <paramref name="sendBoundBytes"/>;
    /// beyond it the acknowledgement waits for BarrierAcks (DRBD's on-congestion block: its writers
    /// wait for room in the TCP send buffer). Only closed epochs count, so a waiting write never waits
    /// for its own epoch, which could not close while it waits.
    /// </summary>
    public void AddPeer(int peerNodeId, long sendBoundBytes = long.MaxValue)
    {
        Invariant.Assert(!peers.ContainsKey(peerNodeId), $"peer {peerNodeId} added twice");
        Invariant.Assert(sendBoundBytes > 0, "the send bound is positive");
        peers[peerNodeId] = new PeerLog(sendBoundBytes);
    }

    /// <summary>Protocol A writes to <paramref name="peerNodeId"/> held back by its send bound.</summary>
    public int HeldBySendBound(int peerNodeId) => peers.TryGetValue(peerNodeId, out var log) ? log.Held.Count : 0;

    public bool HasPeer(int peerNodeId) => peers.ContainsKey(peerNodeId);

    /// <summary>Starts a request; <paramref name="localDisk"/> false when this node is Diskless.</summary>
    public TrackedRequest Begin(int volume, long offsetBytes, long lengthBytes, ReplicatedRequestKind kind, bool localDisk = true)
    {
        uint? barrier = null;
        if (epochSize > 0 && (completionInEpoch || epochSize >= maxEpochSize))
        {
            barrier = epoch;
            epoch++;
            epochSize = 0;
            completionInEpoch = false;
        }
        epochSize++;
        var request = new Request(nextRequestId++, volume, offsetBytes, lengthBytes, kind, epoch, localDisk, Protocol);
        var sendTo = pulledAhead.Count == 0 ? peers.Keys.Order().ToList() : peers.Keys.Where(p => !pulledAhead.Contains(p)).Order().ToList();
        foreach (int peer in sendTo)
        {
            peers[peer].Add(request);
            request.WaitingFor.Add(peer);
            request.SentTo.Add(peer);
        }
        requests[request.Id] = request;
        return new TrackedRequest(request.Id, epoch, sendTo, sendTo.Count > 0 ? barrier : null);
    }

    /// <summary>Where the local write of a request still known stands (<see cref="RangeOf"/>).</summary>
    public LocalWriteState LocalWriteOf(ulong requestId)
    {
        var request = requests[requestId];
        return !request.LocalDisk ? LocalWriteState.None
            : !request.LocalDone ? LocalWriteState.Pending
            : request.LocalOk ? LocalWriteState.Succeeded : LocalWriteState.Failed;
    }

    /// <summary>
    /// The local disk finished the request. <paramref name="upToDate"/>: the disk was UpToDate then;
    /// only such a disk makes the request succeed without a peer (see the class remarks).
    /// </summary>
    public void LocalDone(ulong requestId, bool succeeded, bool upToDate = true)
    {
        var request = requests[requestId];
        Invariant.Assert(request.LocalDisk && !request.LocalDone, $"request {requestId}: local completion reported once, for a request that has a local disk");
        request.LocalDone = true;
        request.LocalOk = succeeded;
        request.LocalUpToDate = upToDate;
        if (!succeeded && request.LengthBytes > 0)
        {
            foreach (int peer in request.SentTo)
            {
                outOfSync.Add(new OutOfSyncRange(peer, request.Volume, request.OffsetBytes, request.LengthBytes));
            }
        }
        TryComplete(request);
    }

    /// <summary>
    /// The request was handed to the send path of <paramref name="peerNodeId"/>: under protocol A that is
    /// its acknowledgement (a FLUSH still waits for the peer: durability is its whole point).
    /// </summary>
    public void Sent(int peerNodeId, ulong requestId)
    {
        if (requests.TryGetValue(requestId, out var r) && r.Protocol == ReplicationProtocol.A && r.Kind != ReplicatedRequestKind.Flush
            && peers.TryGetValue(peerNodeId, out var log) && log.Unacked.Contains(requestId))
        {
            if (log.Held.Count > 0 || log.BytesBeforeEpoch(r.Epoch) > log.SendBoundBytes)
            {
                log.Held.Enqueue(requestId); // in order: a later write never overtakes a held one
                return;
            }
            PeerAcknowledged(peerNodeId, log, requestId, ok: true);
        }
    }

    /// <summary>An ack from the peer. Untrusted: an ack for a request the peer never had is ignored (returns false).</summary>
    public bool Ack(int peerNodeId, ulong requestId, AckKind kind)
    {
        if (!peers.TryGetValue(peerNodeId, out var log) || !log.Entries.Contains(requestId))
        {
            return false;
        }
        var request = requests[requestId];
        bool flush = request.Kind == ReplicatedRequestKind.Flush;
        bool counts = kind switch
        {
            AckKind.NegAck => true,
            AckKind.RecvAck => request.Protocol == ReplicationProtocol.B && !flush,
            AckKind.WriteAck => request.Protocol == ReplicationProtocol.C || flush,
            AckKind.Superseded or AckKind.RetryWrite => request.Protocol == ReplicationProtocol.C && !flush && request.LengthBytes > 0,
            _ => false,
        };
        if (kind == AckKind.RetryWrite && counts && log.Unacked.Contains(requestId))
        {
            request.Postponed = true;
        }
        if (kind == AckKind.NegAck && request.LengthBytes > 0)
        {
            // The peer could not write it: it lacks these blocks.
            outOfSync.Add(new OutOfSyncRange(peerNodeId, request.Volume, request.OffsetBytes, request.LengthBytes));
        }
        if (counts && log.Unacked.Contains(requestId))
        {
            PeerAcknowledged(peerNodeId, log, requestId, ok: kind != AckKind.NegAck);
        }
        return true;
    }

    /// <summary>
    /// The peer finished, flushed and acknowledged every request up to <paramref name="barrierEpoch"/>:
    /// they leave its transfer log. Untrusted: an ack for an epoch not yet closed is refused (false).
    /// </summary>
    public bool BarrierAck(int peerNodeId, uint barrierEpoch)
    {
        if (!peers.TryGetValue(peerNodeId, out var log) || barrierEpoch >= epoch)
        {
            return false;
        }
        // Ids and epochs grow together, so the released requests are a prefix of the log.
        while (log.Order.TryPeek(out ulong id) && requests[id].Epoch <= barrierEpoch)
        {
            var request = requests[id];
            log.RemoveOldest(request);
            if (log.Unacked.Contains(id))
            {
                PeerAcknowledged(peerNodeId, log, id, ok: true); // the barrier ack covers what it completes
            }
            Forget(request);
        }
        ReleaseHeld(peerNodeId, log);
        return true;
    }

    /// <summary>Acknowledges held protocol A writes, oldest first, as far as the send bound now allows.</summary>
    private void ReleaseHeld(int peerNodeId, PeerLog log)
    {
        while (log.Held.TryPeek(out ulong id))
        {
            if (!log.Unacked.Contains(id))
            {
                log.Held.Dequeue(); // acknowledged meanwhile (a BarrierAck covered it)
                continue;
            }
            if (log.BytesBeforeEpoch(requests[id].Epoch) > log.SendBoundBytes)
            {
                return;
            }
            log.Held.Dequeue();
            PeerAcknowledged(peerNodeId, log, id, ok: true);
        }
    }

    /// <summary>
    /// The connection to the peer is gone: every request in its transfer log is out of sync for it,
    /// and requests waiting for its ack stop waiting.
    /// </summary>
    public void PeerLost(int peerNodeId)
    {
        pulledAhead.Remove(peerNodeId);
        if (!peers.Remove(peerNodeId, out var log))
        {
            return;
        }
        foreach (ulong id in log.Order)
        {
            var request = requests[id];
            if (request.LengthBytes > 0)
            {
                outOfSync.Add(new OutOfSyncRange(peerNodeId, request.Volume, request.OffsetBytes, request.LengthBytes));
            }
            request.WaitingFor.Remove(peerNodeId);
            TryComplete(request);
            Forget(request);
        }
    }

    /// <summary>
    /// The peer's disk of <paramref name="volume"/> is gone (failed or detached) while connected:
    /// what its transfer log holds for that volume may have been only in the failed disk's cache
    /// (written, acknowledged, not yet flushed by a BarrierAck), so it is out of sync for that peer.
    /// The requests stay in the log: the BarrierAck still releases them.
    /// </summary>
    public void PeerDiskGone(int peerNodeId, int volume)
    {
        if (!peers.TryGetValue(peerNodeId, out var log))
        {
            return;
        }
        foreach (var request in log.Order.Select(id => requests[id]).Where(r => r.Volume == volume && r.LengthBytes > 0))
        {
            outOfSync.Add(new OutOfSyncRange(peerNodeId, request.Volume, request.OffsetBytes, request.LengthBytes));
        }
    }

    /// <summary>Requests completed since the last call (in completion order).</summary>
    public IReadOnlyList<CompletedRequest> TakeCompleted() => Take(completed);

    /// <summary>Ranges to mark out of sync in peers' bitmaps since the last call.</summary>
    public IReadOnlyList<OutOfSyncRange> TakeOutOfSync() => Take(outOfSync);

    private static List<T> Take<T>(List<T> list)
    {
        var taken = list.ToList();
        list.Clear();
        return taken;
    }

    private void PeerAcknowledged(int peerNodeId, PeerLog log, ulong requestId, bool ok)
    {
        log.Unacked.Remove(requestId);
        var request = requests[requestId];
        request.WaitingFor.Remove(peerNodeId);
        request.PeerOk |= ok;
        TryComplete(request);
    }

    private void TryComplete(Request request)
    {
        if (request.Completed || (request.LocalDisk && !request.LocalDone) || request.WaitingFor.Count > 0)
        {
            return;
        }
        request.Completed = true;
        completionInEpoch = true;
        completed.Add(new CompletedRequest(request.Id, (request.LocalDisk && request.LocalOk && request.LocalUpToDate) || request.PeerOk, request.Postponed));
        Forget(request);
    }

    /// <summary>Drops the record once it is completed and in no transfer log.</summary>
    private void Forget(Request request)
    {
        if (request.Completed && peers.Values.All(log => !log.Entries.Contains(request.Id)))
        {
            requests.Remove(request.Id);
        }
    }

    private sealed class Request(ulong id, int volume, long offsetBytes, long lengthBytes, ReplicatedRequestKind kind, uint epoch, bool localDisk,
        ReplicationProtocol protocol)
    {
        /// <summary>The protocol it was sent under: its acknowledgements are read by that protocol's rules.</summary>
        public ReplicationProtocol Protocol { get; } = protocol;
        public ulong Id { get; } = id;
        public int Volume { get; } = volume;
        public long OffsetBytes { get; } = offsetBytes;
        public long LengthBytes { get; } = lengthBytes;
        public ReplicatedRequestKind Kind { get; } = kind;
        public long PayloadBytes => Kind == ReplicatedRequestKind.Write ? LengthBytes : 0;
        public uint Epoch { get; } = epoch;
        public bool LocalDisk { get; } = localDisk;
        public bool LocalDone { get; set; }
        public bool LocalOk { get; set; }
        public bool LocalUpToDate { get; set; }
        public bool PeerOk { get; set; }
        public bool Postponed { get; set; }
        public bool Completed { get; set; }
        public HashSet<int> WaitingFor { get; } = [];
        public List<int> SentTo { get; } = [];
    }

    /// <summary>One peer's transfer log: requests sent to it and not yet released by a BarrierAck.</summary>
    private sealed class PeerLog(long sendBoundBytes)
    {
        public long SendBoundBytes { get; } = sendBoundBytes;
        public HashSet<ulong> Entries { get; } = [];
        /// <summary><see cref="Entries"/> oldest first (BarrierAcks release a prefix).</summary>
        public Queue<ulong> Order { get; } = [];
        public HashSet<ulong> Unacked { get; } = [];
        /// <summary>Protocol A writes whose acknowledgement waits for room under the send bound, oldest first.</summary>
        public Queue<ulong> Held { get; } = [];
        /// <summary>Write payload bytes of <see cref="Entries"/>.</summary>
        public long PayloadBytes { get; private set; }
        /// <summary>Requests and payload bytes per epoch in the log, oldest epoch first.</summary>
        private readonly LinkedList<(uint Epoch, int Requests, long Bytes)> epochs = new();

        public void Add(Request request)
        {
            Unacked.Add(request.Id);
            Entries.Add(request.Id);
            Order.Enqueue(request.Id);
            PayloadBytes += request.PayloadBytes;
            if (epochs.Last is { } last && last.Value.Epoch == request.Epoch)
            {
                last.Value = (request.Epoch, last.Value.Requests + 1, last.Value.Bytes + request.PayloadBytes);
            }
            else
            {
                epochs.AddLast((request.Epoch, 1, request.PayloadBytes));
            }
        }

        public void RemoveOldest(Request request)
        {
            Invariant.Assert(Order.Dequeue() == request.Id, $"request {request.Id} leaves the transfer log in order");
            Entries.Remove(request.Id);
            PayloadBytes -= request.PayloadBytes;
            var first = epochs.First!;
            Invariant.Assert(first.Value.Epoch == request.Epoch, $"request {request.Id} is in the oldest epoch of the log");
            first.Value = (request.Epoch, first.Value.Requests - 1, first.Value.Bytes - request.PayloadBytes);
            if (first.Value.Requests == 0)
            {
                epochs.RemoveFirst();
            }
        }

        /// <summary>Payload bytes in the log from epochs older than <paramref name="epoch"/>.</summary>
        public long BytesBeforeEpoch(uint epoch)
        {
            long bytes = 0;
            for (var node = epochs.First; node is not null && node.Value.Epoch < epoch; node = node.Next)
            {
                bytes += node.Value.Bytes;
            }
            return bytes;
        }
    }
}

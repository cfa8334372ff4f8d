using System.Buffers;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// The data path: a Primary's client requests fan out to every connected peer and complete when
// the protocol's guarantee holds; a Secondary applies what its peer sends in epoch order and
// acknowledges per protocol.
public sealed partial class Replica
{
    /// <summary>A client write on the Primary. Completion: <see cref="IReplicaIo.CompleteClient"/>.</summary>
    public void ClientWrite(long clientToken, int volume, long offsetBytes, ReadOnlyMemory<byte> data, bool fua) =>
        StartClientRequest(clientToken, volume, offsetBytes, data.Length, fua ? DataFlags.Fua : DataFlags.None, ReplicatedRequestKind.Write, data);

    /// <summary>A client TRIM or WRITE_ZEROES on the Primary: replicated, so replicas never diverge.</summary>
    public void ClientZero(long clientToken, int volume, long offsetBytes, long lengthBytes, bool trim) =>
        StartClientRequest(clientToken, volume, offsetBytes, lengthBytes, trim ? DataFlags.Trim : DataFlags.Zeroes,
            trim ? ReplicatedRequestKind.Trim : ReplicatedRequestKind.Zeroes, ReadOnlyMemory<byte>.Empty);

    /// <summary>A client FLUSH: durable here and on every connected peer.</summary>
    public void ClientFlush(long clientToken) =>
        StartClientRequest(clientToken, volumes.Keys.Min(), 0, 0, DataFlags.Flush, ReplicatedRequestKind.Flush, ReadOnlyMemory<byte>.Empty);

    /// <summary>A local disk operation started through <see cref="IReplicaIo"/> finished.</summary>
    public void LocalDone(long token, bool succeeded)
    {
        Invariant.Assert(pendingIo.Remove(token, out var pending), $"local I/O {token} completes once");
        switch (pending)
        {
            case ClientIo client:
                foreach (var (admitting, admission) in client.Admissions)
                {
                    // Never "in sync" by this write: the source has it too and resyncs the blocks
                    // again, so both sides' bitmaps keep agreeing (the source clears only on RsWriteAck).
                    admitting.ApplicationWriteFailed(admission);
                }
                if (!succeeded && client.LengthBytes > 0)
                {
                    MissedWrite(client.Volume);
                }
                writes.LocalDone(client.RequestId, succeeded, LandedOnUpToDateDisk(client));
                CoveringWriteDone(client.RequestId, succeeded);
                CompleteRequests();
                break;
            case PeerWriteIo peerWrite:
                peerWrite.Block?.Dispose();
                if (peerWrite.Planner is { } planner)
                {
                    if (succeeded)
                    {
                        planner.ApplicationWriteCompleted(peerWrite.Admission);
                    }
                    else
                    {
                        planner.ApplicationWriteFailed(peerWrite.Admission);
                    }
                }
                if (!succeeded && peerWrite.LengthBytes > 0)
                {
                    MissedWrite(peerWrite.Volume);
                }
                peerWrite.Receiver.WriteDone(peerWrite.RequestId, succeeded);
                Carry(peerWrite.Peer, peerWrite.Receiver);
                if (waitingClientRequests.Count > 0)
                {
                    StartUnblockedRequests(); // a client write may have waited for this one
                }
                break;
            case ResyncWriteIo resyncWrite:
                resyncWrite.Block?.Dispose();
                ResyncWriteDone(resyncWrite, succeeded);
                RetryDeferredPeerWrites();
                RetryDeferredClientWrites();
                break;
            case ActivityLogIo activityLog:
                ActivityLogWritten(activityLog, succeeded);
                break;
            case ResyncFlushIo resyncFlush:
                ResyncFlushDone(resyncFlush, succeeded);
                break;
            case PeerFlushIo flush:
                flush.Receiver.FlushDone(succeeded);
                Carry(flush.Peer, flush.Receiver);
                break;
        }
        RetryDeferredReads();
        if (deferredVerifyReads.Count > 0)
        {
            RetryDeferredVerifyReads();
        }
    }

    /// <summary>
    /// The local part of a client request reached UpToDate data: its volume's disk, or for a flush
    /// every attached disk, is UpToDate (the write tracker lets no other disk alone complete it).
    /// </summary>
    private bool LandedOnUpToDateDisk(ClientIo client) =>
        client.Kind == ReplicatedRequestKind.Flush
            ? volumes.Values.All(v => v.Disk == DiskState.UpToDate || !v.HasLocalData)
            : volumes[client.Volume].Disk == DiskState.UpToDate;

    private void StartClientRequest(long clientToken, int volume, long offsetBytes, long lengthBytes, DataFlags flags, ReplicatedRequestKind kind, ReadOnlyMemory<byte> data)
    {
        Admit(new QueuedClientRequest(clientToken, volume, offsetBytes, lengthBytes, flags, kind, data));
    }

    /// <summary>A new client request: queued while fencing froze I/O, waiting behind overlapping ones, or started.</summary>
    private void Admit(QueuedClientRequest queued)
    {
        if (SuspendedFencing)
        {
            suspendedRequests.Add(queued);
            return;
        }
        // Overlapping writes in flight together could land in different orders on the two disks:
        // as DRBD does, a write that overlaps one still in flight waits for it to complete.
        if (queued.OffsetBytes < 0 || queued.LengthBytes < 0 || queued.OffsetBytes + queued.LengthBytes > volumes[queued.Volume].AgreedSizeBytes)
        {
            // Past the agreed size: the peer may not have the room; the device ends there.
            io.CompleteClient(queued.ClientToken, false);
            return;
        }
        if (queued.LengthBytes > 0 && (Overlaps(queued) || waitingClientRequests.Any(w => w.Overlaps(queued)) || OverlapsParked(queued) || OverlapsPeerWrite(queued)))
        {
            waitingClientRequests.Add(queued);
            return;
        }
        Start(queued);
    }

    private bool Overlaps(QueuedClientRequest request) => activeClientRanges.Values.Any(request.Overlaps);

    /// <summary>
    /// A write from the peer to the same blocks is not on the local disk yet (the old Primary's last
    /// writes, when this node was just promoted): the client's write must land after it, or the two
    /// disks could end with different data (DRBD waits for such conflicts too).
    /// </summary>
    private bool OverlapsPeerWrite(QueuedClientRequest request) =>
        pendingIo.Values.OfType<PeerWriteIo>().Any(w => w.Volume == request.Volume && w.LengthBytes > 0
            && w.OffsetBytes < request.OffsetBytes + request.LengthBytes && request.OffsetBytes < w.OffsetBytes + w.LengthBytes)
        || deferredPeerWrites.Any(w => w.Action.Volume == request.Volume && w.Action.Data.LengthBytes > 0
            && (long)w.Action.Data.OffsetBytes < request.OffsetBytes + request.LengthBytes && request.OffsetBytes < (long)w.Action.Data.OffsetBytes + w.Action.Data.LengthBytes)
        || UndrainedReceivers.Any(r => r.WriteInFlight(request.Volume, request.OffsetBytes, request.LengthBytes));

    /// <summary>Starts waiting requests whose overlapping predecessors have completed, in arrival order.</summary>
    private void StartUnblockedRequests()
    {
        for (int i = 0; i < waitingClientRequests.Count; i++)
        {
            var request = waitingClientRequests[i];
            // A request parked by the activity log was admitted earlier: it goes first, or the two
            // would be in flight together and could land in different orders on the two disks.
            if (!Overlaps(request) && !OverlapsParked(request) && !OverlapsPeerWrite(request) && !waitingClientRequests.Take(i).Any(earlier => earlier.Overlaps(request)))
            {
                waitingClientRequests.RemoveAt(i);
                Start(request);
                i = -1; // starting one may complete others synchronously; rescan from the start
            }
        }
    }

    private readonly List<QueuedClientRequest> waitingClientRequests = [];
    private readonly Dictionary<ulong, QueuedClientRequest> activeClientRanges = [];

    private sealed record QueuedClientRequest(long ClientToken, int Volume, long OffsetBytes, long LengthBytes, DataFlags Flags, ReplicatedRequestKind Kind, ReadOnlyMemory<byte> Data)
    {
        public bool Overlaps(QueuedClientRequest other) => Overlaps(other.Volume, other.OffsetBytes, other.LengthBytes);

        public bool Overlaps(int volume, long offsetBytes, long lengthBytes) =>
            volume == Volume && lengthBytes > 0 && LengthBytes > 0
            && offsetBytes < OffsetBytes + LengthBytes && OffsetBytes < offsetBytes + lengthBytes;
    }

    /// <summary>Client requests in flight here (started, not completed) that overlap the range, by request id.</summary>
    private IEnumerable<KeyValuePair<ulong, QueuedClientRequest>> ClientRequestsOverlapping(int volume, long offsetBytes, long lengthBytes) =>
        activeClientRanges.Where(r => r.Value.Overlaps(volume, offsetBytes, lengthBytes));

    private void Start(QueuedClientRequest request)
    {
        var (clientToken, volume, offsetBytes, lengthBytes, flags, kind, data) = request;
        var local = volumes[volume];
        if (Role != Role.Primary || (local.Disk != DiskState.UpToDate && UpToDatePeer(volume) is null))
        {
            // DRBD's on-no-data-accessible io-error: no UpToDate copy of the data is reachable.
            LeaveActivityLog(request);
            CompleteClient(clientToken, false);
            return;
        }
        if (kind != ReplicatedRequestKind.Flush && !EnterActivityLog(request))
        {
            return;
        }
        var tracked = writes.Begin(volume, offsetBytes, lengthBytes, kind, local.HasLocalData);
        clientOfRequest[tracked.RequestId] = clientToken;
        RecordSent(tracked.RequestId);
        activeClientRanges[tracked.RequestId] = request;
        flags |= Protocol switch
        {
            ReplicationProtocol.C => DataFlags.SendWriteAck,
            ReplicationProtocol.B => DataFlags.SendReceiveAck,
            _ => DataFlags.None,
        };
        if (kind == ReplicatedRequestKind.Flush)
        {
            flags |= DataFlags.SendWriteAck; // a flush is acknowledged after the peer's flush, whatever the protocol
        }
        SendData(tracked, new DataMessage((ulong)offsetBytes, (uint)lengthBytes, tracked.RequestId, nextSequence++, flags), (ushort)volume, data.Span);
        if (lengthBytes > 0)
        {
            VerifyWriteArrived(volume, offsetBytes, lengthBytes);
            foreach (int peer in links.Keys.Where(p => !tracked.SendTo.Contains(p)))
            {
                local.Bitmaps.MarkOutOfSync(local.SlotOfPeer[peer], offsetBytes, lengthBytes);
                TellPulledAhead(peer, volume, offsetBytes, lengthBytes);
            }
            if (local.Disk == DiskState.Negotiating)
            {
                // Attached but not yet written to: the peer records this write for our disk, and so
                // do we, so both bitmaps of the coming resync hold it.
                foreach (int peer in tracked.SendTo)
                {
                    local.Bitmaps.MarkOutOfSync(local.SlotOfPeer[peer], offsetBytes, lengthBytes);
                }
            }
        }
        if (local.HasLocalData)
        {
            SubmitClientLocal(new ClientIo(tracked.RequestId, volume, offsetBytes, kind == ReplicatedRequestKind.Flush ? 0 : lengthBytes, kind, data, (flags & DataFlags.Fua) != 0));
        }
        MaybePullAhead();
        CompleteRequests();
    }

    /// <summary>
    /// The local part of a client request. On a SyncTarget (a Primary whose disk came back) the
    /// resync planner admits it first, as it does a write from the peer: resync data being written
    /// to the same blocks lands first, and replies still on the way for them are dropped.
    /// </summary>
    private void SubmitClientLocal(ClientIo client)
    {
        if (client.LengthBytes > 0)
        {
            foreach (var planner in syncs.Where(s => s.Key.Volume == client.Volume && s.Value.Planner is not null).Select(s => s.Value.Planner!).ToList())
            {
                var admission = planner.ApplicationWriteArrived(client.OffsetBytes, client.LengthBytes);
                if (!admission.Admitted)
                {
                    foreach (var (admitted, admittedToken) in client.Admissions)
                    {
                        admitted.ApplicationWriteFailed(admittedToken);
                    }
                    client.Admissions.Clear();
                    deferredClientWrites.Add(client);
                    return;
                }
                client.Admissions.Add((planner, admission.Token));
            }
        }
        long token = NewToken(client);
        switch (client.Kind)
        {
            case ReplicatedRequestKind.Write: io.WriteLocal(client.Volume, client.OffsetBytes, client.Data, client.Fua, token); break;
            case ReplicatedRequestKind.Flush: io.FlushLocal(token); break;
            default: io.ZeroLocal(client.Volume, client.OffsetBytes, client.LengthBytes, client.Kind == ReplicatedRequestKind.Trim, token); break;
        }
    }

    /// <summary>Local parts of client requests that waited for resync writes (or for a resync to end); a disk gone meanwhile fails them.</summary>
    private void RetryDeferredClientWrites()
    {
        if (deferredClientWrites.Count == 0)
        {
            return;
        }
        var waiting = deferredClientWrites.ToList();
        deferredClientWrites.Clear();
        foreach (var client in waiting)
        {
            if (volumes[client.Volume].HasLocalData)
            {
                SubmitClientLocal(client);
            }
            else
            {
                writes.LocalDone(client.RequestId, false);
                CoveringWriteDone(client.RequestId, false);
            }
        }
        CompleteRequests();
    }

    private readonly List<ClientIo> deferredClientWrites = [];

    /// <summary>
    /// Sends a request to every peer it goes to, each after the barrier that closes the previous
    /// epoch. At most two frames are built: plain for peers without compression, LZ4 for the rest.
    /// </summary>
    private void SendData(TrackedRequest tracked, in DataMessage message, ushort volume, ReadOnlySpan<byte> data)
    {
        foreach (bool compress in (ReadOnlySpan<bool>)[false, true])
        {
            PooledFrame? frame = null;
            var frameIntegrity = DigestAlgorithm.None;
            try
            {
                foreach (int peer in tracked.SendTo)
                {
                    if (CompressesWith(peer) != compress)
                    {
                        continue;
                    }
                    if (tracked.BarrierBefore is { } closed)
                    {
                        io.Send(peer, Frame(0, new BarrierMessage(closed)));
                    }
                    var integrity = IntegrityAlgorithm(peer);
                    if (frame is null || frameIntegrity != integrity)
                    {
                        frame?.Dispose();
                        frame = DataFrame(volume, WithIntegrityDigest(message, integrity, data), data, compress);
                        frameIntegrity = integrity;
                    }
                    frame.Value.SendTo(io, peer, data);
                    CountSent(peer, volume, data.Length);
                    writes.Sent(peer, tracked.RequestId);
                }
            }
            finally
            {
                frame?.Dispose();
            }
        }
    }

    /// <summary>Replies to clients whose requests completed; records what peers missed.</summary>
    private void CompleteRequests()
    {
        RecordOutOfSync();
        var completedNow = writes.TakeCompleted();
        List<QueuedClientRequest>? postponed = null;
        foreach (var done in completedNow)
        {
            Invariant.Assert(clientOfRequest.Remove(done.RequestId, out long clientToken), $"request {done.RequestId} belongs to a client");
            ForgetSent(done.RequestId);
            if (activeClientRanges.Remove(done.RequestId, out var finished))
            {
                LeaveActivityLog(finished);
                if (done.Postponed)
                {
                    (postponed ??= []).Add(finished);
                    continue;
                }
            }
            CompleteClient(clientToken, done.Succeeded);
        }
        if (postponed is not null)
        {
            RestartPostponed(postponed);
        }
        if (completedNow.Count > 0)
        {
            RetryConflictingPeerWrites();
        }
        if (completedNow.Count > 0 && waitingClientRequests.Count > 0)
        {
            StartUnblockedRequests();
        }
        if (completedNow.Count > 0 && clientOfRequest.Count == 0)
        {
            CloseEpoch(); // the writer went idle
        }
    }

    /// <summary>Marks in the peers' bitmap slots the ranges the write tracker found they may lack.</summary>
    private void RecordOutOfSync()
    {
        foreach (var range in writes.TakeOutOfSync())
        {
            var volume = volumes[range.Volume];
            volume.Bitmaps.MarkOutOfSync(volume.SlotOfPeer[range.PeerNodeId], range.OffsetBytes, range.LengthBytes);
        }
    }

    /// <summary>Sends a Barrier for the current epoch if it holds writes, so the peers confirm them now.</summary>
    private void CloseEpoch()
    {
        if (writes.CloseEpoch() is not { } closed)
        {
            return;
        }
        foreach (int peer in writes.Peers)
        {
            io.Send(peer, Frame(0, new BarrierMessage(closed)));
        }
    }

    /// <summary>Data, acks, barriers and remote reads on an established connection. Untrusted: bad frames drop the connection.</summary>
    private void ReceiveDataPath(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        switch (header.Type)
        {
            case MessageType.DataRequest:
                OnDataRequest(peer, header, payload);
                break;
            case MessageType.DataReply or MessageType.NegDReply:
                ReceiveRemoteRead(peer, header, payload);
                break;
            case MessageType.Data when Role != Role.Primary || links[peer].Settings.Protocol.AllowTwoPrimaries:
                if (!DataMessage.TryRead(payload, out var data, out var block, out string? error) || !volumes.TryGetValue(header.Volume, out var volume)
                    || data.OffsetBytes + data.LengthBytes > (ulong)volume.AgreedSizeBytes)
                {
                    ProtocolError(peer, error ?? $"Data for volume {header.Volume} outside the agreed size");
                    return;
                }
                CountReceived(peer, header.Volume, (long)data.LengthBytes);
                if (data.LengthBytes > 0 && links[peer].PeerDisks.GetValueOrDefault(header.Volume, DiskState.DUnknown) < DiskState.Inconsistent)
                {
                    // "In case we have the only disk of the cluster": the writer's own disk is gone (or
                    // not yet back), so what it writes here is what its disk will lack (DRBD's receive_Data).
                    volume.Bitmaps.MarkOutOfSync(volume.SlotOfPeer[peer], (long)data.OffsetBytes, data.LengthBytes);
                }
                PooledBlock? bytes = null;
                if (data.ExpectsData && (bytes = ReceivedBlock(peer, block, (data.Flags & DataFlags.Compressed) != 0, data.LengthBytes, out error)) is null)
                {
                    ProtocolError(peer, error!);
                    return;
                }
                if (IntegrityFailure(peer, data, bytes) is { } failure)
                {
                    bytes?.Dispose();
                    ProtocolError(peer, failure);
                    return;
                }
                var receiver = receivers[peer];
                VerifyWriteArrived(header.Volume, (long)data.OffsetBytes, data.LengthBytes);
                receiver.Data(header.Volume, data with { Flags = data.Flags & ~DataFlags.Compressed }, bytes);
                Carry(peer, receiver);
                break;
            case MessageType.Data:
                ProtocolError(peer, "the peer sent application writes to a Primary (two primaries are not allowed)");
                break;
            case MessageType.Ack:
                if (!FramePayload.TryRead(payload, out AckMessage ack, out error))
                {
                    ProtocolError(peer, error!);
                    return;
                }
                if (ack.Kind is AckKind.Superseded or AckKind.RetryWrite && (!links[peer].Settings.Protocol.AllowTwoPrimaries || links[peer].Settings.ResolvesConflicts))
                {
                    // Only the peer holding resolve-conflicts answers so, and only between two Primaries.
                    ProtocolError(peer, $"a {ack.Kind} for request {ack.RequestId} without allow-two-primaries, or from the peer that does not resolve conflicts");
                    return;
                }
                var range = writes.RangeOf(ack.RequestId);
                if (!writes.Ack(peer, ack.RequestId, ack.Kind))
                {
                    ProtocolError(peer, $"an ack for request {ack.RequestId}, which the peer never got");
                    return;
                }
                if (ack.Kind == AckKind.WriteAck && range is { } written && ReplicationOf(peer, written.Volume) is ReplicationState.SyncSource or ReplicationState.PausedSyncS)
                {
                    // A SyncTarget that wrote an application write has those blocks (DRBD's RQ_NET_SIS).
                    var syncVolume = volumes[written.Volume];
                    syncVolume.Bitmaps.MarkInSync(syncVolume.SlotOfPeer[peer], written.OffsetBytes, written.LengthBytes);
                    FinishSourceIfDone(peer, syncVolume, syncs[(peer, written.Volume)]);
                }
                break;
            case MessageType.Barrier:
                if (!FramePayload.TryRead(payload, out BarrierMessage barrier, out error) || barrier.Epoch > uint.MaxValue)
                {
                    ProtocolError(peer, error ?? $"barrier epoch {barrier.Epoch} out of range");
                    return;
                }
                receivers[peer].Barrier((uint)barrier.Epoch);
                Carry(peer, receivers[peer]);
                break;
            case MessageType.OutOfSync:
                ReceiveOutOfSync(peer, header, payload);
                break;
            case MessageType.BarrierAck:
                if (!FramePayload.TryRead(payload, out BarrierAckMessage barrierAck, out error) || barrierAck.Epoch > uint.MaxValue || !writes.BarrierAck(peer, (uint)barrierAck.Epoch))
                {
                    ProtocolError(peer, error ?? $"a BarrierAck for epoch {barrierAck.Epoch}, which is not closed");
                    return;
                }
                ReleasePrimaryIndicator();
                break;
        }
    }

    /// <summary>Carries out a receiver's actions; acks for a connection that is gone are dropped.</summary>
    private void Carry(int peer, PeerWriteReceiver receiver)
    {
        bool current = IsCurrent(peer, receiver);
        foreach (var action in receiver.TakeActions())
        {
            switch (action.Kind)
            {
                case ReceiverActionKind.SubmitWrite:
                    SubmitPeerWrite(new DeferredPeerWrite(peer, receiver, action));
                    break;
                case ReceiverActionKind.Flush:
                    io.FlushLocal(NewToken(new PeerFlushIo(peer, receiver)));
                    break;
                case ReceiverActionKind.SendAck when current:
                    var d = action.Data;
                    io.Send(peer, Frame((ushort)action.Volume, new AckMessage(action.Ack, d.OffsetBytes, d.LengthBytes, d.RequestId, d.SequenceNumber)));
                    break;
                case ReceiverActionKind.SendBarrierAck when current:
                    io.Send(peer, Frame(0, new BarrierAckMessage(action.Epoch, action.SetSize)));
                    break;
            }
        }
        if (!current)
        {
            ForgetIfDrained(receiver);
        }
    }

    /// <summary>
    /// Writes a write from the peer. On a SyncTarget the resync planner admits it first: a resync
    /// reply being written to the same blocks goes first, and replies still on the way for them are
    /// dropped and asked for again (they may be older than this write).
    /// </summary>
    private void SubmitPeerWrite(DeferredPeerWrite write)
    {
        if (HeldByWriteConflict(write))
        {
            return;
        }
        var data = write.Action.Data;
        ResyncPlanner? planner = syncs.TryGetValue((write.Peer, write.Action.Volume), out var sync) ? sync.Planner : null;
        if (planner is null && data.LengthBytes > 0 && OverlapsResyncWrite(write.Action.Volume, (long)data.OffsetBytes, data.LengthBytes))
        {
            // A resync write of a resync that stopped (its planner gone) is still on its way to the
            // disk: the peer's newer write lands after it, as the planner would have ordered them.
            deferredPeerWrites.Add(write);
            return;
        }
        long admission = 0;
        if (planner is not null && data.LengthBytes > 0)
        {
            var admitted = planner.ApplicationWriteArrived((long)data.OffsetBytes, data.LengthBytes);
            if (!admitted.Admitted)
            {
                deferredPeerWrites.Add(write);
                return;
            }
            admission = admitted.Token;
        }
        var block = write.Action.Payload as PooledBlock;
        long token = NewToken(new PeerWriteIo(write.Peer, write.Receiver, data.RequestId, data.LengthBytes > 0 ? planner : null, admission, block,
            write.Action.Volume, (long)data.OffsetBytes, data.LengthBytes));
        if ((data.Flags & (DataFlags.Trim | DataFlags.Zeroes)) != 0)
        {
            io.ZeroLocal(write.Action.Volume, (long)data.OffsetBytes, data.LengthBytes, (data.Flags & DataFlags.Trim) != 0, token);
        }
        else
        {
            io.WriteLocal(write.Action.Volume, (long)data.OffsetBytes, block!.Memory, (data.Flags & DataFlags.Fua) != 0, token);
        }
    }

    private bool OverlapsResyncWrite(int volume, long offsetBytes, long lengthBytes) =>
        pendingIo.Values.OfType<ResyncWriteIo>().Any(r => r.Volume == volume && r.Block is not null
            && (long)r.Reply.OffsetBytes < offsetBytes + lengthBytes && offsetBytes < (long)r.Reply.OffsetBytes + r.Reply.LengthBytes);

    private void RetryDeferredPeerWrites()
    {
        var waiting = deferredPeerWrites.ToList();
        deferredPeerWrites.Clear();
        foreach (var write in waiting)
        {
            SubmitPeerWrite(write);
        }
    }

    private readonly List<DeferredPeerWrite> deferredPeerWrites = [];

    private sealed record DeferredPeerWrite(int Peer, PeerWriteReceiver Receiver, ReceiverAction Action);

    /// <summary>True while <paramref name="connection"/> (its receiver) is still the peer's live connection.</summary>
    private bool IsCurrent(int peer, PeerWriteReceiver connection) =>
        receivers.TryGetValue(peer, out var live) && ReferenceEquals(live, connection);

    private void ProtocolError(int peer, string reason)
    {
        links[peer].Fail($"protocol error: {reason}");
        Drain(peer);
    }
}

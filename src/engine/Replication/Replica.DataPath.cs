using System.Buffers;
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
                writes.LocalDone(client.RequestId, succeeded);
                CompleteRequests();
                break;
            case PeerWriteIo peerWrite:
                peerWrite.Receiver.WriteDone(peerWrite.RequestId, succeeded);
                Carry(peerWrite.Peer, peerWrite.Receiver);
                break;
            case PeerFlushIo flush:
                flush.Receiver.FlushDone(succeeded);
                Carry(flush.Peer, flush.Receiver);
                break;
        }
    }

    private void StartClientRequest(long clientToken, int volume, long offsetBytes, long lengthBytes, DataFlags flags, ReplicatedRequestKind kind, ReadOnlyMemory<byte> data)
    {
        var local = volumes[volume];
        if (Role != Role.Primary || (!local.HasLocalData && connected.Count == 0))
        {
            io.CompleteClient(clientToken, false);
            return;
        }
        var tracked = writes.Begin(volume, offsetBytes, lengthBytes, kind, local.HasLocalData);
        clientOfRequest[tracked.RequestId] = clientToken;
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
        var message = new DataMessage((ulong)offsetBytes, (uint)lengthBytes, tracked.RequestId, nextSequence++, flags);
        byte[] frame = Frame((ushort)volume, message, data.Span);
        foreach (int peer in tracked.SendTo)
        {
            if (tracked.BarrierBefore is { } closed)
            {
                io.Send(peer, Frame(0, new BarrierMessage(closed)));
            }
            io.Send(peer, frame);
            writes.Sent(peer, tracked.RequestId);
        }
        if (lengthBytes > 0)
        {
            foreach (int peer in links.Keys.Where(p => !tracked.SendTo.Contains(p)))
            {
                local.Bitmaps.MarkOutOfSync(local.SlotOfPeer[peer], offsetBytes, lengthBytes);
            }
        }
        if (local.HasLocalData)
        {
            long token = NewToken(new ClientIo(tracked.RequestId));
            switch (kind)
            {
                case ReplicatedRequestKind.Write: io.WriteLocal(volume, offsetBytes, data, (flags & DataFlags.Fua) != 0, token); break;
                case ReplicatedRequestKind.Flush: io.FlushLocal(token); break;
                default: io.ZeroLocal(volume, offsetBytes, lengthBytes, kind == ReplicatedRequestKind.Trim, token); break;
            }
        }
        CompleteRequests();
    }

    /// <summary>Replies to clients whose requests completed; records what peers missed.</summary>
    private void CompleteRequests()
    {
        foreach (var range in writes.TakeOutOfSync())
        {
            var volume = volumes[range.Volume];
            volume.Bitmaps.MarkOutOfSync(volume.SlotOfPeer[range.PeerNodeId], range.OffsetBytes, range.LengthBytes);
        }
        foreach (var done in writes.TakeCompleted())
        {
            Invariant.Assert(clientOfRequest.Remove(done.RequestId, out long clientToken), $"request {done.RequestId} belongs to a client");
            io.CompleteClient(clientToken, done.Succeeded);
        }
    }

    /// <summary>Data, acks and barriers on an established connection. Untrusted: bad frames drop the connection.</summary>
    private void ReceiveDataPath(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        switch (header.Type)
        {
            case MessageType.Data when Role != Role.Primary:
                if (!DataMessage.TryRead(payload, out var data, out var block, out string? error) || !volumes.TryGetValue(header.Volume, out var volume)
                    || data.OffsetBytes + data.LengthBytes > (ulong)volume.UsableSizeBytes)
                {
                    ProtocolError(peer, error ?? $"Data for volume {header.Volume} outside the agreed size");
                    return;
                }
                var receiver = receivers[peer];
                receiver.Data(header.Volume, data, data.ExpectsData ? block.ToArray() : null);
                Carry(peer, receiver);
                break;
            case MessageType.Data:
                ProtocolError(peer, "the peer sent application writes to a Primary (two primaries are not allowed)");
                break;
            case MessageType.Ack:
                if (!FramePayload.TryRead(payload, out AckMessage ack, out error) || !writes.Ack(peer, ack.RequestId, ack.Kind))
                {
                    ProtocolError(peer, error ?? $"an ack for request {ack.RequestId}, which the peer never got");
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
            case MessageType.BarrierAck:
                if (!FramePayload.TryRead(payload, out BarrierAckMessage barrierAck, out error) || barrierAck.Epoch > uint.MaxValue || !writes.BarrierAck(peer, (uint)barrierAck.Epoch))
                {
                    ProtocolError(peer, error ?? $"a BarrierAck for epoch {barrierAck.Epoch}, which is not closed");
                }
                break;
        }
    }

    /// <summary>Carries out a receiver's actions; acks for a connection that is gone are dropped.</summary>
    private void Carry(int peer, PeerWriteReceiver receiver)
    {
        bool current = receivers.TryGetValue(peer, out var live) && ReferenceEquals(live, receiver);
        foreach (var action in receiver.TakeActions())
        {
            switch (action.Kind)
            {
                case ReceiverActionKind.SubmitWrite:
                    long token = NewToken(new PeerWriteIo(peer, receiver, action.Data.RequestId));
                    if ((action.Data.Flags & (DataFlags.Trim | DataFlags.Zeroes)) != 0)
                    {
                        io.ZeroLocal(action.Volume, (long)action.Data.OffsetBytes, action.Data.LengthBytes, (action.Data.Flags & DataFlags.Trim) != 0, token);
                    }
                    else
                    {
                        io.WriteLocal(action.Volume, (long)action.Data.OffsetBytes, (byte[])action.Payload!, (action.Data.Flags & DataFlags.Fua) != 0, token);
                    }
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
    }

    private void ProtocolError(int peer, string reason)
    {
        links[peer].Fail($"protocol error: {reason}");
        Drain(peer);
    }
}

using System.Buffers;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// Client reads, as DRBD serves them: from the local disk when it is UpToDate, otherwise (Diskless
// after an I/O error, or a SyncTarget) from a connected peer whose disk is UpToDate, with
// DataRequest → DataReply (P_DATA_REQUEST/P_DATA_REPLY); a failed local read is retried at such a
// peer too (DRBD's READ_RETRY_REMOTE) — never one whose connection has `allow-remote-read no`
// (DRBD's option for a far site: writes still go there). A read is split into pieces of at most
// RemoteReadChunkBytes on the wire. A piece in flight when its connection drops is sent again the
// same way (the local disk if it is UpToDate by now, else another UpToDate peer); with neither, the
// read fails (EIO).
// The peer serves a DataRequest after every write it has from us to the same blocks has landed, so
// a read never sees older data than a write that completed before it.
public sealed partial class Replica
{
    /// <summary>The largest piece of a client read asked of a peer in one DataRequest.</summary>
    public const int RemoteReadChunkBytes = 1 << 20;

    private readonly Dictionary<ulong, RemotePiece> remoteReads = [];
    private ulong nextRemoteReadId = 1;

    /// <summary>A client read on the Primary. Completion: <see cref="IReplicaIo.CompleteClientRead"/>.</summary>
    public void ClientRead(long clientToken, int volume, long offsetBytes, int lengthBytes)
    {
        if (Role != Role.Primary || !volumes.TryGetValue(volume, out var local) || lengthBytes <= 0 || offsetBytes < 0 || offsetBytes + lengthBytes > local.AgreedSizeBytes)
        {
            io.CompleteClientRead(clientToken, false, ReadOnlyMemory<byte>.Empty);
            return;
        }
        var read = new ClientReadState(clientToken, volume, offsetBytes, lengthBytes);
        read.Outstanding++;
        Dispatch(read, 0, lengthBytes, localAllowed: true);
        Settle(read);
    }

    /// <summary>The connected peer (lowest node-id) whose disk of <paramref name="volume"/> is UpToDate, or null.</summary>
    private int? UpToDatePeer(int volume, bool forRead = false) =>
        connected.Where(p => links[p].State == ConnectionState.Connected && links[p].PeerDisks.GetValueOrDefault(volume) == DiskState.UpToDate
                && (!forRead || links[p].Settings.AllowRemoteRead))
            .Order().Select(p => (int?)p).FirstOrDefault();

    /// <summary>Starts reading [at, at+length) of the read: locally if allowed and UpToDate, else at a peer, else it fails.</summary>
    private void Dispatch(ClientReadState read, int at, int length, bool localAllowed)
    {
        var volume = volumes[read.Volume];
        if (localAllowed && volume.Disk == DiskState.UpToDate)
        {
            read.Outstanding++;
            io.ReadLocal(read.Volume, read.OffsetBytes + at, length, NewToken(new ClientReadIo(read, at, length)));
            return;
        }
        if (UpToDatePeer(read.Volume, forRead: true) is not int peer)
        {
            read.Failed = true; // none, or allow-remote-read no on every one that is
            return;
        }
        int pieceBytes = Math.Min(RemoteReadChunkBytes, links[peer].MaxFramePayloadBytes - DataReplyMessage.Size);
        for (int done = 0; done < length; done += pieceBytes)
        {
            int piece = Math.Min(pieceBytes, length - done);
            ulong id = nextRemoteReadId++;
            remoteReads[id] = new RemotePiece(read, peer, at + done, piece);
            read.Outstanding++;
            io.Send(peer, Frame((ushort)read.Volume, new DataRequestMessage((ulong)(read.OffsetBytes + at + done), (uint)piece, id)));
        }
    }

    /// <summary>One piece came back (or failed, or went elsewhere); the read completes with the last one.</summary>
    private void Settle(ClientReadState read)
    {
        read.Outstanding--;
        if (read.Outstanding > 0)
        {
            return;
        }
        io.CompleteClientRead(read.ClientToken, !read.Failed, read.Failed ? ReadOnlyMemory<byte>.Empty : read.Data);
    }

    /// <summary>A local read of a client's piece finished; a failed one is retried at a peer.</summary>
    private void ClientReadDone(ClientReadIo piece, bool succeeded, ReadOnlyMemory<byte> data)
    {
        var read = piece.Read;
        if (succeeded)
        {
            read.Fill(piece.At, data.Span); // the host's buffer is valid during this call only
        }
        else
        {
            io.Log($"{ResourceName}/{read.Volume}: local read error at {read.OffsetBytes + piece.At}; reading from a peer");
            Dispatch(read, piece.At, piece.LengthBytes, localAllowed: false);
        }
        Settle(read);
    }

    /// <summary>A DataReply or NegDReply from <paramref name="peer"/>. Untrusted: a reply nobody asked for drops the connection.</summary>
    private void ReceiveRemoteRead(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        ReadOnlySequence<byte> data = default;
        bool succeeded = header.Type == MessageType.DataReply;
        bool valid;
        string? error;
        ulong id;
        (ulong Offset, uint Length) range;
        Digest digest = default;
        if (succeeded)
        {
            valid = DataReplyMessage.TryRead(payload, out var reply, out data, out error);
            (id, range, digest) = (reply.RequestId, (reply.OffsetBytes, reply.LengthBytes), reply.IntegrityDigest);
        }
        else
        {
            valid = FramePayload.TryRead(payload, out NegDReplyMessage negative, out error);
            (id, range) = (negative.RequestId, (negative.OffsetBytes, negative.LengthBytes));
        }
        if (!valid || !remoteReads.TryGetValue(id, out var piece) || piece.Peer != peer || piece.Read.Volume != header.Volume
            || range.Offset != (ulong)(piece.Read.OffsetBytes + piece.At) || range.Length != (uint)piece.LengthBytes)
        {
            ProtocolError(peer, error ?? $"a {header.Type} for read {id}, which was not asked for");
            return;
        }
        ReadOnlySpan<byte> bytes = succeeded ? (data.IsSingleSegment ? data.FirstSpan : data.ToArray()) : default;
        if (succeeded && IntegrityFailure(peer, MessageType.DataReply, digest, bytes, range.Offset, range.Length) is { } damaged)
        {
            ProtocolError(peer, damaged); // the read goes to another peer or fails with the connection
            return;
        }
        remoteReads.Remove(id);
        if (succeeded)
        {
            piece.Read.Fill(piece.At, bytes);
        }
        else
        {
            io.Log($"{Subject(peer)}/{header.Volume}: the peer could not serve a read at {range.Offset}");
            piece.Read.Failed = true;
        }
        Settle(piece.Read);
    }

    /// <summary>The connection to <paramref name="peer"/> is gone: its pieces in flight go elsewhere, or fail.</summary>
    private void RedispatchRemoteReads(int peer)
    {
        foreach (var (id, piece) in remoteReads.Where(r => r.Value.Peer == peer).ToList())
        {
            remoteReads.Remove(id);
            Dispatch(piece.Read, piece.At, piece.LengthBytes, localAllowed: true);
            Settle(piece.Read);
        }
    }

    /// <summary>Serves a peer's DataRequest from the local disk, once writes to the same blocks have landed.</summary>
    private void OnDataRequest(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!FramePayload.TryRead(payload, out DataRequestMessage request, out string? error) || !volumes.TryGetValue(header.Volume, out var volume)
            || request.OffsetBytes + request.LengthBytes > (ulong)volume.AgreedSizeBytes
            || request.LengthBytes > (uint)(links[peer].MaxFramePayloadBytes - DataReplyMessage.Size))
        {
            ProtocolError(peer, error ?? $"DataRequest {request.OffsetBytes}+{request.LengthBytes} outside volume {header.Volume} or larger than a frame");
            return;
        }
        StartServedRead(new PeerReadIo(peer, receivers[peer], volume.Number, request));
    }

    /// <summary>A served read (resync or remote read) starts now, or waits behind writes to the same blocks.</summary>
    private void StartServedRead(ServedReadIo read)
    {
        if (read is PeerReadIo remote && volumes[read.Volume].Disk != DiskState.UpToDate)
        {
            io.Send(read.Peer, Frame((ushort)read.Volume, new NegDReplyMessage(remote.Request.OffsetBytes, remote.Request.LengthBytes, remote.Request.RequestId)));
            return;
        }
        if (WriteInFlight(read.Volume, read.OffsetBytes, read.LengthBytes))
        {
            deferredReads.Add(read);
            return;
        }
        io.ReadLocal(read.Volume, read.OffsetBytes, read.LengthBytes, NewToken(read));
    }

    /// <summary>A peer's DataRequest was read locally: the data goes back, if its connection still lives.</summary>
    private void PeerReadDone(PeerReadIo read, bool succeeded, ReadOnlyMemory<byte> data)
    {
        if (!IsCurrent(read.Peer, read.Connection))
        {
            return;
        }
        var request = read.Request;
        io.Send(read.Peer, succeeded
            ? Frame((ushort)read.Volume, new DataReplyMessage(request.OffsetBytes, request.LengthBytes, request.RequestId, IntegrityDigestFor(read.Peer, data.Span)), data.Span)
            : Frame((ushort)read.Volume, new NegDReplyMessage(request.OffsetBytes, request.LengthBytes, request.RequestId)));
    }

    /// <summary>
    /// Writes of any origin that may still change [offset, offset+length): a client's, a peer's
    /// (submitted, or received and held back), or a client's waiting for the resync. Served reads
    /// (resync, remote) and verify reads wait for them.
    /// </summary>
    private bool WriteInFlight(int volume, long offsetBytes, long lengthBytes)
    {
        bool Overlaps(int v, long o, long l) => v == volume && l > 0 && o < offsetBytes + lengthBytes && offsetBytes < o + l;
        return pendingIo.Values.Any(p => p switch
            {
                ClientIo c => Overlaps(c.Volume, c.OffsetBytes, c.LengthBytes),
                PeerWriteIo w => Overlaps(w.Volume, w.OffsetBytes, w.LengthBytes),
                _ => false,
            })
            || deferredClientWrites.Any(c => Overlaps(c.Volume, c.OffsetBytes, c.LengthBytes))
            || UndrainedReceivers.Any(r => r.WriteInFlight(volume, offsetBytes, lengthBytes));
    }

    /// <summary>Served reads that waited for writes: those whose writes have landed start now.</summary>
    private void RetryDeferredReads()
    {
        if (deferredReads.Count == 0)
        {
            return;
        }
        foreach (var read in deferredReads.ToList())
        {
            if (!WriteInFlight(read.Volume, read.OffsetBytes, read.LengthBytes))
            {
                deferredReads.Remove(read);
                if (IsCurrent(read.Peer, read.Connection))
                {
                    StartServedRead(read);
                }
            }
        }
    }

    private readonly List<ServedReadIo> deferredReads = [];

    /// <summary>One client read: its pieces land in <see cref="Data"/>; it completes when none is outstanding.</summary>
    private sealed class ClientReadState(long clientToken, int volume, long offsetBytes, int lengthBytes)
    {
        private byte[]? buffer;

        public long ClientToken { get; } = clientToken;
        public int Volume { get; } = volume;
        public long OffsetBytes { get; } = offsetBytes;
        public int LengthBytes { get; } = lengthBytes;
        public int Outstanding { get; set; }
        public bool Failed { get; set; }

        public ReadOnlyMemory<byte> Data => buffer;

        /// <summary>Copies a piece in (local reads come in pooled buffers the host takes back).</summary>
        public void Fill(int at, ReadOnlySpan<byte> data)
        {
            Invariant.Assert(at >= 0 && at + data.Length <= LengthBytes, "a read piece lies inside its read");
            buffer ??= new byte[LengthBytes];
            data.CopyTo(buffer.AsSpan(at));
        }
    }

    private sealed record RemotePiece(ClientReadState Read, int Peer, int At, int LengthBytes);

    private sealed record ClientReadIo(ClientReadState Read, int At, int LengthBytes) : PendingIo;

    /// <summary>A local read this node does for a peer (resync or remote read); stale once its connection is gone.</summary>
    private abstract record ServedReadIo(int Peer, PeerWriteReceiver Connection, int Volume, long OffsetBytes, int LengthBytes) : PendingIo;

    private sealed record PeerReadIo(int Peer, PeerWriteReceiver Connection, int Volume, DataRequestMessage Request)
        : ServedReadIo(Peer, Connection, Volume, (long)Request.OffsetBytes, (int)Request.LengthBytes);
}

using System.Buffers;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// Online verify, as DRBD does it (`drbdadm verify`): the node that starts is VerifyS, the peer
// agrees to become VerifyT (StateChangeRequest StartVerify). VerifyS asks for the verify-alg digest
// of one 4 KiB block at a time in disk order (OvRequest), paced like a resync; VerifyT reads its
// block and answers with its digest (OvReply); VerifyS reads its own, compares, and reports the
// result (OvResult). A mismatch marks the block out of sync in the peer's bitmap slot on both
// sides; verify itself repairs nothing — the next resync does. A block that a write touches while
// it is being compared is not judged (both copies are being replaced anyway), and a block is read
// only when no write to it is in flight here, so replication in progress is no false positive.
public sealed partial class Replica
{
    /// <summary>Each verify request is one bitmap block, as DRBD's are, so a mismatch marks exactly the blocks that differ.</summary>
    public const int VerifyRequestBytes = MetadataLayout.BytesPerBit;

    /// <summary>Largest verify request a VerifyT answers.</summary>
    private const long MaxVerifyRequestBytes = ResyncPlanner.DefaultMaxRequestBytes;

    /// <summary>Verify requests kept in flight, in bytes (both sides read and digest every block).</summary>
    public const long VerifyWindowBytes = 4L << 20;

    private const int SectorBytes = 512;

    private readonly Dictionary<(int Peer, int Volume), VerifyState> verifies = [];
    /// <summary>Where an interrupted verify stopped: the next one without a start offset resumes there (DRBD's ov_start_sector).</summary>
    private readonly Dictionary<(int Peer, int Volume), long> verifyResumeBytes = [];
    private readonly List<VerifyReadIo> deferredVerifyReads = [];

    /// <summary>Verifies stopped because a disk went away: their stragglers still on the wire are dropped.</summary>
    private readonly HashSet<(int Peer, int Volume)> abortedVerifies = [];
    private uint nextVerifyStartId = 1;

    /// <summary>
    /// `verify`: compares this node's copy with <paramref name="peerNodeId"/>'s from
    /// <paramref name="startOffsetBytes"/> (rounded down to a 4 KiB block; null resumes where an
    /// interrupted verify stopped, else 0) to the end. Needs a connection, Established replication,
    /// a verify-alg and data on both sides. Runs in the background; progress: <see cref="VerifyProgressOf"/>.
    /// </summary>
    public StateChangeResult StartVerify(int peerNodeId, int volume, long? startOffsetBytes = null)
    {
        var local = volumes[volume];
        var result = CanVerify(peerNodeId, local);
        if (result != StateChangeResult.Success)
        {
            return result;
        }
        if (links[peerNodeId].PeerDisks.GetValueOrDefault(volume) is not (DiskState.Inconsistent or DiskState.Outdated or DiskState.Consistent or DiskState.UpToDate))
        {
            return StateChangeResult.NoRemoteDisk;
        }
        long start = startOffsetBytes ?? verifyResumeBytes.GetValueOrDefault((peerNodeId, volume));
        start = Math.Max(0, start) / VerifyRequestBytes * VerifyRequestBytes;
        if (start >= local.AgreedSizeBytes)
        {
            return StateChangeResult.NothingToDo;
        }
        var verify = new VerifyState(source: true, receivers[peerNodeId], start / VerifyRequestBytes, local.AgreedSizeBytes / VerifyRequestBytes)
        {
            StartRequestId = nextVerifyStartId++,
            Controller = new ResyncRateController(local.ResyncRate),
        };
        verifies[(peerNodeId, volume)] = verify;
        abortedVerifies.Remove((peerNodeId, volume));
        SetReplication(peerNodeId, volume, ReplicationState.VerifyS);
        io.Log($"{Subject(peerNodeId)}/{volume}: Starting Online Verify from sector {start / SectorBytes}");
        links[peerNodeId].SendMessage(volume, new StateChangeRequestMessage(verify.StartRequestId, StateChangeKind.StartVerify, StateChangeRequestFlags.None, (ulong)start));
        Drain(peerNodeId);
        return StateChangeResult.Success;
    }

    /// <summary>Progress of an online verify with a peer (either side), or null when none runs.</summary>
    public VerifyProgress? VerifyProgressOf(int peerNodeId, int volume) =>
        verifies.TryGetValue((peerNodeId, volume), out var v)
            ? new VerifyProgress(v.Source, v.StartBit * VerifyRequestBytes, v.TotalBits, v.DoneBits, v.FoundBits)
            : null;

    private StateChangeResult CanVerify(int peer, ReplicaVolume volume)
    {
        if (!connected.Contains(peer))
        {
            return StateChangeResult.NoConnection;
        }
        if (links[peer].Settings.Protocol.VerifyAlg == DigestAlgorithm.None)
        {
            return StateChangeResult.NoVerifyAlg; // both sides agreed on it in ProtocolSettings
        }
        if (ReplicationOf(peer, volume.Number) != ReplicationState.Established)
        {
            return StateChangeResult.ResyncRunning;
        }
        return volume.HasLocalData ? StateChangeResult.Success : StateChangeResult.NoLocalDisk;
    }

    /// <summary>The peer asks this node to be VerifyT from <paramref name="startOffsetBytes"/> (already a 4 KiB multiple).</summary>
    private StateChangeResult BecomeVerifyTarget(int peer, ReplicaVolume volume, ulong startOffsetBytes)
    {
        var result = CanVerify(peer, volume);
        if (result != StateChangeResult.Success)
        {
            return result;
        }
        if (startOffsetBytes >= (ulong)volume.AgreedSizeBytes)
        {
            return StateChangeResult.NothingToDo;
        }
        long startBit = (long)startOffsetBytes / VerifyRequestBytes;
        abortedVerifies.Remove((peer, volume.Number));
        verifies[(peer, volume.Number)] = new VerifyState(source: false, receivers[peer], startBit, volume.AgreedSizeBytes / VerifyRequestBytes);
        SetReplication(peer, volume.Number, ReplicationState.VerifyT);
        io.Log($"{Subject(peer)}/{volume.Number}: Online Verify start sector: {startOffsetBytes / SectorBytes}");
        return StateChangeResult.Success;
    }

    /// <summary>The peer's answer to our StartVerify: go ahead, or back to Established. False when the reply is not about a verify.</summary>
    private bool VerifyStartAnswered(int peer, int volume, StateChangeReplyMessage reply)
    {
        if (!verifies.TryGetValue((peer, volume), out var verify) || !verify.Source || verify.Confirmed || verify.StartRequestId != reply.RequestId)
        {
            return false;
        }
        if (reply.Result == StateChangeResult.Success)
        {
            verify.Confirmed = true;
            return true;
        }
        verifies.Remove((peer, volume));
        io.Log($"{Subject(peer)}/{volume}: the peer refused online verify: {StateChangeResults.Describe(reply.Result)}");
        SetReplication(peer, volume, ReplicationState.Established);
        return true;
    }

    private static bool IsVerify(MessageType type) => type is MessageType.OvRequest or MessageType.OvReply or MessageType.OvResult;

    private void ReceiveVerify(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!volumes.TryGetValue(header.Volume, out var volume) || !verifies.TryGetValue((peer, header.Volume), out var verify))
        {
            if (abortedVerifies.Contains((peer, header.Volume)))
            {
                return; // sent before the peer learned that a disk went away
            }
            ProtocolError(peer, $"{header.Type} for volume {header.Volume}, which is not verifying");
            return;
        }
        string? error = header.Type switch
        {
            MessageType.OvRequest => FramePayload.TryRead(payload, out OvRequestMessage m, out var e) ? OnVerifyRequest(peer, volume, verify, m) : e,
            MessageType.OvReply => FramePayload.TryRead(payload, out OvReplyMessage m, out var e) ? OnVerifyReply(peer, volume, verify, m) : e,
            MessageType.OvResult => FramePayload.TryRead(payload, out OvResultMessage m, out var e) ? OnVerifyResult(peer, volume, verify, m) : e,
            _ => $"{header.Type} is not a verify message",
        };
        if (error is not null)
        {
            ProtocolError(peer, error);
        }
    }

    /// <summary>VerifyT: read the block (once no write to it is in flight) and answer with its digest.</summary>
    private string? OnVerifyRequest(int peer, ReplicaVolume volume, VerifyState verify, OvRequestMessage request)
    {
        if (verify.Source || request.LengthBytes > MaxVerifyRequestBytes || request.OffsetBytes + request.LengthBytes > (ulong)volume.AgreedSizeBytes)
        {
            return $"OvRequest {request.OffsetBytes}+{request.LengthBytes} out of place or range";
        }
        StartVerifyRead(new VerifyReadIo(peer, verify, volume.Number, request.OffsetBytes, request.LengthBytes, request.RequestId, PeerDigest: null));
        return null;
    }

    /// <summary>VerifyS: the peer's digest of a block we asked for; read ours to compare.</summary>
    private string? OnVerifyReply(int peer, ReplicaVolume volume, VerifyState verify, OvReplyMessage reply)
    {
        if (!verify.Source || !verify.InFlight.TryGetValue((long)reply.RequestId, out var request) || request.Comparing
            || reply.OffsetBytes != reply.RequestId * VerifyRequestBytes || reply.LengthBytes != VerifyRequestBytes)
        {
            return $"an OvReply for request {reply.RequestId}, which was not asked for";
        }
        var algorithm = links[peer].Settings.Protocol.VerifyAlg;
        if (reply.Digest.LengthBytes != DigestAlgorithms.LengthBytes(algorithm))
        {
            return $"an OvReply digest of {reply.Digest.LengthBytes} bytes for verify-alg {DigestAlgorithms.Name(algorithm)}";
        }
        request.Comparing = true;
        StartVerifyRead(new VerifyReadIo(peer, verify, volume.Number, reply.OffsetBytes, reply.LengthBytes, reply.RequestId, reply.Digest));
        return null;
    }

    /// <summary>VerifyT: the outcome VerifyS found; a mismatch is marked here too.</summary>
    private string? OnVerifyResult(int peer, ReplicaVolume volume, VerifyState verify, OvResultMessage result)
    {
        if (verify.Source || result.OffsetBytes + result.LengthBytes > (ulong)volume.AgreedSizeBytes)
        {
            return $"OvResult {result.OffsetBytes}+{result.LengthBytes} out of place or range";
        }
        RecordVerifyResult(peer, volume, verify, (long)result.OffsetBytes, result.LengthBytes, result.InSync);
        FinishVerifyIfDone(peer, volume, verify);
        return null;
    }

    private void StartVerifyRead(VerifyReadIo read)
    {
        if (WriteInFlight(read.Volume, (long)read.OffsetBytes, read.LengthBytes))
        {
            deferredVerifyReads.Add(read);
            return;
        }
        io.ReadLocal(read.Volume, (long)read.OffsetBytes, (int)read.LengthBytes, NewToken(read));
    }

    /// <summary>A verify read finished: VerifyT answers with its digest, VerifyS compares and reports.</summary>
    private void VerifyReadDone(VerifyReadIo read, bool succeeded, ReadOnlySpan<byte> data)
    {
        if (!verifies.TryGetValue((read.Peer, read.Volume), out var verify) || !ReferenceEquals(verify, read.Verify) || !IsCurrent(read.Peer, verify.Connection))
        {
            return; // the verify or its connection is gone
        }
        var algorithm = links[read.Peer].Settings.Protocol.VerifyAlg;
        if (read.PeerDigest is not { } theirs)
        {
            // A block that cannot be read answers with zeroes, which no real digest matches (as DRBD does).
            var digest = succeeded ? Digest.Compute(algorithm, data) : new Digest(new byte[DigestAlgorithms.LengthBytes(algorithm)]);
            io.Send(read.Peer, Frame((ushort)read.Volume, new OvReplyMessage(read.OffsetBytes, read.LengthBytes, read.RequestId, digest)));
            return;
        }
        Invariant.Assert(verify.InFlight.Remove((long)read.RequestId, out var request), $"verify request {read.RequestId} is compared once");
        bool inSync = request.Overtaken || (succeeded && Digest.Compute(algorithm, data) == theirs);
        var volume = volumes[read.Volume];
        RecordVerifyResult(read.Peer, volume, verify, (long)read.OffsetBytes, read.LengthBytes, inSync);
        verify.CompletedBytes += read.LengthBytes;
        io.Send(read.Peer, Frame((ushort)read.Volume, new OvResultMessage(read.OffsetBytes, read.LengthBytes, read.RequestId, inSync)));
        FinishVerifyIfDone(read.Peer, volume, verify);
    }

    /// <summary>Counts a block's outcome; a mismatch goes into the peer's bitmap and the out-of-sync runs logged at the end.</summary>
    private static void RecordVerifyResult(int peer, ReplicaVolume volume, VerifyState verify, long offsetBytes, long lengthBytes, bool inSync)
    {
        long bits = lengthBytes / VerifyRequestBytes;
        verify.DoneBits += bits;
        if (!inSync)
        {
            volume.Bitmaps.MarkOutOfSync(volume.SlotOfPeer[peer], offsetBytes, lengthBytes);
            verify.FoundBits += bits;
            verify.AddRun(offsetBytes / VerifyRequestBytes, bits);
        }
    }

    /// <summary>DRBD's "Out of sync: start=, size= (sectors)" for each run of adjacent blocks found (results arrive in any order).</summary>
    private void LogOutOfSyncRuns(int peer, ReplicaVolume volume, VerifyState verify)
    {
        const int MaxLines = 100;
        var runs = verify.Runs.OrderBy(r => r.Key).ToList();
        foreach (var (firstBit, endBit) in runs.Take(MaxLines))
        {
            io.Log($"{Subject(peer)}/{volume.Number}: Out of sync: start={firstBit * VerifyRequestBytes / SectorBytes}, size={(endBit - firstBit) * VerifyRequestBytes / SectorBytes} (sectors)");
        }
        if (runs.Count > MaxLines)
        {
            io.Log($"{Subject(peer)}/{volume.Number}: ... and {runs.Count - MaxLines} more out-of-sync runs");
        }
    }

    /// <summary>VerifyS when every block had its result, VerifyT when it has heard them all: log DRBD's summary, back to Established.</summary>
    private void FinishVerifyIfDone(int peer, ReplicaVolume volume, VerifyState verify)
    {
        bool done = verify.Source ? verify.NextBit >= verify.BitCount && verify.InFlight.Count == 0 : verify.DoneBits >= verify.TotalBits;
        if (!done)
        {
            return;
        }
        LogOutOfSyncRuns(peer, volume, verify);
        verifies.Remove((peer, volume.Number));
        verifyResumeBytes.Remove((peer, volume.Number));
        long seconds = verify.StartedMs < 0 ? 0 : (verify.LatestMs - verify.StartedMs) / 1000;
        long kibPerSecond = verify.TotalBits * (VerifyRequestBytes / 1024) / Math.Max(1, seconds);
        io.Log($"{Subject(peer)}/{volume.Number}: Online verify done (total {seconds} sec; paused 0 sec; {kibPerSecond} K/sec)");
        long outOfSync = volume.OutOfSyncBytes(peer) / VerifyRequestBytes; // DRBD reports the bitmap's weight
        if (outOfSync > 0)
        {
            io.Log($"{Subject(peer)}/{volume.Number}: Online verify found {outOfSync} 4k block out of sync!");
        }
        SetReplication(peer, volume.Number, ReplicationState.Established);
    }

    /// <summary>Every tick: each VerifyS asks its rate controller how much it may request now, within the resync window.</summary>
    private void VerifyTurns(long nowMs)
    {
        if (verifies.Count == 0)
        {
            return;
        }
        foreach (var ((peer, number), verify) in verifies.ToList())
        {
            verify.StartedMs = verify.StartedMs < 0 ? nowMs : verify.StartedMs;
            verify.LatestMs = nowMs;
            if (!verify.Source || !verify.Confirmed)
            {
                continue;
            }
            if (verify.LastTurnMs < 0)
            {
                verify.LastTurnMs = nowMs - ResyncRateController.StepMs;
            }
            long elapsedMs = nowMs - verify.LastTurnMs;
            if (elapsedMs < ResyncRateController.StepMs)
            {
                continue;
            }
            verify.LastTurnMs = nowMs;
            bool applicationIo = activeClientRanges.Count > 0 || (receivers.TryGetValue(peer, out var receiver) && receiver.ActiveWrites > 0);
            long inFlightBytes = (long)verify.InFlight.Count * VerifyRequestBytes;
            long budget = verify.Controller!.NextTurn(elapsedMs, verify.CompletedBytes, inFlightBytes, applicationIo);
            verify.CompletedBytes = 0;
            SendVerifyRequests(peer, volumes[number], verify, Math.Min(budget, Math.Max(0, VerifyWindowBytes - inFlightBytes)));
        }
    }

    private void SendVerifyRequests(int peer, ReplicaVolume volume, VerifyState verify, long budgetBytes)
    {
        for (; budgetBytes >= VerifyRequestBytes && verify.NextBit < verify.BitCount; budgetBytes -= VerifyRequestBytes)
        {
            long bit = verify.NextBit++;
            verify.InFlight[bit] = new VerifyRequest();
            // The request id is the block number: unique within the verify, and it names the block.
            io.Send(peer, Frame((ushort)volume.Number, new OvRequestMessage((ulong)(bit * VerifyRequestBytes), VerifyRequestBytes, (ulong)bit)));
        }
        FinishVerifyIfDone(peer, volume, verify);
    }

    /// <summary>
    /// A write to <paramref name="volume"/> starts here (a client write on a Primary, a peer's write on
    /// a Secondary): a block VerifyS is comparing may now differ between the two reads — it is not judged.
    /// </summary>
    private void VerifyWriteArrived(int volume, long offsetBytes, long lengthBytes)
    {
        if (verifies.Count == 0 || lengthBytes <= 0)
        {
            return;
        }
        long first = offsetBytes / VerifyRequestBytes;
        long end = (offsetBytes + lengthBytes + VerifyRequestBytes - 1) / VerifyRequestBytes;
        foreach (var ((_, number), verify) in verifies)
        {
            if (number != volume || !verify.Source)
            {
                continue;
            }
            if (end - first <= verify.InFlight.Count)
            {
                for (long bit = first; bit < end; bit++)
                {
                    if (verify.InFlight.TryGetValue(bit, out var request))
                    {
                        request.Overtaken = true;
                    }
                }
                continue;
            }
            foreach (var (bit, request) in verify.InFlight)
            {
                request.Overtaken |= bit >= first && bit < end;
            }
        }
    }

    /// <summary>A local write completed: verify reads of those blocks that waited may go now.</summary>
    private void RetryDeferredVerifyReads()
    {
        foreach (var read in deferredVerifyReads.ToList())
        {
            if (!WriteInFlight(read.Volume, (long)read.OffsetBytes, read.LengthBytes))
            {
                deferredVerifyReads.Remove(read);
                if (verifies.TryGetValue((read.Peer, read.Volume), out var verify) && ReferenceEquals(verify, read.Verify))
                {
                    io.ReadLocal(read.Volume, (long)read.OffsetBytes, (int)read.LengthBytes, NewToken(read));
                }
            }
        }
    }

    /// <summary>
    /// A disk under a verify went away (this node's or the peer's): the verify ends, as DRBD's
    /// sanitize_state ends any verify when a disk fails; what it found stays marked.
    /// </summary>
    private void AbortVerify(int peer, ReplicaVolume volume, string why)
    {
        if (!verifies.Remove((peer, volume.Number), out var verify))
        {
            return;
        }
        abortedVerifies.Add((peer, volume.Number));
        deferredVerifyReads.RemoveAll(r => r.Peer == peer && r.Volume == volume.Number);
        LogOutOfSyncRuns(peer, volume, verify);
        SetReplication(peer, volume.Number, ReplicationState.Established);
        io.Log($"{Subject(peer)}/{volume.Number}: online verify stopped: {why}");
    }

    /// <summary>The connection is gone: every verify with the peer stops, remembering where (DRBD: "Online Verify reached sector").</summary>
    private void StopVerifies(int peer)
    {
        abortedVerifies.RemoveWhere(k => k.Peer == peer);
        foreach (var ((p, number), verify) in verifies.Where(v => v.Key.Peer == peer).ToList())
        {
            long reachedBit = verify.Source
                ? Math.Min(verify.NextBit, verify.InFlight.Count > 0 ? verify.InFlight.Keys.Min() : long.MaxValue)
                : Math.Min(verify.BitCount, verify.StartBit + verify.DoneBits);
            verifies.Remove((p, number));
            LogOutOfSyncRuns(peer, volumes[number], verify);
            verifyResumeBytes[(p, number)] = reachedBit * VerifyRequestBytes;
            io.Log($"{Subject(peer)}/{number}: Online Verify reached sector {reachedBit * VerifyRequestBytes / SectorBytes}");
        }
        deferredVerifyReads.RemoveAll(r => r.Peer == peer);
    }

    /// <summary>One peer-volume online verify in progress (either side).</summary>
    private sealed class VerifyState(bool source, PeerWriteReceiver connection, long startBit, long bitCount)
    {
        public bool Source { get; } = source;
        /// <summary>The connection the verify runs on; completions for an older one are dropped.</summary>
        public PeerWriteReceiver Connection { get; } = connection;
        public long StartBit { get; } = startBit;
        public long BitCount { get; } = bitCount;
        public long TotalBits => BitCount - StartBit;
        /// <summary>VerifyS: the next block to ask for.</summary>
        public long NextBit { get; set; } = startBit;
        /// <summary>Blocks with a result.</summary>
        public long DoneBits { get; set; }
        /// <summary>Blocks this verify found out of sync.</summary>
        public long FoundBits { get; set; }
        /// <summary>VerifyS: the StateChangeRequest id of StartVerify, and whether the peer agreed.</summary>
        public uint StartRequestId { get; init; }
        public bool Confirmed { get; set; }
        /// <summary>VerifyS: requests without a result, by block number.</summary>
        public Dictionary<long, VerifyRequest> InFlight { get; } = [];
        public ResyncRateController? Controller { get; set; }
        public long LastTurnMs { get; set; } = -1;
        public long CompletedBytes { get; set; }
        public long StartedMs { get; set; } = -1;
        public long LatestMs { get; set; }
        /// <summary>Runs of adjacent blocks found out of sync, first bit → end bit (exclusive).</summary>
        public Dictionary<long, long> Runs { get; } = [];
        private readonly Dictionary<long, long> runStartByEnd = [];

        /// <summary>Adds [firstBit, firstBit+bits) to the runs, joining the runs it touches.</summary>
        public void AddRun(long firstBit, long bits)
        {
            long start = firstBit;
            long end = firstBit + bits;
            if (runStartByEnd.Remove(start, out long before))
            {
                Runs.Remove(before);
                start = before;
            }
            if (Runs.Remove(end, out long after))
            {
                runStartByEnd.Remove(after);
                end = after;
            }
            Runs[start] = end;
            runStartByEnd[end] = start;
        }
    }

    private sealed class VerifyRequest
    {
        /// <summary>Its digest reply arrived and our own read is under way.</summary>
        public bool Comparing { get; set; }
        /// <summary>A write touched the block while it was being compared: not judged.</summary>
        public bool Overtaken { get; set; }
    }

    /// <summary>A verify read: VerifyT's (no <paramref name="PeerDigest"/>; answer with ours) or VerifyS's (compare with the peer's).</summary>
    private sealed record VerifyReadIo(int Peer, VerifyState Verify, int Volume, ulong OffsetBytes, uint LengthBytes, ulong RequestId, Digest? PeerDigest) : PendingIo;
}

/// <summary>Progress of an online verify, as `status` shows it (`done:`).</summary>
/// <param name="Source">True on VerifyS, false on VerifyT.</param>
/// <param name="StartOffsetBytes">Where the verify started.</param>
/// <param name="TotalBits">4 KiB blocks from the start to the end of the volume.</param>
/// <param name="DoneBits">Blocks compared so far.</param>
/// <param name="FoundBits">Blocks this verify found out of sync.</param>
public sealed record VerifyProgress(bool Source, long StartOffsetBytes, long TotalBits, long DoneBits, long FoundBits)
{
    /// <summary>`done:` of drbdadm status, 0..100.</summary>
    public double DonePercent => TotalBits == 0 ? 100.0 : Math.Min(100.0, DoneBits * 100.0 / TotalBits);
}

using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// Fencing, as DRBD 9 does it between two nodes (drbd_nl.c conn_try_outdate_peer, drbd_state.c):
// a Primary that loses a peer with `fencing resource-only` or `resource-and-stonith` runs
// fence-peer, whose exit code says what it achieved — 3 the peer is Inconsistent, 4 Outdated,
// 5 unreachable (Outdated if this disk is UpToDate), 6 the peer is Primary (this node outdates
// itself), 7 STONITHed; anything else means a broken handler. What it found is persisted
// (MDF_PEER_OUTDATED), so promotion, status and a restart know the peer is Outdated while apart.
// resource-and-stonith freezes application I/O from the loss until the peer is known Outdated,
// the connection is back, or `resume-io`; the new current UUID waits with it, so a broken handler
// leaves I/O frozen and the UUIDs untouched. A `disconnect` between a Primary and a Secondary
// outdates the Secondary on both sides without the handler (DRBD 9's outdate_on_disconnect).
// Deviations: reads are not suspended (they cannot make the copies diverge); writes lost in flight
// at the loss cannot be resent here as DRBD resends them, so then the new UUID is made at once.
public sealed partial class Replica
{
    private const string ResourceAndStonith = "resource-and-stonith";
    private readonly Dictionary<long, FenceCall> fenceCalls = [];
    private readonly Dictionary<int, long> connectionsMade = [];
    private readonly HashSet<int> suspendedFencing = [];
    private readonly List<QueuedClientRequest> suspendedRequests = [];
    private readonly List<(long ClientToken, bool Succeeded)> heldCompletions = [];

    /// <summary>Application I/O is frozen by fencing (DRBD's susp-fen): `status` shows suspended:fencing.</summary>
    public bool SuspendedFencing => suspendedFencing.Count > 0;

    /// <summary>A new current UUID waits for fencing to succeed, or for `resume-io` (DRBD's NEW_CUR_UUID).</summary>
    public bool NewCurrentUuidPending { get; private set; }

    /// <summary>The peer's disk as this node knows it: the peer's word while connected, fencing's while apart, else DUnknown.</summary>
    public DiskState PeerDiskOf(int peerNodeId, int volume) =>
        links[peerNodeId].State == ConnectionState.Connected
            ? links[peerNodeId].PeerDisks.GetValueOrDefault(volume, DiskState.DUnknown)
            : volumes[volume].FencedPeerDisks.GetValueOrDefault(peerNodeId, DiskState.DUnknown);

    /// <summary>
    /// fence-peer for a promotion (DRBD's SS_PRIMARY_NOP path) against a peer that is not connected.
    /// Returns the handler's token — its outcome is applied when the host reports the exit code — or
    /// 0 when the outcome is applied already (no handler configured: DRBD's drbdadm then exits 0,
    /// which counts as a broken handler).
    /// </summary>
    public long FencePeer(int peerNodeId) => StartFencePeer(peerNodeId);

    /// <summary>resume-io: I/O frozen by fencing goes on; a pending new current UUID is made first.</summary>
    public StateChangeResult ResumeIo()
    {
        if (!SuspendedFencing)
        {
            return StateChangeResult.NothingToDo;
        }
        if (NewCurrentUuidPending && Role == Role.Primary)
        {
            StartPendingGeneration();
        }
        NewCurrentUuidPending = false;
        suspendedFencing.Clear();
        io.Log($"{ResourceName}: susp-io( fencing -> no ) by resume-io");
        ReleaseSuspendedIo();
        return StateChangeResult.Success;
    }

    /// <summary>
    /// The connection to <paramref name="peer"/> ended (after the data path let go of it). True when
    /// the new data generation must wait for fencing (resource-and-stonith).
    /// </summary>
    private bool FencingOnConnectionLost(int peer, Role? gracefulPeerRole, bool lostUnacked)
    {
        string fencing = links[peer].Settings.Fencing;
        if (fencing == "dont-care")
        {
            return false;
        }
        if (gracefulPeerRole is { } peerRole && peerRole != Role)
        {
            if (Role == Role.Primary)
            {
                SetFencedPeer(peer, DiskState.Outdated); // the Secondary outdates itself on its side
            }
            else if (peerRole == Role.Primary)
            {
                io.Log($"{Subject(peer)}: disconnected from the Primary: outdating myself");
                OutdateLocalDisks();
            }
            return false;
        }
        // DRBD fences only for data worth protecting (conn_highest_disk >= D_CONSISTENT).
        if (Role != Role.Primary || !volumes.Values.Any(v => v.Disk >= DiskState.Consistent))
        {
            return false;
        }
        bool stonith = fencing == ResourceAndStonith;
        bool defer = stonith && !lostUnacked;
        if (stonith && suspendedFencing.Add(peer))
        {
            io.Log($"{ResourceName}: susp-io( no -> fencing )");
        }
        if (stonith && lostUnacked)
        {
            io.Log($"{Subject(peer)}: writes in flight were lost with the connection: new current UUID now");
        }
        NewCurrentUuidPending |= defer;
        StartFencePeer(peer);
        return defer;
    }

    /// <summary>
    /// A handshake with <paramref name="peer"/> completed: the peer speaks for its disk again, and
    /// I/O frozen for its loss resumes without a new current UUID (DRBD: "case2", the connection
    /// was established again). Runs after the data path took the peer back.
    /// </summary>
    private void FencingOnConnected(int peer)
    {
        connectionsMade[peer] = connectionsMade.GetValueOrDefault(peer) + 1;
        SetFencedPeer(peer, null);
        if (!suspendedFencing.Remove(peer))
        {
            return;
        }
        io.Log($"{Subject(peer)}: connection re-established while fencing");
        if (suspendedFencing.Count == 0)
        {
            NewCurrentUuidPending = false;
            io.Log($"{ResourceName}: susp-io( fencing -> no )");
            ReleaseSuspendedIo();
        }
    }

    private long StartFencePeer(int peer)
    {
        long token = nextToken++;
        var call = new FenceCall(peer, connectionsMade.GetValueOrDefault(peer));
        fenceCalls[token] = call;
        if (io.RunHandler("fence-peer", peer, -1, token))
        {
            return token;
        }
        fenceCalls.Remove(token);
        FencePeerDone(call, 0);
        return 0;
    }

    /// <summary>fence-peer returned: DRBD's reading of the exit code.</summary>
    private void FencePeerDone(FenceCall call, int exitCode)
    {
        int peer = call.Peer;
        if (links[peer].State == ConnectionState.Connected || connectionsMade.GetValueOrDefault(peer) != call.Connection)
        {
            io.Log($"{Subject(peer)}: Ignoring fence-peer exit code {exitCode}: the connection was re-established meanwhile");
            return;
        }
        string meaning;
        switch (exitCode)
        {
            case 3:
                meaning = "peer is inconsistent or worse";
                SetFencedPeer(peer, DiskState.Inconsistent);
                break;
            case 4:
                meaning = "peer was fenced";
                SetFencedPeer(peer, DiskState.Outdated);
                break;
            case 5 when volumes.Values.Any(v => v.Disk == DiskState.UpToDate):
                meaning = "peer is unreachable, assumed to be dead";
                SetFencedPeer(peer, DiskState.Outdated);
                break;
            case 5:
                meaning = "peer unreachable, doing nothing since disk != UpToDate";
                break;
            case 6:
                meaning = "peer is active";
                io.Log($"{Subject(peer)}: Peer is primary, outdating myself.");
                OutdateLocalDisks();
                break;
            case 7:
                if (links[peer].Settings.Fencing != ResourceAndStonith)
                {
                    io.Log($"{Subject(peer)}: fence-peer() = 7 && fencing != Stonith !!!");
                }
                meaning = "peer was stonithed";
                SetFencedPeer(peer, DiskState.Outdated);
                break;
            default:
                io.Log($"{Subject(peer)}: fence-peer helper broken, returned {exitCode}");
                return; // I/O stays frozen, if it was
        }
        io.Log($"{Subject(peer)}: fence-peer helper returned {exitCode} ({meaning})");
        MaybeResumeAfterFencing(peer);
    }

    /// <summary>Every volume of the peer is Outdated or worse now: the new UUID, then the I/O (DRBD's "case1").</summary>
    private void MaybeResumeAfterFencing(int peer)
    {
        if (!suspendedFencing.Contains(peer) || volumes.Keys.Any(v => PeerDiskOf(peer, v) > DiskState.Outdated))
        {
            return;
        }
        if (NewCurrentUuidPending && Role == Role.Primary)
        {
            StartPendingGeneration();
        }
        NewCurrentUuidPending = false;
        suspendedFencing.Remove(peer);
        if (suspendedFencing.Count == 0)
        {
            io.Log($"{ResourceName}: susp-io( fencing -> no )");
            ReleaseSuspendedIo();
        }
    }

    private void StartPendingGeneration()
    {
        foreach (var volume in volumes.Values.Where(v => v.HasLocalData))
        {
            StartNewGeneration(volume);
        }
    }

    /// <summary>Records what fencing found about the peer's disks (never better than known already), or forgets it (null).</summary>
    private void SetFencedPeer(int peer, DiskState? disk)
    {
        foreach (var volume in volumes.Values)
        {
            var next = disk is { } d && volume.FencedPeerDisks.TryGetValue(peer, out var before) && before < d ? before : disk;
            if (volume.SetFencedPeerDisk(peer, next))
            {
                if (next is { } known)
                {
                    io.Log($"{Subject(peer)}/{volume.Number}: pdsk( DUnknown -> {known} )");
                }
                io.PersistVolume(volume.Number);
            }
        }
    }

    /// <summary>This node's data is not the newest: Consistent stays, WasUpToDate goes (persisted), peers are told.</summary>
    private void OutdateLocalDisks()
    {
        foreach (var volume in volumes.Values.Where(v => v.Disk is DiskState.UpToDate or DiskState.Consistent))
        {
            volume.Flags = (volume.Flags | MetadataFlags.Consistent) & ~MetadataFlags.WasUpToDate;
            SetDisk(volume, DiskState.Outdated);
        }
    }

    /// <summary>Demoted while frozen: nothing left to protect; queued requests fail (not Primary), held ones complete.</summary>
    private void EndSuspensionOnDemotion()
    {
        if (!SuspendedFencing)
        {
            return;
        }
        suspendedFencing.Clear();
        NewCurrentUuidPending = false;
        io.Log($"{ResourceName}: susp-io( fencing -> no ): no longer Primary");
        ReleaseSuspendedIo();
    }

    /// <summary>Completions held while frozen are reported, then the requests that arrived meanwhile start, in order.</summary>
    private void ReleaseSuspendedIo()
    {
        var held = heldCompletions.ToList();
        heldCompletions.Clear();
        foreach (var (clientToken, succeeded) in held)
        {
            io.CompleteClient(clientToken, succeeded);
        }
        var queued = suspendedRequests.ToList();
        suspendedRequests.Clear();
        foreach (var request in queued)
        {
            Admit(request);
        }
    }

    /// <summary>A client request is done: reported now, or once I/O is no longer frozen.</summary>
    private void CompleteClient(long clientToken, bool succeeded)
    {
        if (SuspendedFencing)
        {
            heldCompletions.Add((clientToken, succeeded));
        }
        else
        {
            io.CompleteClient(clientToken, succeeded);
        }
    }

    private string ResourceName => links.Values.First().Settings.ResourceName;

    /// <summary>A fence-peer run: which peer, and which connection of it (DRBD's last_reconnect_jif).</summary>
    private sealed record FenceCall(int Peer, long Connection);
}

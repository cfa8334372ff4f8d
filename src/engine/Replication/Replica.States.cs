using System.Buffers;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// State changes while connected, as DRBD makes them without a new handshake: the role and disk
// states a peer must learn (P_STATE), a full resync one side asks for (invalidate,
// invalidate-remote, a forced promotion over an Inconsistent peer) and pausing a resync.
public sealed partial class Replica
{
    /// <summary>The role follows the resource's state machine (promotion rules live there); peers learn it at once.</summary>
    public void SetRole(Role role)
    {
        if (Role == role)
        {
            return;
        }
        Role = role;
        AnnounceState();
    }

    /// <summary>
    /// The resource changed a volume's local state (a promotion made it UpToDate with a new current
    /// UUID, a detach made it Diskless, an attach brought it back): adopt it and tell the peers.
    /// The host has already persisted it.
    /// </summary>
    public void AdoptLocal(int volumeNumber, GenerationIds ids, MetadataFlags flags, DiskState disk)
    {
        var volume = volumes[volumeNumber];
        bool hadDisk = volume.HasLocalData || volume.Disk == DiskState.Negotiating;
        volume.Ids = ids;
        volume.Flags = flags;
        volume.Disk = disk;
        if (hadDisk && !volume.HasLocalData && disk != DiskState.Negotiating)
        {
            LocalDiskGone(volume);
        }
        AnnounceState();
    }

    /// <summary>
    /// invalidate-remote (and a forced promotion over an Inconsistent peer): this node becomes the
    /// full sync source of <paramref name="peerNodeId"/>. Needs a connection and UpToDate data here.
    /// </summary>
    public StateChangeResult StartFullSyncAsSource(int peerNodeId, int volumeNumber)
    {
        var volume = volumes[volumeNumber];
        if (!connected.Contains(peerNodeId))
        {
            return StateChangeResult.NoConnection;
        }
        if (volume.Disk != DiskState.UpToDate)
        {
            return StateChangeResult.NoUpToDateDisk;
        }
        if (syncs.ContainsKey((peerNodeId, volumeNumber)))
        {
            return StateChangeResult.ResyncRunning;
        }
        // The target ends the resync with the source's UUIDs as they are now: send them first.
        links[peerNodeId].AnnounceUuids(volumeNumber);
        links[peerNodeId].SendMessage(volumeNumber, new StateChangeRequestMessage(0, StateChangeKind.InvalidatePeer, StateChangeRequestFlags.None, 0));
        Drain(peerNodeId); // the request goes out before the bitmap, which StartSync sends directly
        StartSync(peerNodeId, volume, ReplicationState.WFBitMapS, fullSync: true, ConnectedPeerUuids(peerNodeId, volumeNumber));
        Drain(peerNodeId);
        return StateChangeResult.Success;
    }

    /// <summary>
    /// invalidate: this node's copy is discarded and fully resynced from <paramref name="peerNodeId"/>.
    /// The disk is Inconsistent from now on; the peer starts the resync as source.
    /// </summary>
    public StateChangeResult Invalidate(int peerNodeId, int volumeNumber)
    {
        var volume = volumes[volumeNumber];
        if (!connected.Contains(peerNodeId))
        {
            return StateChangeResult.NoConnection;
        }
        if (Role == Role.Primary)
        {
            return StateChangeResult.IsPrimary;
        }
        if (!volume.HasLocalData)
        {
            return StateChangeResult.NoLocalDisk;
        }
        if (links[peerNodeId].PeerDisks.GetValueOrDefault(volumeNumber) != DiskState.UpToDate)
        {
            return StateChangeResult.NoUpToDateDisk;
        }
        if (syncs.ContainsKey((peerNodeId, volumeNumber)))
        {
            return StateChangeResult.ResyncRunning;
        }
        volume.Flags &= ~MetadataFlags.Consistent;
        SetDisk(volume, DiskState.Inconsistent);
        links[peerNodeId].SendMessage(volumeNumber, new StateChangeRequestMessage(0, StateChangeKind.InvalidateSelf, StateChangeRequestFlags.None, 0));
        Drain(peerNodeId);
        return StateChangeResult.Success;
    }

    /// <summary>pause-sync / resume-sync: holds a resync with the peer (either side may), or lets it go on.</summary>
    public StateChangeResult PauseSync(int peerNodeId, int volumeNumber, bool pause)
    {
        if (!syncs.TryGetValue((peerNodeId, volumeNumber), out var sync) || sync.PausedHere == pause)
        {
            return StateChangeResult.NothingToDo;
        }
        sync.PausedHere = pause;
        links[peerNodeId].SendMessage(volumeNumber, new StateChangeRequestMessage(0, pause ? StateChangeKind.PauseSync : StateChangeKind.ResumeSync, StateChangeRequestFlags.None, 0));
        UpdatePaused(peerNodeId, volumes[volumeNumber], sync);
        Drain(peerNodeId);
        return StateChangeResult.Success;
    }

    private static bool IsStateChange(MessageType type) => type is MessageType.StateChangeRequest or MessageType.StateChangeReply;

    /// <summary>A peer's request on an established connection. Untrusted: a malformed one drops the connection.</summary>
    private void ReceiveStateChange(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (header.Type == MessageType.StateChangeReply)
        {
            if (!FramePayload.TryRead(payload, out StateChangeReplyMessage reply, out string? replyError))
            {
                ProtocolError(peer, replyError!);
            }
            else if (!reply.Result.IsSuccess())
            {
                io.Log($"{Subject(peer)}/{header.Volume}: the peer refused: {StateChangeResults.Describe(reply.Result)}");
            }
            return;
        }
        if (!FramePayload.TryRead(payload, out StateChangeRequestMessage request, out string? error) || !volumes.TryGetValue(header.Volume, out var volume))
        {
            ProtocolError(peer, error ?? $"a state change for volume {header.Volume}, which is not configured here");
            return;
        }
        var result = request.Kind switch
        {
            StateChangeKind.InvalidatePeer => BecomeFullSyncTarget(peer, volume),
            StateChangeKind.InvalidateSelf => StartFullSyncAsSource(peer, volume.Number),
            StateChangeKind.PauseSync or StateChangeKind.ResumeSync => PausedByPeer(peer, volume, request.Kind == StateChangeKind.PauseSync),
            _ => StateChangeResult.NothingToDo,
        };
        if (!result.IsSuccess())
        {
            io.Log($"{Subject(peer)}/{volume.Number}: refused the peer's {request.Kind}: {StateChangeResults.Describe(result)}");
            links[peer].SendMessage(volume.Number, new StateChangeReplyMessage(request.RequestId, result));
        }
    }

    /// <summary>The peer is going to be our full sync source (it was invalidated-remote, or we were invalidated).</summary>
    private StateChangeResult BecomeFullSyncTarget(int peer, ReplicaVolume volume)
    {
        if (Role == Role.Primary && volume.Disk == DiskState.UpToDate)
        {
            return StateChangeResult.IsPrimary; // a Primary cannot have its data replaced under its clients
        }
        if (syncs.ContainsKey((peer, volume.Number)))
        {
            return StateChangeResult.ResyncRunning;
        }
        StartSync(peer, volume, ReplicationState.WFBitMapT, fullSync: true, ConnectedPeerUuids(peer, volume.Number));
        return StateChangeResult.Success;
    }

    private StateChangeResult PausedByPeer(int peer, ReplicaVolume volume, bool pause)
    {
        if (!syncs.TryGetValue((peer, volume.Number), out var sync))
        {
            return StateChangeResult.NothingToDo;
        }
        sync.PausedByPeer = pause;
        UpdatePaused(peer, volume, sync);
        return StateChangeResult.Success;
    }

    /// <summary>SyncSource ↔ PausedSyncS, SyncTarget ↔ PausedSyncT; a resumed source may find it already done.</summary>
    private void UpdatePaused(int peer, ReplicaVolume volume, SyncState sync)
    {
        var state = ReplicationOf(peer, volume.Number);
        bool paused = sync.PausedHere || sync.PausedByPeer;
        if (state is ReplicationState.SyncSource or ReplicationState.PausedSyncS)
        {
            SetReplication(peer, volume.Number, paused ? ReplicationState.PausedSyncS : ReplicationState.SyncSource);
            FinishSourceIfDone(peer, volume, sync);
        }
        else if (state is ReplicationState.SyncTarget or ReplicationState.PausedSyncT)
        {
            SetReplication(peer, volume.Number, paused ? ReplicationState.PausedSyncT : ReplicationState.SyncTarget);
        }
    }

    private Generations.UuidSet ConnectedPeerUuids(int peer, int volume)
    {
        var uuids = links[peer].PeerUuids(volume);
        Invariant.Assert(uuids is not null, $"a connected peer's UUIDs for volume {volume} are known");
        return uuids;
    }

    /// <summary>Tells every connected peer this node's role and disk states; a peer without a disk may now need tracking.</summary>
    private void AnnounceState()
    {
        foreach (int peer in connected.ToList())
        {
            links[peer].AnnounceState();
            Drain(peer);
        }
        TrackPeersWithoutDisk();
    }
}

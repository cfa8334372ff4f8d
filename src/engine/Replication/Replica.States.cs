using System.Buffers;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// State changes while connected, as DRBD makes them without a new handshake: the role and disk
// states a peer must learn (P_STATE), a full resync one side asks for (invalidate,
// invalidate-remote, a forced promotion over an Inconsistent peer), pausing a resync and starting
// online verify (Replica.Verify.cs).
public sealed partial class Replica
{
    /// <summary>The role follows the resource's state machine (promotion rules live there); peers learn it at once.</summary>
    public void SetRole(Role role)
    {
        if (Role == role)
        {
            return;
        }
        if (Role == Role.Primary)
        {
            CloseEpoch(); // the peers confirm the last writes before they learn of the demotion
        }
        Role = role;
        if (role == Role.Primary)
        {
            CommitPromotion();
        }
        if (role != Role.Primary)
        {
            EndSuspensionOnDemotion();
        }
        HoldPrimaryIndicator();
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
    public StateChangeResult StartFullSyncAsSource(int peerNodeId, int volumeNumber) => StartSyncAsSource(peerNodeId, volumeNumber, resetBitmap: true);

    /// <summary>
    /// invalidate-remote: this node becomes the sync source of <paramref name="peerNodeId"/>, of every
    /// block (<paramref name="resetBitmap"/>) or, with --reset-bitmap=no, of the blocks the two
    /// bitmaps already mark out-of-sync (those an online verify found, say).
    /// </summary>
    public StateChangeResult StartSyncAsSource(int peerNodeId, int volumeNumber, bool resetBitmap)
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
        if (SyncOrVerifyRunning(peerNodeId, volumeNumber))
        {
            return StateChangeResult.ResyncRunning;
        }
        if (KeepBitmapUnsupported(peerNodeId, resetBitmap))
        {
            return StateChangeResult.NotSupported;
        }
        // The target ends the resync with the source's UUIDs as they are now: send them first.
        links[peerNodeId].AnnounceUuids(volumeNumber);
        links[peerNodeId].SendMessage(volumeNumber, new StateChangeRequestMessage(0, StateChangeKind.InvalidatePeer, KeepBitmapFlag(resetBitmap), 0));
        Drain(peerNodeId); // the link's queued UUIDs and request go out before the bitmap StartSync sends directly
        StartSync(peerNodeId, volume, ReplicationState.WFBitMapS, fullSync: resetBitmap, ConnectedPeerUuids(peerNodeId, volumeNumber));
        return StateChangeResult.Success;
    }

    /// <summary>invalidate asked of a peer (InvalidateSelf sent), not yet answered by its InvalidatePeer or a refusal.</summary>
    private readonly HashSet<(int Peer, int Volume)> invalidateRequested = [];

    /// <summary>
    /// invalidate: this node's copy is discarded and fully resynced from <paramref name="peerNodeId"/>.
    /// As in DRBD (a cluster-wide state change to StartingSyncT), the disk goes Inconsistent only
    /// once the peer has agreed: it answers InvalidateSelf by starting the full resync as source
    /// (its InvalidatePeer makes this disk Inconsistent), or refuses (it has no UpToDate data, or
    /// is invalidating itself at the same moment), and nothing changes here. Before, the disk was
    /// discarded at once, even when the peer's data was already gone (both invalidated across a
    /// partition, or the peer's disk had failed unseen): no UpToDate copy was left.
    /// </summary>
    /// <remarks>
    /// With --reset-bitmap=no (<paramref name="resetBitmap"/> false) only the blocks the bitmaps
    /// already mark out-of-sync are resynced (DRBD's way to repair what an online verify found
    /// without a full sync).
    /// </remarks>
    public StateChangeResult Invalidate(int peerNodeId, int volumeNumber, bool resetBitmap = true)
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
        if (SyncOrVerifyRunning(peerNodeId, volumeNumber))
        {
            return StateChangeResult.ResyncRunning;
        }
        if (KeepBitmapUnsupported(peerNodeId, resetBitmap))
        {
            return StateChangeResult.NotSupported;
        }
        invalidateRequested.Add((peerNodeId, volumeNumber));
        links[peerNodeId].SendMessage(volumeNumber, new StateChangeRequestMessage(0, StateChangeKind.InvalidateSelf, KeepBitmapFlag(resetBitmap), 0));
        Drain(peerNodeId);
        return StateChangeResult.Success;
    }

    /// <summary>--reset-bitmap=no asked of a peer whose protocol version cannot carry it.</summary>
    private bool KeepBitmapUnsupported(int peerNodeId, bool resetBitmap) => !resetBitmap && !links[peerNodeId].SpeaksKeepBitmap;

    private static StateChangeRequestFlags KeepBitmapFlag(bool resetBitmap) => resetBitmap ? StateChangeRequestFlags.None : StateChangeRequestFlags.KeepBitmap;

    /// <summary>A resync with the peer is under way (from the bitmap exchange to its end, paused or not).</summary>
    public bool Resyncing(int peerNodeId, int volumeNumber) => syncs.ContainsKey((peerNodeId, volumeNumber));

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

    /// <summary>
    /// new-current-uuid: start a new data generation here. With <paramref name="clearBitmap"/> on a
    /// freshly created pair (current UUID just created, connected), DRBD's skip-initial-sync: the
    /// bitmaps are cleared, the peer adopts the UUID and both sides are UpToDate without a resync.
    /// </summary>
    public StateChangeResult NewCurrentUuid(int volumeNumber, bool clearBitmap)
    {
        var volume = volumes[volumeNumber];
        if (!volume.HasLocalData)
        {
            return StateChangeResult.NoLocalDisk;
        }
        if (!clearBitmap)
        {
            StartNewGeneration(volume);
            foreach (int peer in connected)
            {
                links[peer].AnnounceUuids(volumeNumber);
                Drain(peer);
            }
            return StateChangeResult.Success;
        }
        if (connected.Count == 0 || !GenerationIds.SameGeneration(volume.Ids.Current, GenerationIds.JustCreated)
            || connected.Any(p => syncs.ContainsKey((p, volumeNumber))))
        {
            return StateChangeResult.NoConnection; // DRBD skips the initial sync only on a connected, just-created pair
        }
        var fresh = new GenerationIds(GenerationIds.JustCreated, volume.Ids.Bitmap, volume.Ids.History)
            .NewCurrentUuid(random.NextUInt64(), Role == Role.Primary, new bool[volume.Ids.Bitmap.Length]);
        volume.Ids = new GenerationIds(fresh.Current, [.. fresh.Bitmap.Select(_ => 0UL)], fresh.History);
        foreach (int slot in volume.SlotOfPeer.Values)
        {
            volume.Bitmaps.ClearAll(slot);
        }
        volume.Flags |= MetadataFlags.Consistent | MetadataFlags.WasUpToDate;
        SetDisk(volume, DiskState.UpToDate);
        io.PersistVolume(volume.Number);
        foreach (int peer in connected)
        {
            var view = VolumesFor(peer).First(v => v.Volume == volumeNumber);
            links[peer].SendMessage(volumeNumber, new UuidsMessage(view.Uuids.Current, 0, view.Uuids.History,
                UuidFlags.Consistent | UuidFlags.WasUpToDate | UuidFlags.SkipInitialSync, 0));
            links[peer].SetPeerDisk(volumeNumber, DiskState.UpToDate);
            Drain(peer);
        }
        io.Log($"{volumeNumber}: new current UUID {volume.Ids.Current:X16}, skipping the initial sync");
        return StateChangeResult.Success;
    }

    /// <summary>The peer ran new-current-uuid --clear-bitmap on our fresh pair: adopt its UUID, both are UpToDate.</summary>
    private void AcceptSkipInitialSync(int peer, int volumeNumber, in ReadOnlySequence<byte> payload)
    {
        if (!FramePayload.TryRead(payload, out UuidsMessage uuids, out _) || !uuids.Flags.HasFlag(UuidFlags.SkipInitialSync)
            || !volumes.TryGetValue(volumeNumber, out var volume) || !volume.HasLocalData)
        {
            return;
        }
        if (!GenerationIds.SameGeneration(volume.Ids.Current, GenerationIds.JustCreated))
        {
            io.Log($"{Subject(peer)}/{volumeNumber}: the peer asks to skip the initial sync, but this disk is not just created; ignored");
            return;
        }
        io.Log($"{Subject(peer)}/{volumeNumber}: Accepted new current UUID, preparing to skip initial sync");
        ulong current = Role == Role.Primary ? uuids.Current | GenerationIds.PrimaryBit : uuids.Current & ~GenerationIds.PrimaryBit;
        volume.Ids = new GenerationIds(current, [.. volume.Ids.Bitmap.Select(_ => 0UL)], volume.Ids.History);
        foreach (int slot in volume.SlotOfPeer.Values)
        {
            volume.Bitmaps.ClearAll(slot);
        }
        volume.Flags |= MetadataFlags.Consistent | MetadataFlags.WasUpToDate;
        SetDisk(volume, DiskState.UpToDate);
        io.PersistVolume(volume.Number);
        links[peer].SetPeerDisk(volumeNumber, DiskState.UpToDate);
    }

    private static bool IsStateChange(MessageType type) => type is MessageType.StateChangeRequest or MessageType.StateChangeReply or MessageType.StateChangeAbort;

    /// <summary>A peer's request on an established connection. Untrusted: a malformed one drops the connection.</summary>
    private void ReceiveStateChange(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (header.Type == MessageType.StateChangeAbort)
        {
            if (!FramePayload.TryRead(payload, out StateChangeAbortMessage abort, out string? abortError))
            {
                ProtocolError(peer, abortError!);
            }
            else
            {
                PromotionAborted(peer, abort);
            }
            return;
        }
        if (header.Type == MessageType.StateChangeReply)
        {
            if (!FramePayload.TryRead(payload, out StateChangeReplyMessage reply, out string? replyError))
            {
                ProtocolError(peer, replyError!);
            }
            else if ((reply.RequestId & PromotionRequestIdBit) != 0)
            {
                PromotionReplied(peer, reply);
            }
            else if (!VerifyStartAnswered(peer, header.Volume, reply) && !reply.Result.IsSuccess())
            {
                invalidateRequested.Remove((peer, header.Volume));
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
            StateChangeKind.InvalidatePeer => BecomeSyncTarget(peer, volume, fullSync: (request.Flags & StateChangeRequestFlags.KeepBitmap) == 0),
            StateChangeKind.ResyncAfterGrow => BecomeSyncTarget(peer, volume, fullSync: false),
            // Both invalidating at once: neither copy may be the source (DRBD serialises the two changes).
            StateChangeKind.InvalidateSelf => invalidateRequested.Contains((peer, volume.Number))
                ? StateChangeResult.NoUpToDateDisk
                : StartSyncAsSource(peer, volume.Number, resetBitmap: (request.Flags & StateChangeRequestFlags.KeepBitmap) == 0),
            StateChangeKind.PauseSync or StateChangeKind.ResumeSync => PausedByPeer(peer, volume, request.Kind == StateChangeKind.PauseSync),
            StateChangeKind.StartVerify => BecomeVerifyTarget(peer, volume, request.Argument),
            StateChangeKind.BecomePrimary => AnswerPromotionRequest(peer, request),
            _ => StateChangeResult.NothingToDo,
        };
        if (!result.IsSuccess())
        {
            io.Log($"{Subject(peer)}/{volume.Number}: refused the peer's {request.Kind}: {StateChangeResults.Describe(result)}");
        }
        if (!result.IsSuccess() || request.Kind is StateChangeKind.StartVerify or StateChangeKind.BecomePrimary)
        {
            // VerifyS sends no OvRequest before it heard that this node is VerifyT; a promotion waits for its answer.
            links[peer].SendMessage(volume.Number, new StateChangeReplyMessage(request.RequestId, result));
        }
    }

    /// <summary>
    /// The peer is going to be our sync source: a full sync (it was invalidated-remote, or we were
    /// invalidated), or a bitmap resync: of the area the device grew by, or of the blocks the bitmaps
    /// already mark (invalidate with --reset-bitmap=no).
    /// </summary>
    private StateChangeResult BecomeSyncTarget(int peer, ReplicaVolume volume, bool fullSync)
    {
        if (Role == Role.Primary && volume.Disk == DiskState.UpToDate)
        {
            return StateChangeResult.IsPrimary; // a Primary cannot have its data replaced under its clients
        }
        if (SyncOrVerifyRunning(peer, volume.Number))
        {
            return StateChangeResult.ResyncRunning;
        }
        invalidateRequested.Remove((peer, volume.Number));
        if (fullSync && volume.Disk is DiskState.UpToDate or DiskState.Consistent or DiskState.Outdated)
        {
            // StartingSyncT: this copy is discarded from now on (invalidate here, or invalidate-remote there).
            volume.Flags &= ~MetadataFlags.Consistent;
            SetDisk(volume, DiskState.Inconsistent);
        }
        StartSync(peer, volume, ReplicationState.WFBitMapT, fullSync, ConnectedPeerUuids(peer, volume.Number));
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
        sync.Paused(paused, clockMs);
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

    /// <summary>A resync or an online verify with the peer is under way (DRBD's SS_RESYNC_RUNNING), or one is due after Ahead/Behind.</summary>
    private bool SyncOrVerifyRunning(int peer, int volume) => syncs.ContainsKey((peer, volume)) || verifies.ContainsKey((peer, volume))
        || ReplicationOf(peer, volume) is ReplicationState.Ahead or ReplicationState.Behind;

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

using System.Buffers;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// The device size, as DRBD agrees on it: at every handshake the smallest usable size of the nodes
// wins (a disk with data refuses to shrink — PeerLink drops the connection), and `resize` grows it
// online once every disk grew: the node where it runs re-reads its disk and asks each peer (Sizes
// with Resize); a peer re-reads its own disk, adopts the new agreed size and answers (ResizeReply);
// the asking node adopts the same size. Growing marks the new area out of sync in every bitmap
// slot (unless --assume-clean), and the Primary (else the lower node-id) resyncs it to the other.
public sealed partial class Replica
{
    /// <summary>The usable size each connected peer announced per volume (0: Diskless).</summary>
    private readonly Dictionary<(int Peer, int Volume), long> peerUsable = [];

    /// <summary>Resize requests from peers, answered once the host re-read the disk (<see cref="CapacityRefreshed"/>).</summary>
    private readonly List<(int Peer, int Volume, SizesFlags Flags)> resizeRequests = [];

    /// <summary>Peers this node asked to resize and that have not answered yet.</summary>
    private readonly HashSet<(int Peer, int Volume)> awaitingResize = [];

    /// <summary>True while a `resize` of the volume waits for a peer's answer.</summary>
    public bool ResizePending(int volumeNumber) => awaitingResize.Any(k => k.Volume == volumeNumber);

    /// <summary>
    /// `resize`: after the host re-read this node's disk (and grew it with <see cref="SetCapacity"/>),
    /// asks every peer for its size; the agreed size grows when all have answered. Needs every peer
    /// connected (DRBD grows only what every node was seen to hold) and no resync or verify running.
    /// With <paramref name="assumeClean"/> the new area is not resynced.
    /// </summary>
    public StateChangeResult Resize(int volumeNumber, bool assumeClean)
    {
        var volume = volumes[volumeNumber];
        if (!volume.HasLocalData)
        {
            return StateChangeResult.NoLocalDisk;
        }
        if (SyncOrVerifyRunning(volumeNumber))
        {
            return StateChangeResult.ResyncRunning;
        }
        if (links.Keys.Any(p => !connected.Contains(p)))
        {
            return StateChangeResult.NoConnection;
        }
        foreach (int peer in connected)
        {
            awaitingResize.Add((peer, volumeNumber));
            links[peer].SendSizes(volumeNumber, SizesFlags.Resize | (assumeClean ? SizesFlags.NoResync : 0));
            Drain(peer);
        }
        io.Log($"{links.Values.First().Settings.ResourceName}/{volumeNumber}: resize: usable size here {volume.UsableSizeBytes / 1024} KiB, device size {volume.AgreedSizeBytes / 1024} KiB; asking the peers");
        return StateChangeResult.Success;
    }

    /// <summary>True when the host may grow the volume's capacity now (no resync or verify holds its bitmaps).</summary>
    public bool CanSetCapacity(int volumeNumber) => !SyncOrVerifyRunning(volumeNumber);

    /// <summary>
    /// The host grew the local disk and moved its metadata: the bitmaps and the activity log cover
    /// <paramref name="usableSizeBytes"/> now. The agreed size stays until the peers agree.
    /// </summary>
    public void SetCapacity(int volumeNumber, long usableSizeBytes)
    {
        Invariant.Assert(CanSetCapacity(volumeNumber), "the capacity changes only while no resync or verify runs");
        volumes[volumeNumber].GrowCapacity(usableSizeBytes);
    }

    /// <summary>The host re-read the disk after <see cref="IReplicaIo.RefreshCapacity"/>: answer the peers' resize requests.</summary>
    public void CapacityRefreshed(int volumeNumber)
    {
        var volume = volumes[volumeNumber];
        foreach (var request in resizeRequests.Where(r => r.Volume == volumeNumber).ToList())
        {
            resizeRequests.Remove(request);
            if (!connected.Contains(request.Peer))
            {
                continue;
            }
            bool grew = AdoptResize(request.Peer, volume, request.Flags);
            links[request.Peer].SendSizes(volumeNumber, SizesFlags.ResizeReply | (request.Flags & SizesFlags.NoResync));
            Drain(request.Peer); // the answer goes before the resync of the new area
            if (grew)
            {
                StartGrowSync(request.Peer, volume);
            }
        }
    }

    /// <summary>Sizes from a connected peer: a resize request, its answer, or news of the peer's disk.</summary>
    private void ReceiveSizes(int peer, in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (!FramePayload.TryRead(payload, out SizesMessage sizes, out string? error) || !volumes.TryGetValue(header.Volume, out var volume))
        {
            ProtocolError(peer, error ?? $"Sizes for volume {header.Volume}, which is not configured here");
            return;
        }
        peerUsable[(peer, volume.Number)] = (long)sizes.UsableSizeBytes;
        if (sizes.Flags.HasFlag(SizesFlags.Resize))
        {
            resizeRequests.Add((peer, volume.Number, sizes.Flags));
            io.RefreshCapacity(volume.Number);
        }
        else if (sizes.Flags.HasFlag(SizesFlags.ResizeReply) && awaitingResize.Remove((peer, volume.Number)))
        {
            bool grew = AdoptResize(peer, volume, sizes.Flags);
            if (volume.HasLocalData && sizes.UsableSizeBytes != 0 && (long)sizes.CurrentSizeBytes != volume.AgreedSizeBytes)
            {
                ProtocolError(peer, $"the peer agreed on a device size of {sizes.CurrentSizeBytes / 1024} KiB, this node on {volume.AgreedSizeBytes / 1024} KiB");
                return;
            }
            if (grew)
            {
                StartGrowSync(peer, volume);
            }
        }
    }

    /// <summary>The size agreed at a handshake; true when it grew (the new area then needs a resync).</summary>
    private bool AdoptHandshakeSize(int peer, VolumeDecision decision)
    {
        peerUsable[(peer, decision.Volume)] = decision.PeerUsableSizeBytes;
        var volume = volumes[decision.Volume];
        return AdoptAgreedSize(peer, volume, decision.AgreedSizeBytes, markNewArea: true, shrink: true);
    }

    /// <summary>A resize with <paramref name="peer"/>: the agreed size may only grow online.</summary>
    private bool AdoptResize(int peer, ReplicaVolume volume, SizesFlags flags)
    {
        long agreed = SizeAgreement.Agree(volume.HasLocalData ? volume.UsableSizeBytes : 0, peerUsable[(peer, volume.Number)], OtherPeersLimit(peer, volume));
        return AdoptAgreedSize(peer, volume, agreed, markNewArea: !flags.HasFlag(SizesFlags.NoResync), shrink: false);
    }

    /// <summary>Takes <paramref name="agreed"/> as the device size (persisted); true when it grew.</summary>
    private bool AdoptAgreedSize(int peer, ReplicaVolume volume, long agreed, bool markNewArea, bool shrink)
    {
        long before = volume.AgreedSizeBytes;
        if (!volume.HasLocalData)
        {
            AdoptDisklessSize(peer, volume, agreed);
            return false;
        }
        if (agreed == 0 || agreed == before || (agreed < before && !shrink))
        {
            if (agreed != 0 && agreed < before)
            {
                io.Log($"{Subject(peer)}/{volume.Number}: the peer can hold only {agreed / 1024} KiB; the device stays at {before / 1024} KiB (no online shrink)");
            }
            return false;
        }
        if (SyncOrVerifyRunning(volume.Number))
        {
            // The running resync's planner and the bitmap exchange are sized already; the next handshake agrees again.
            io.Log($"{Subject(peer)}/{volume.Number}: the device size stays at {before / 1024} KiB while a resync or verify runs (agreed: {agreed / 1024} KiB)");
            return false;
        }
        volume.SetAgreedSize(agreed, markNewArea);
        io.PersistVolume(volume.Number);
        io.Log($"{Subject(peer)}/{volume.Number}: device size {before / 1024} KiB -> {agreed / 1024} KiB (usable here {volume.UsableSizeBytes / 1024} KiB)");
        return agreed > before;
    }

    /// <summary>
    /// A Diskless volume serves the size of its peer's device (DRBD's receive_sizes without a local
    /// disk takes the peer's current size), growing only: clients hold the device. The bitmaps grow
    /// with it, so writes to the new area can still be recorded for a peer; a disk attached later
    /// must hold the whole device (the host checks, ReplicatedAttachRefusal).
    /// </summary>
    private void AdoptDisklessSize(int peer, ReplicaVolume volume, long agreed)
    {
        long before = volume.AgreedSizeBytes;
        if (volume.Disk != DiskState.Diskless || agreed <= before)
        {
            return;
        }
        if (agreed > volume.UsableSizeBytes)
        {
            volume.GrowCapacity(agreed);
        }
        volume.SetAgreedSize(agreed, markNewArea: true);
        io.Log($"{Subject(peer)}/{volume.Number}: device size {before / 1024} KiB -> {agreed / 1024} KiB (Diskless: the peer's device size)");
    }

    /// <summary>
    /// The device grew: the Primary (else the lower node-id) syncs the new area to the peer, telling it
    /// first (UUIDs, then ResyncAfterGrow, then the bitmap, as for invalidate-remote). The other side waits.
    /// </summary>
    private void StartGrowSync(int peer, ReplicaVolume volume)
    {
        var link = links[peer];
        if (!SizeAgreement.IsGrowSyncSource(Role, link.PeerRole, link.Settings.LocalNodeId, peer) || volume.OutOfSyncBytes(peer) == 0)
        {
            return;
        }
        if (volume.Disk != DiskState.UpToDate || link.PeerDisks.GetValueOrDefault(volume.Number) is not (DiskState.UpToDate or DiskState.Consistent or DiskState.Outdated)
            || SyncOrVerifyRunning(peer, volume.Number))
        {
            io.Log($"{Subject(peer)}/{volume.Number}: the new area stays out of sync ({volume.OutOfSyncBytes(peer) / 1024} KiB) until a resync");
            return;
        }
        io.Log($"{Subject(peer)}/{volume.Number}: Resync of new storage after online grow");
        link.AnnounceUuids(volume.Number);
        link.SendMessage(volume.Number, new StateChangeRequestMessage(0, StateChangeKind.ResyncAfterGrow, StateChangeRequestFlags.None, 0));
        Drain(peer); // the UUIDs and the request go out before the bitmap StartSync sends directly
        StartSync(peer, volume, ReplicationState.WFBitMapS, fullSync: false, ConnectedPeerUuids(peer, volume.Number));
    }

    /// <summary>What the peers other than <paramref name="peer"/> allow for <paramref name="volume"/>.</summary>
    private long OtherPeersLimit(int peer, ReplicaVolume volume) => SizeAgreement.OtherPeersLimit(
        links.Keys.Where(p => p != peer).Select(p => connected.Contains(p) && peerUsable.TryGetValue((p, volume.Number), out long usable) ? usable : (long?)null),
        volume.AgreedSizeBytes);

    private bool SyncOrVerifyRunning(int volumeNumber) =>
        syncs.Keys.Any(k => k.Volume == volumeNumber) || verifies.Keys.Any(k => k.Volume == volumeNumber);

    private void ForgetPeerSizes(int peer)
    {
        foreach (var key in peerUsable.Keys.Where(k => k.Peer == peer).ToList())
        {
            peerUsable.Remove(key);
        }
        resizeRequests.RemoveAll(r => r.Peer == peer);
        awaitingResize.RemoveWhere(k => k.Peer == peer);
    }
}

using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// The local disk's life while replicating, after DRBD's on-io-error detach and attach:
//  - the disk goes away (Failed, Detaching, Diskless): resyncs with it stop, and the Primary goes on
//    through a peer whose disk is UpToDate (writes and reads);
//  - a peer that sees the writer's disk gone starts a new data generation (the old one becomes the
//    bitmap UUID of that writer's slot) and records every write it receives from it in that slot;
//  - `attach` while connected (DRBD's attach-while-connected, no reconnect): the disk is Negotiating,
//    this node sends its UUIDs and state again, the peer answers with its own and both run the sync
//    handshake for the volume: the old generation on the disk is the peer's bitmap UUID, so this
//    node is bitmap SyncTarget of exactly the recorded blocks (plus its own failed writes), and
//    UpToDate at the end. A connection that drops while Negotiating leaves the disk Outdated.
public sealed partial class Replica
{
    /// <summary>Resyncs stopped because a disk went away: their stragglers still on the wire are dropped.</summary>
    private readonly HashSet<(int Peer, int Volume)> abortedSyncs = [];

    /// <summary>
    /// `attach` of a Diskless volume: adopt the disk's identifiers and flags as its metadata has
    /// them. While connected the disk is Negotiating and the sync handshake with each peer runs again
    /// (its decision starts the resync); otherwise the disk is what its metadata says, except that a
    /// Primary's is at best Outdated (nothing says its data is current; DRBD refuses such an attach).
    /// </summary>
    public void AttachLocal(int volumeNumber, GenerationIds ids, MetadataFlags flags, DiskState diskFromMetadata)
    {
        var volume = volumes[volumeNumber];
        Invariant.Assert(volume.Disk == DiskState.Diskless, $"volume {volumeNumber} attaches from Diskless, not {volume.Disk}");
        foreach (var link in links.Values)
        {
            link.LocalDiskAttached(volumeNumber);
        }
        if (volume.MissedWritesGeneration != 0 && !GenerationIds.SameGeneration(volume.MissedWritesGeneration, ids.Current))
        {
            volume.MissedWritesGeneration = 0; // another disk, or one resynced elsewhere: not the one that missed them
        }
        volume.Ids = ids;
        volume.Flags = flags;
        var peers = connected.Where(p => links[p].State == ConnectionState.Connected).Order().ToList();
        if (peers.Count == 0)
        {
            SetDisk(volume, Role == Role.Primary && diskFromMetadata > DiskState.Outdated ? DiskState.Outdated : diskFromMetadata);
            return;
        }
        NegotiateAttachedDisk(volume, peers);
    }

    /// <summary>DRBD's attach while connected: the disk is Negotiating and the sync handshake runs again with <paramref name="peers"/>.</summary>
    private void NegotiateAttachedDisk(ReplicaVolume volume, IReadOnlyList<int> peers)
    {
        // Not through SetDisk: the peers must get the UUIDs before they see the Negotiating state.
        volume.Disk = DiskState.Negotiating;
        io.PersistVolume(volume.Number);
        io.Log($"{ResourceName}/{volume.Number}: disk attached while connected: negotiating the resync with the peers");
        foreach (int peer in peers)
        {
            links[peer].Renegotiate(volume.Number);
            Drain(peer);
        }
    }

    /// <summary>
    /// DRBD's attach check (drbd_adm_attach, ERR_DATA_NOT_CURRENT): a Primary attaches only the disk
    /// whose current UUID is the data generation it serves, unless a connected peer has UpToDate data
    /// to resync it from. A Primary that lost its disk and wrote on through a peer which has since
    /// lost its own would otherwise serve reads from an old disk and, as a Primary, refuse to become
    /// the SyncTarget of the peer's newer data (rr-conflict) for good. Null when the attach may go ahead.
    /// </summary>
    public string? AttachRefusal(int volumeNumber, GenerationIds ids)
    {
        TrackExposedData();
        var volume = volumes[volumeNumber];
        return UpToDatePeer(volumeNumber) is null && ServesOtherData(volume, ids.Current)
            ? $"(150) Can only attach to the data we lost last: this Primary serves data with current UUID={volume.ExposedDataUuid:X16}, which no connected peer has UpToDate"
            : null;
    }

    /// <summary>This node is Primary and serves another data generation than <paramref name="current"/> (its exposed data UUID).</summary>
    private bool ServesOtherData(ReplicaVolume volume, ulong current) =>
        Role == Role.Primary && volume.ExposedDataUuid != 0 && !GenerationIds.SameGeneration(volume.ExposedDataUuid, current);

    /// <summary>
    /// Keeps each volume's <see cref="ReplicaVolume.ExposedDataUuid"/>: while Primary, the UpToDate
    /// disk's current UUID, or without a disk an UpToDate peer's (DRBD's drbd_uuid_set_exposed on
    /// the peer's UUIDs); otherwise the last one stays. Cleared when Secondary.
    /// </summary>
    private void TrackExposedData()
    {
        foreach (var volume in volumes.Values)
        {
            if (Role != Role.Primary)
            {
                volume.ExposedDataUuid = 0;
            }
            else if (volume.Disk == DiskState.UpToDate)
            {
                volume.ExposedDataUuid = volume.Ids.Current;
            }
            else if (WithoutData(volume.Disk) && UpToDatePeer(volume.Number) is int peer && links[peer].PeerUuids(volume.Number) is { } peerUuids)
            {
                volume.ExposedDataUuid = peerUuids.Current;
            }
        }
    }

    /// <summary>A peer's State arrived on an established connection: its disk may be gone.</summary>
    private void OnPeerState(int peer, int volumeNumber)
    {
        if (volumes.TryGetValue(volumeNumber, out var volume) && WithoutData(links[peer].PeerDisks.GetValueOrDefault(volumeNumber, DiskState.DUnknown)))
        {
            // What the peer acknowledged but has not flushed (no BarrierAck yet) may be lost with its disk.
            writes.PeerDiskGone(peer, volumeNumber);
            RecordOutOfSync();
            ForgetSyncUuid(peer, volume);
            AbortSync(peer, volume, "the peer has no disk");
            AbortVerify(peer, volume, "the peer has no disk");
        }
        UpgradeAfterPeerDiskSettled(peer, volumeNumber);
        TrackPeersWithoutDisk();
    }

    /// <summary>
    /// A Consistent (or Outdated) disk whose peer's disk settled later than the handshake (it was
    /// still Negotiating, say, after attaching on both sides at once) on the same data generation,
    /// with no resync running, is UpToDate too — the same upgrade the handshake makes (DRBD's
    /// "Upgrading local disk to UpToDate after unstable/weak"), applied when the peer's state
    /// arrives. Bits already in the bitmap (an online verify's finds) stay set for the next resync,
    /// as after the handshake.
    /// </summary>
    private void UpgradeAfterPeerDiskSettled(int peer, int volumeNumber)
    {
        if (!volumes.TryGetValue(volumeNumber, out var volume)
            || ReplicationOf(peer, volumeNumber) != ReplicationState.Established || syncs.ContainsKey((peer, volumeNumber))
            || links[peer].PeerUuids(volumeNumber) is not { } peerUuids
            || !GenerationIds.SameGeneration(peerUuids.Current, volume.Ids.Current))
        {
            return;
        }
        var peerDisk = links[peer].PeerDisks.GetValueOrDefault(volumeNumber, DiskState.DUnknown);
        // DRBD 9's "connecting to diskless primary peer": a diskless Primary's current UUID is the
        // generation it serves; a Consistent disk holding exactly that generation is its UpToDate data.
        bool dataOfDisklessPrimary = volume.Disk == DiskState.Consistent && links[peer].PeerRole == Role.Primary && WithoutData(peerDisk);
        if (UpgradesWithoutResync(volume.Disk, peerDisk) || dataOfDisklessPrimary)
        {
            UpgradeToUpToDate(peer, volume);
        }
    }

    /// <summary>
    /// Same data generation on both sides and no resync: a Consistent copy is as good as the peer's,
    /// and an Outdated one is too when the peer's is at least Consistent (DRBD 8.4's sanitize_state:
    /// "D_CONSISTENT and D_OUTDATED vanish when we get connected"; DRBD 9: "Upgrading local disk to
    /// UpToDate after unstable/weak (and no resync)").
    /// </summary>
    private static bool UpgradesWithoutResync(DiskState disk, DiskState peerDisk) =>
        (disk == DiskState.Consistent && peerDisk is DiskState.UpToDate or DiskState.Consistent or DiskState.Outdated)
        || (disk == DiskState.Outdated && peerDisk is DiskState.UpToDate or DiskState.Consistent);

    /// <summary>DRBD's "Upgrading local disk to UpToDate after unstable/weak (and no resync)".</summary>
    private void UpgradeToUpToDate(int peer, ReplicaVolume volume)
    {
        io.Log($"{Subject(peer)}/{volume.Number}: Upgrading local disk to UpToDate after unstable/weak (and no resync)");
        volume.Flags |= MetadataFlags.Consistent | MetadataFlags.WasUpToDate;
        SetDisk(volume, DiskState.UpToDate);
    }

    /// <summary>This node's disk of <paramref name="volume"/> went away: no resync can go on with it.</summary>
    private void LocalDiskGone(ReplicaVolume volume)
    {
        foreach (int peer in syncs.Keys.Where(k => k.Volume == volume.Number).Select(k => k.Peer).ToList())
        {
            AbortSync(peer, volume, "the local disk is gone");
        }
        foreach (int peer in verifies.Keys.Where(k => k.Volume == volume.Number).Select(k => k.Peer).ToList())
        {
            AbortVerify(peer, volume, "the local disk is gone");
        }
        RetryDeferredClientWrites();
    }

    private void AbortSync(int peer, ReplicaVolume volume, string why)
    {
        if (!syncs.Remove((peer, volume.Number), out var sync))
        {
            return;
        }
        sync.Planner?.Interrupt();
        abortedSyncs.Add((peer, volume.Number));
        deferredReads.RemoveAll(r => r.Peer == peer && r.Volume == volume.Number && r is ResyncReadIo);
        SetReplication(peer, volume.Number, ReplicationState.Established);
        io.Log($"{Subject(peer)}/{volume.Number}: resync stopped: {why}");
        RetryDeferredClientWrites();
    }

    /// <summary>The sync handshake ran again for a volume attached on either side: start what it decided.</summary>
    private void Renegotiated(int peer, VolumeDecision decision)
    {
        var volume = volumes[decision.Volume];
        if (syncs.ContainsKey((peer, decision.Volume)))
        {
            AbortSync(peer, volume, "the sync handshake runs again");
        }
        if (WithoutData(volume.Disk))
        {
            // The disk went away again before the peer answered: the peer stops when it hears so.
            io.Log($"{Subject(peer)}/{volume.Number}: no resync: the local disk is gone again");
            abortedSyncs.Add((peer, volume.Number));
            return;
        }
        BeginSync(peer, decision, grew: false);
    }

    /// <summary>
    /// The connection broke before the handshake for a Negotiating disk finished: nothing says the
    /// disk is current, so it is Outdated (DRBD takes the disk away instead; the next connection's
    /// handshake resyncs it either way).
    /// </summary>
    private void NegotiationLost()
    {
        foreach (var volume in volumes.Values.Where(v => v.Disk == DiskState.Negotiating))
        {
            if (!connected.Any(p => links[p].State == ConnectionState.Connected))
            {
                var disk = ReplicaVolume.DiskFromFlags(volume.Flags);
                io.Log($"{ResourceName}/{volume.Number}: connection lost while negotiating the attached disk");
                SetDisk(volume, disk > DiskState.Outdated ? DiskState.Outdated : disk);
            }
        }
    }

    /// <summary>
    /// DRBD's "lost contact to peer's copy of the data": a connected peer's disk is gone while one of
    /// us is Primary, and this node holds UpToDate data. Its writes from now on are only here: a new
    /// data generation starts, the old one becomes that peer's bitmap UUID (once), and the peers are
    /// told, so the peer's disk, when it returns, is the bitmap SyncTarget of what it missed.
    /// </summary>
    private void TrackPeersWithoutDisk()
    {
        foreach (var volume in volumes.Values.Where(v => v.Disk == DiskState.UpToDate))
        {
            var gone = connected.Where(p => links[p].State == ConnectionState.Connected
                && WithoutData(links[p].PeerDisks.GetValueOrDefault(volume.Number, DiskState.DUnknown))
                && (Role == Role.Primary || links[p].PeerRole == Role.Primary)
                && volume.Ids.Bitmap[volume.SlotOfPeer[p]] == 0).Order().ToList();
            if (gone.Count == 0)
            {
                continue;
            }
            var slots = new bool[volume.Ids.Bitmap.Length];
            foreach (int peer in gone)
            {
                slots[volume.SlotOfPeer[peer]] = true;
            }
            volume.Ids = volume.Ids.NewCurrentUuid(random.NextUInt64(), Role == Role.Primary, slots);
            io.PersistVolume(volume.Number);
            io.Log($"{ResourceName}/{volume.Number}: new current UUID {volume.Ids.Current:X16}: {string.Join(", ", gone.Select(p => links[p].Settings.PeerNodeName))} has no disk");
            foreach (int peer in connected.Where(p => links[p].State == ConnectionState.Connected).ToList())
            {
                links[peer].AnnounceUuids(volume.Number);
                Drain(peer);
            }
        }
    }

    /// <summary>
    /// A write failed on the local disk of <paramref name="volumeNumber"/> (it is on its way to
    /// Failed): it may still complete through a peer, so the disk's copy of those blocks can be
    /// older than the peer's. Its bitmap bits record which; the flag makes this disk the target of
    /// the next handshake at equal generations (<see cref="ReplicaVolume.MissedWritesGeneration"/>).
    /// </summary>
    private void MissedWrite(int volumeNumber)
    {
        var volume = volumes[volumeNumber];
        if (volume.MissedWritesGeneration == 0 && volume.Ids.Current != 0)
        {
            volume.MissedWritesGeneration = volume.Ids.Current;
            io.Log($"{ResourceName}/{volumeNumber}: a write failed on the local disk: it missed writes the peers may hold");
        }
    }

    /// <summary>A resync rewrote every block the disk missed (or gave its copy to the peer): the flag has served.</summary>
    private static void ResyncCoveredMissedWrites(ReplicaVolume volume) => volume.MissedWritesGeneration = 0;

    /// <summary>A disk state that holds no data: Diskless, Attaching, Detaching, Failed.</summary>
    private static bool WithoutData(DiskState disk) => disk is DiskState.Diskless or DiskState.Attaching or DiskState.Detaching or DiskState.Failed;
}

using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Resources;

/// <summary>
/// The state of one resource on this node — role, disk states, peers — and DRBD's rules for
/// changing it. Pure: it does no I/O. A change either is refused (a <see cref="StateChangeResult"/>
/// saying why, nothing changed) or is applied, leaving <see cref="StateTransition"/>s to log and
/// volumes whose metadata the host must persist (<see cref="VolumeState.MetadataDirty"/>).
/// Not thread-safe: the host serialises calls.
/// </summary>
public sealed class ResourceStateMachine
{
    private readonly IRandom random;
    private readonly List<StateTransition> transitions = [];
    private readonly VolumeState[] volumes;
    private readonly PeerState[] peers;

    public ResourceStateMachine(string name, int nodeId, IEnumerable<int> volumeNumbers, IEnumerable<PeerState> peerStates, IRandom random)
    {
        Name = name;
        NodeId = nodeId;
        this.random = random;
        volumes = [.. volumeNumbers.Order().Select(n => new VolumeState(n))];
        peers = [.. peerStates];
        Invariant.Assert(volumes.Length > 0, $"{name}: a resource has at least one volume");
        Invariant.Assert(volumes.Select(v => v.Number).Distinct().Count() == volumes.Length, $"{name}: volume numbers are unique");
        Invariant.Assert(peers.All(p => p.NodeId != nodeId), $"{name}: a peer cannot have this node's node-id");
    }

    public string Name { get; }

    public int NodeId { get; }

    public Role Role { get; private set; } = Role.Secondary;

    public IReadOnlyList<VolumeState> Volumes => volumes;

    public IReadOnlyList<PeerState> Peers => peers;

    public VolumeState Volume(int number) =>
        volumes.FirstOrDefault(v => v.Number == number) ?? throw new ArgumentOutOfRangeException(nameof(number), number, $"{Name} has no volume {number}");

    /// <summary>Returns and forgets the transitions applied since the last call.</summary>
    public IReadOnlyList<StateTransition> TakeTransitions()
    {
        var taken = transitions.ToList();
        transitions.Clear();
        return taken;
    }

    /// <summary>
    /// Attaches a disk whose metadata was read: the disk state follows DRBD's rules from the flags.
    /// A disk that was left Primary without a clean demotion is marked crashed-primary; a disk
    /// attached to a Primary gets the primary indicator. A Secondary whose disk was left Primary with
    /// no peer connected waits with degr-wfc-timeout (<see cref="WaitTimeoutType"/>).
    /// </summary>
    public StateChangeResult Attach(int volumeNumber, Superblock metadata)
    {
        var volume = Volume(volumeNumber);
        if (volume.Disk != DiskState.Diskless)
        {
            return StateChangeResult.AlreadyAttached;
        }
        SetDisk(volume, DiskState.Attaching);
        volume.Metadata = metadata;
        volume.UseDegradedWfcTimeout = Role != Role.Primary && metadata.Flags.HasFlag(MetadataFlags.PrimaryInd)
            && !metadata.Peers.Any(p => !p.IsFree && p.Flags.HasFlag(PeerSlotFlags.Connected));
        volume.UpdateMetadata(md =>
        {
            var flags = md.Flags & ~MetadataFlags.AlClean;
            if (Role == Role.Secondary && flags.HasFlag(MetadataFlags.PrimaryInd))
            {
                flags = (flags & ~MetadataFlags.PrimaryInd) | MetadataFlags.CrashedPrimary;
            }
            else if (Role == Role.Primary)
            {
                // A Primary's disk carries the primary indicator from the moment it is attached, as
                // DRBD 9 sets MDF_PRIMARY_IND in every state change while the role is Primary: the
                // writes it takes from now on go through the activity log, and a crash must come
                // back "crashed primary" so those extents are resynced (apply-al, rule 40).
                flags |= MetadataFlags.PrimaryInd;
            }
            return md with { Flags = flags };
        });
        SetDisk(volume, DiskStateFromMetadata(volume.Metadata!));
        return StateChangeResult.Success;
    }

    /// <summary>
    /// Gives every configured peer a bitmap slot in the volume's metadata (the first free one), as
    /// DRBD 9 does when it first meets a peer. The host checks beforehand that enough slots are free.
    /// </summary>
    public void AssignPeerSlots(int volumeNumber)
    {
        var volume = Volume(volumeNumber);
        volume.UpdateMetadata(md =>
        {
            var slots = md.Peers.ToBuilder();
            foreach (var peer in peers.Where(p => md.FindPeerSlot(p.NodeId) < 0))
            {
                int free = slots.ToList().FindIndex(s => s.IsFree);
                Invariant.Assert(free >= 0, $"{Name}/{volumeNumber}: a free peer slot for node-id {peer.NodeId}");
                slots[free] = new PeerSlot(peer.NodeId, 0, PeerSlotFlags.None, free);
            }
            return md with { Peers = slots.MoveToImmutable() };
        });
    }

    /// <summary>
    /// The disk state metadata implies at attach: not consistent → Inconsistent; consistent but not
    /// known up-to-date → Outdated; otherwise Consistent, which is UpToDate when there is no peer to
    /// ask (a resource with no peers configured is its own newest copy).
    /// </summary>
    public DiskState DiskStateFromMetadata(Superblock metadata)
    {
        if (!metadata.Flags.HasFlag(MetadataFlags.Consistent))
        {
            return DiskState.Inconsistent;
        }
        if (!metadata.Flags.HasFlag(MetadataFlags.WasUpToDate))
        {
            return DiskState.Outdated;
        }
        return peers.Length == 0 ? DiskState.UpToDate : DiskState.Consistent;
    }

    /// <summary>
    /// Detaches a volume's disk. Refused while Primary with this as the only UpToDate data, unless
    /// forced (DRBD 9 refuses the same). The final metadata marks the activity log clean.
    /// </summary>
    public StateChangeResult Detach(int volumeNumber, bool force)
    {
        var volume = Volume(volumeNumber);
        if (volume.Disk == DiskState.Diskless)
        {
            return StateChangeResult.NothingToDo;
        }
        if (Role == Role.Primary && volume.Disk == DiskState.UpToDate && !force && !PeerHasUpToDateData())
        {
            return StateChangeResult.NoUpToDateDisk;
        }
        SetDisk(volume, DiskState.Detaching);
        volume.UpdateMetadata(md => md with { Flags = md.Flags | MetadataFlags.AlClean });
        return StateChangeResult.Success;
    }

    /// <summary>The host wrote the final metadata and closed the disk: the volume is Diskless.</summary>
    public void CompleteDetach(int volumeNumber)
    {
        var volume = Volume(volumeNumber);
        Invariant.Assert(volume.Disk is DiskState.Detaching or DiskState.Failed, $"{Name}/{volumeNumber}: detach completes from Detaching or Failed");
        SetDisk(volume, DiskState.Diskless);
        volume.Metadata = null;
        volume.MarkMetadataPersisted();
    }

    /// <summary>
    /// A local I/O error under `on-io-error detach`: the disk is Failed, and the host detaches it.
    /// </summary>
    public void DiskFailed(int volumeNumber)
    {
        var volume = Volume(volumeNumber);
        if (volume.Disk is DiskState.Diskless or DiskState.Failed)
        {
            return;
        }
        SetDisk(volume, DiskState.Failed);
    }

    /// <summary>What the connection to a peer knows now (the replication layer owns connections).</summary>
    public void UpdatePeer(int nodeId, ConnectionState connection, Role peerRole, DiskState peerDisk)
    {
        var peer = peers.First(p => p.NodeId == nodeId);
        peer.Connection = connection;
        peer.PeerRole = peerRole;
        peer.PeerDisk = peerDisk;
    }

    /// <summary>
    /// drbd_adm_get_timeout_type: a peer disk known Outdated → outdated-wfc-timeout; else a disk
    /// attached after going down as a degraded Primary → degr-wfc-timeout; else wfc-timeout.
    /// </summary>
    public WaitTimeoutType WaitTimeoutType =>
        peers.Any(p => p.PeerDisk == DiskState.Outdated) ? WaitTimeoutType.PeerOutdated
        : volumes.Any(v => v.UseDegradedWfcTimeout) ? WaitTimeoutType.Degraded
        : WaitTimeoutType.Default;

    /// <summary>
    /// The replication layer moved a volume on (resync start or end, a new data generation after
    /// losing a peer, a handshake that found both copies equal, a new agreed size): adopt its
    /// identifiers, flags, disk state and (when given) the agreed size, DRBD's la-size, which the
    /// superblock keeps as its usable size. The host persists the metadata.
    /// </summary>
    /// <param name="volumeNumber">The volume.</param>
    /// <param name="ids">The replica's generation identifiers.</param>
    /// <param name="flags">The replica's device flags.</param>
    /// <param name="disk">The replica's disk state.</param>
    /// <param name="outdatedPeers">
    /// Peers fencing (or a graceful disconnect) left Outdated or Inconsistent while apart: their slots
    /// carry MDF_PEER_OUTDATED, the others lose it. Null leaves the peer slots as they are.
    /// </param>
    /// <param name="agreedSizeBytes">The agreed size (la-size) to record; null keeps it.</param>
    /// <param name="connectedPeers">
    /// Peers connected now: their slots carry MDF_PEER_CONNECTED (DRBD 8.4's MDF_CONNECTED_IND), the
    /// others lose it. Null leaves the peer slots as they are.
    /// </param>
    public void AdoptReplicaState(int volumeNumber, GenerationIds ids, MetadataFlags flags, DiskState disk, IReadOnlyCollection<int>? outdatedPeers = null,
        long? agreedSizeBytes = null, IReadOnlyCollection<int>? connectedPeers = null)
    {
        var volume = Volume(volumeNumber);
        if (volume.Metadata is null || volume.Disk is DiskState.Diskless or DiskState.Detaching or DiskState.Failed)
        {
            return;
        }
        volume.UpdateMetadata(md => WithPeerFlag(WithPeerFlag(md.WithGenerationIds(ids) with { Flags = flags, UsableSizeBytes = agreedSizeBytes ?? md.UsableSizeBytes },
            PeerSlotFlags.Outdated, outdatedPeers), PeerSlotFlags.Connected, connectedPeers));
        if (connectedPeers is { Count: > 0 })
        {
            volume.UseDegradedWfcTimeout = false; // a peer is back: DRBD clears USE_DEGR_WFC_T on connect
        }
        SetDisk(volume, disk);
    }

    /// <summary>`resize` of a volume without peers: the device takes <paramref name="agreedSizeBytes"/> (la-size). The host persists it.</summary>
    public void SetAgreedSize(int volumeNumber, long agreedSizeBytes)
    {
        var volume = Volume(volumeNumber);
        Invariant.Assert(volume.Metadata is not null, $"volume {volumeNumber}: resized while Diskless");
        volume.UpdateMetadata(md => md with { UsableSizeBytes = agreedSizeBytes });
    }

    /// <summary>
    /// drbdadm outdate (DRBD 9's rules, drbd_state.c): an Inconsistent or absent disk cannot be
    /// Outdated (SS_LOWER_THAN_OUTDATED); a Primary refuses (SS_NO_UP_TO_DATE_DISK when this is its
    /// only UpToDate data, else SS_CONNECTED_OUTDATES), and so does a Secondary connected to a
    /// Primary (local_disk_may_be_outdated: the Primary keeps it current). Otherwise the disk is
    /// Outdated: MDF_CONSISTENT stays, MDF_WAS_UP_TO_DATE goes, so it stays Outdated across restarts
    /// until a peer brings it up to date (a resync, or a handshake that finds nothing to sync).
    /// </summary>
    public StateChangeResult Outdate(int volumeNumber)
    {
        var volume = Volume(volumeNumber);
        if (volume.Disk == DiskState.Outdated)
        {
            return StateChangeResult.NothingToDo;
        }
        if (volume.Metadata is null || volume.Disk is not (DiskState.UpToDate or DiskState.Consistent))
        {
            return StateChangeResult.LowerThanOutdated;
        }
        if (Role == Role.Primary)
        {
            return PeerHasUpToDateData() ? StateChangeResult.ConnectedOutdates : StateChangeResult.NoUpToDateDisk;
        }
        if (peers.Any(p => p.IsConnected && p.PeerRole == Role.Primary))
        {
            return StateChangeResult.ConnectedOutdates;
        }
        SetDisk(volume, DiskState.Outdated);
        volume.UpdateMetadata(md => md with { Flags = (md.Flags | MetadataFlags.Consistent) & ~MetadataFlags.WasUpToDate });
        return StateChangeResult.Success;
    }

    /// <summary>
    /// Promotes to Primary (drbd_set_role). Needs UpToDate data on every volume; a Consistent disk
    /// with no connected peer is taken as UpToDate (the peer cannot be newer without us knowing,
    /// fencing aside). <paramref name="force"/> makes an Inconsistent or Outdated disk UpToDate and
    /// starts a new data generation. With fencing, a disconnected peer must be known Outdated
    /// (or Inconsistent): otherwise SS_PRIMARY_NOP, and the host runs fence-peer and asks again with
    /// <paramref name="peersFenced"/>; then only <paramref name="force"/> promotes past an unfenced
    /// peer, as DRBD does ("Forced into split brain situation!").
    /// </summary>
    public StateChangeResult Promote(bool force, bool peersFenced = false)
    {
        var check = CanPromote(force, peersFenced);
        if (check != StateChangeResult.Success)
        {
            return check;
        }
        foreach (var volume in volumes)
        {
            // A volume without a usable local disk is served through its UpToDate peer; its
            // metadata (if any, e.g. Detaching) must not be blessed as good data.
            if (volume.Metadata is null || volume.Disk is not (DiskState.UpToDate or DiskState.Consistent or DiskState.Inconsistent or DiskState.Outdated))
            {
                continue;
            }
            bool forced = volume.Disk is DiskState.Inconsistent or DiskState.Outdated;
            SetDisk(volume, DiskState.UpToDate);
            volume.UpdateMetadata(md =>
            {
                var promoted = md with { Flags = md.Flags | MetadataFlags.PrimaryInd | MetadataFlags.Consistent | MetadataFlags.WasUpToDate };
                return forced || !AllPeersConnected() ? WithNewCurrentUuid(promoted) : WithPrimaryBit(promoted, primary: true);
            });
        }
        SetRole(Role.Primary);
        return StateChangeResult.Success;
    }

    /// <summary>
    /// What <see cref="Promote"/> would answer, changing nothing: Success when it would promote. The
    /// host checks this before it asks connected peers to agree (a promotion is cluster-wide).
    /// </summary>
    public StateChangeResult CanPromote(bool force, bool peersFenced = false)
    {
        if (Role == Role.Primary)
        {
            return StateChangeResult.NothingToDo;
        }
        if (peers.Any(p => p.IsConnected && p.PeerRole == Role.Primary && !p.AllowTwoPrimaries))
        {
            return StateChangeResult.TwoPrimaries;
        }
        foreach (var volume in volumes)
        {
            var refusal = PromotionRefusal(volume, force);
            if (refusal is not null)
            {
                return refusal.Value;
            }
        }
        return UnfencedPeers().Any() && !(force && peersFenced) ? StateChangeResult.PrimaryNop : StateChangeResult.Success;
    }

    /// <summary>
    /// Demotes to Secondary. Refused while the device is held open (NBD clients connected) unless
    /// forced; the host then fails their requests and disconnects them. With
    /// <paramref name="writesUnconfirmed"/> (the replica's HoldsUnconfirmedWrites: a peer has not yet
    /// confirmed the last writes stable) the primary indicator stays on disk, so a crash before they
    /// are confirmed comes back crashed-primary; the replica clears it once they are.
    /// </summary>
    public StateChangeResult Demote(bool force, bool deviceOpen, bool writesUnconfirmed = false)
    {
        if (Role == Role.Secondary)
        {
            return StateChangeResult.NothingToDo;
        }
        if (deviceOpen && !force)
        {
            return StateChangeResult.DeviceInUse;
        }
        foreach (var volume in volumes.Where(v => v.Metadata is not null))
        {
            volume.UpdateMetadata(md => WithPrimaryBit(writesUnconfirmed ? md : md with { Flags = md.Flags & ~MetadataFlags.PrimaryInd }, primary: false));
        }
        SetRole(Role.Secondary);
        return StateChangeResult.Success;
    }

    private StateChangeResult? PromotionRefusal(VolumeState volume, bool force) => volume.Disk switch
    {
        DiskState.UpToDate => null,
        DiskState.Consistent when !peers.Any(p => p.IsConnected) => null,
        // DRBD 9 forces a disk UpToDate only without an UpToDate peer (has_up_to_date_peer_disks);
        // with one (a SyncTarget's source, say) it would promote over the peer's data, which this
        // engine does not do for a disk it has: refused.
        DiskState.Inconsistent or DiskState.Outdated or DiskState.Consistent when force && !PeerHasUpToDateData() => null,
        DiskState.Diskless or DiskState.Failed or DiskState.Detaching or DiskState.Attaching =>
            PeerHasUpToDateData() ? null : StateChangeResult.NoUpToDateDisk,
        _ => StateChangeResult.NoUpToDateDisk,
    };

    /// <summary>
    /// Starts a new data generation (drbd_uuid_new_current): the old current UUID goes to history
    /// and becomes the bitmap UUID of every peer not connected now, so a later resync knows what the
    /// peer missed. The low bit marks a Primary's UUID.
    /// </summary>
    private Superblock WithNewCurrentUuid(Superblock md)
    {
        Span<bool> disconnected = stackalloc bool[md.Peers.Length];
        for (int slot = 0; slot < md.Peers.Length; slot++)
        {
            var peerSlot = md.Peers[slot];
            disconnected[slot] = !peerSlot.IsFree && !peers.Any(p => p.NodeId == peerSlot.NodeId && p.IsConnected);
        }
        return md.WithGenerationIds(md.GenerationIds.NewCurrentUuid(random.NextUInt64(), primary: true, disconnected));
    }

    private static Superblock WithPrimaryBit(Superblock md, bool primary) =>
        md.WithGenerationIds(md.GenerationIds.WithPrimaryBit(primary));

    private bool AllPeersConnected() => peers.All(p => p.IsConnected);

    /// <summary>Peers with fencing that are not connected and not known Outdated or worse (drbd_state.c's SS_PRIMARY_NOP test).</summary>
    public IEnumerable<PeerState> UnfencedPeers() => peers.Where(p => p.Fencing && !p.IsConnected && p.PeerDisk > DiskState.Outdated);

    /// <summary>Sets <paramref name="flag"/> on exactly the slots of <paramref name="peersWithFlag"/> (null: unchanged).</summary>
    private static Superblock WithPeerFlag(Superblock md, PeerSlotFlags flag, IReadOnlyCollection<int>? peersWithFlag)
    {
        if (peersWithFlag is null)
        {
            return md;
        }
        var slots = md.Peers.ToBuilder();
        for (int i = 0; i < slots.Count; i++)
        {
            if (!slots[i].IsFree)
            {
                var flags = slots[i].Flags & ~flag;
                slots[i] = slots[i] with { Flags = peersWithFlag.Contains(slots[i].NodeId) ? flags | flag : flags };
            }
        }
        return md with { Peers = slots.MoveToImmutable() };
    }

    private bool PeerHasUpToDateData() => peers.Any(p => p.IsConnected && p.PeerDisk == DiskState.UpToDate);

    private void SetRole(Role role)
    {
        if (Role != role)
        {
            transitions.Add(new StateTransition(Name, "role", Role.ToString(), role.ToString()));
            Role = role;
        }
    }

    private void SetDisk(VolumeState volume, DiskState disk)
    {
        if (volume.Disk != disk)
        {
            transitions.Add(new StateTransition($"{Name}/{volume.Number}", "disk", volume.Disk.ToString(), disk.ToString()));
            volume.Disk = disk;
        }
    }
}

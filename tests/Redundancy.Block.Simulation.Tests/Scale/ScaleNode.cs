using System.Collections.Immutable;
using Redundancy.Block.Engine.ActivityLog;
using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;
using Redundancy.Block.Simulation.Replication;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// One node of a scale run across crashes and restarts, put together as the agent does: the
/// resource's state machine (promotion rules, the superblock it persists), the disk, and the
/// running <see cref="SimReplicaNode"/>. A crash stops the running node; a restart builds a fresh
/// one from what survives: the disk (unflushed writes lost or torn), the last persisted superblock
/// (a Primary that never demoted comes back crashed-primary) and the bitmaps, with the activity
/// log's extents marked out of sync after a Primary crash (DRBD's apply-al). The agent writes
/// dirty bitmap pages on every tick after flushing the data disk (a cleared bit must not outlive
/// the data it vouches for), so after a crash a bit cleared since the last write-out is set again;
/// bits set since are taken as they were at the crash. Each superblock write flushes the device, as
/// the agent's does (the metadata is internal).
/// </summary>
public sealed class ScaleNode
{
    public const long DiskBytes = 512 << 10;
    private const int PeerSlot0 = 0;
    private readonly EventScheduler scheduler;
    private readonly SimulatedNetwork network;
    private readonly SimRandom random;
    private readonly PeerLinkSettings settings;
    private readonly bool allowTwoPrimaries;
    private readonly ResyncRateSettings rate = new() { CPlanAheadMs = 0, ResyncRateKibPerSec = 100 * 1024 };
    private Superblock persisted;

    public ScaleNode(string name, int nodeId, string peerName, int peerNodeId, ResourceDefinition resource, ulong initialUuid,
        EventScheduler scheduler, SimulatedNetwork network, SimRandom random)
    {
        Name = name;
        NodeId = nodeId;
        PeerName = peerName;
        PeerNodeId = peerNodeId;
        this.scheduler = scheduler;
        this.network = network;
        this.random = random;
        Engine.Invariant.Assert(PeerLinkSettings.TryCreate(resource, resource.FindNode(name)!, resource.FindNode(peerName)!, out settings, out string error), error);
        allowTwoPrimaries = resource.AllowTwoPrimaries();
        Disk = new SimulatedDisk($"{name}/0", DiskBytes);
        persisted = new Superblock
        {
            NodeId = nodeId,
            UsableSizeBytes = DiskBytes,
            Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate,
            CurrentUuid = initialUuid,
            Peers = [new PeerSlot(peerNodeId, 0, PeerSlotFlags.None, PeerSlot0)],
        };
        State = NewState();
        Sim = Start(new BitmapTracker(DiskBytes, 1), []);
    }

    public string Name { get; }

    public int NodeId { get; }

    public string PeerName { get; }

    public int PeerNodeId { get; }

    public SimulatedDisk Disk { get; }

    /// <summary>What this node's disk holds in one ledger block (visible contents, unflushed writes included).</summary>
    public ReadOnlySpan<byte> Block(long block) => Disk.Contents.Slice((int)(block * WriteLedger.BlockBytes), WriteLedger.BlockBytes);

    /// <summary>The running incarnation (a crashed one stays until the restart).</summary>
    public SimReplicaNode Sim { get; private set; }

    /// <summary>The resource's state machine of the running incarnation (the agent's runtime.State).</summary>
    public ResourceStateMachine State { get; private set; }

    public bool Up => !Sim.Crashed;

    public Replica Replica => Sim.Replica;

    public ReplicaVolume Volume => Sim.Replica.Volume(0);

    public int Restarts { get; private set; }

    /// <summary>Split-brain auto-demotions (call-pri-lost-after-sb) so far: the transition checker allows those role changes.</summary>
    public int AutoDemotions { get; private set; }

    /// <summary>Simulated milliseconds this node's clock runs ahead (jumps); its rate is <see cref="ClockRatePercent"/> of real.</summary>
    public long ClockOffsetMs { get; set; }

    public int ClockRatePercent { get; set; } = 100;

    /// <summary>The generation UUID changed (persisted, or set by an operator action): the ledger's generation tree learns it.</summary>
    public Action<ScaleNode, ulong>? GenerationSeen { get; set; }

    /// <summary>Every line the running incarnation logs (the replay's timeline shows them in order).</summary>
    public Action<ScaleNode, string>? Logged { get; set; }

    /// <summary>The superblock as it is on disk now.</summary>
    public Superblock PersistedSuperblock => persisted;

    /// <summary>The quick-sync bitmap as the agent last wrote it out.</summary>
    private QuickSyncBitmap writtenOutBitmap = new(DiskBytes);

    /// <summary>
    /// The agent's tick: when the bitmap changed, the data disk is flushed and the pages written out
    /// (a failing flush leaves the pages as they were, as the agent's write-out does).
    /// </summary>
    public void WriteOutBitmap()
    {
        var volume = Sim.Replica.Volume(0);
        if (!Up || !volume.HasLocalData || Disk.FailFlushes)
        {
            return;
        }
        var current = volume.Bitmaps.Bitmap(PeerSlot0);
        bool changed = false;
        for (long bit = 0; bit < current.BitCount && !changed; bit++)
        {
            changed = current.IsSet(bit) != writtenOutBitmap.IsSet(bit);
        }
        if (changed)
        {
            _ = Disk.FlushAsync();
            writtenOutBitmap = Copy(current);
        }
    }

    private static QuickSyncBitmap Copy(QuickSyncBitmap bitmap)
    {
        var copy = new QuickSyncBitmap(DiskBytes);
        for (long bit = bitmap.FindNextSet(0); bit >= 0 && bit < bitmap.BitCount; bit = bitmap.FindNextSet(bit + 1))
        {
            copy.SetBits(bit, 1);
        }
        return copy;
    }

    /// <summary>Power loss; <paramref name="tear"/>: unflushed writes may land in part.</summary>
    public void Crash(bool tear)
    {
        Engine.Invariant.Assert(Up, $"{Name} crashes only while up");
        Sim.Crash(tear);
    }

    /// <summary>The agent starts again (`up`): the disk attaches from its superblock, the peer is dialled.</summary>
    public void Restart()
    {
        Engine.Invariant.Assert(!Up, $"{Name} restarts only after a crash");
        var old = Sim.Replica.Volume(0);
        var bitmap = new QuickSyncBitmap(DiskBytes);
        foreach (var survivor in (ReadOnlySpan<QuickSyncBitmap>)[old.Bitmaps.Bitmap(PeerSlot0), writtenOutBitmap])
        {
            for (long bit = survivor.FindNextSet(0); bit >= 0 && bit < survivor.BitCount; bit = survivor.FindNextSet(bit + 1))
            {
                bitmap.SetBits(bit, 1);
            }
        }
        writtenOutBitmap = Copy(bitmap);
        var extents = old.ActivityLog?.ActiveExtents ?? [];
        Disk.FailWrites = false;
        State = NewState();
        Sim = Start(new BitmapTracker([bitmap]), extents);
        Restarts++;
    }

    /// <summary>
    /// `drbdadm down`, `create-md`, `up`: what DRBD's guide tells the administrator to do with a node
    /// whose data nobody needs when the handshake finds unrelated data. The node stops (what its disk
    /// has not flushed does not matter: it is Inconsistent), its superblock becomes the one create-md
    /// writes (UUID_JUST_CREATED, not Consistent, no bitmap or history UUIDs) with an empty bitmap, and
    /// it starts again; the handshake then gives it a full sync from the peer.
    /// </summary>
    public void CreateMetadata()
    {
        Engine.Invariant.Assert(Up && Volume.Disk == DiskState.Inconsistent && Replica.Role == Role.Secondary,
            $"{Name}: create-md here only on an Inconsistent Secondary");
        Sim.Crash(tear: false);
        persisted = persisted with
        {
            Flags = MetadataFlags.AlClean,
            CurrentUuid = GenerationIds.JustCreated,
            HistoryUuids = [],
            Peers = [new PeerSlot(PeerNodeId, 0, PeerSlotFlags.None, PeerSlot0)],
        };
        writtenOutBitmap = new QuickSyncBitmap(DiskBytes);
        State = NewState();
        Sim = Start(new BitmapTracker(DiskBytes, 1), []);
        Restarts++;
    }

    /// <summary>`attach` after the disk was detached: the superblock as last persisted, then the handshake (if connected).</summary>
    public StateChangeResult Attach()
    {
        if (State.Volume(0).Disk != DiskState.Diskless || Volume.Disk != DiskState.Diskless)
        {
            return StateChangeResult.AlreadyAttached;
        }
        if (Replica.AttachRefusal(0, persisted.GenerationIds) is not null)
        {
            return StateChangeResult.DataNotCurrent;
        }
        Disk.FailWrites = false;
        var result = State.Attach(0, persisted);
        if (result == StateChangeResult.Success)
        {
            Persist();
            Sim.AttachDisk(0, persisted.GenerationIds, persisted.Flags, State.Volume(0).Disk);
        }
        return result;
    }

    /// <summary>The state machine's view of the peer, from the replica (as the agent's ChangeState does first).</summary>
    public void UpdatePeerView()
    {
        var link = Replica.Links[PeerNodeId];
        State.UpdatePeer(PeerNodeId, link.State, link.PeerRole, Replica.PeerDiskOf(PeerNodeId, 0));
    }

    /// <summary>
    /// A change of the resource's state, as the agent's ChangeState: under the peers' states as the
    /// replica knows them, persisted at once, then adopted by the replica.
    /// </summary>
    public StateChangeResult Change(Func<ResourceStateMachine, StateChangeResult> change)
    {
        UpdatePeerView();
        var result = change(State);
        if (result != StateChangeResult.Success)
        {
            return result;
        }
        Persist();
        var volume = State.Volume(0);
        Replica.AdoptLocal(0, volume.Metadata?.GenerationIds ?? Volume.Ids, volume.Metadata?.Flags ?? Volume.Flags, volume.Disk);
        Replica.SetRole(State.Role);
        GenerationSeen?.Invoke(this, Volume.Ids.Current);
        return result;
    }

    /// <summary>How often the disk failed so far (a re-attach does not undo what a failure lost).</summary>
    public int DiskFailures { get; private set; }

    /// <summary>The replica's disk failed under `on-io-error detach`: the state machine follows (Failed, then Diskless); true when it just failed.</summary>
    public bool FollowDiskFailure()
    {
        var disk = State.Volume(0).Disk;
        bool failed = false;
        if (Volume.Disk is DiskState.Failed or DiskState.Diskless && disk is not (DiskState.Diskless or DiskState.Failed))
        {
            State.DiskFailed(0);
            DiskFailures++;
            failed = true;
        }
        if (Volume.Disk == DiskState.Diskless && State.Volume(0).Disk == DiskState.Failed)
        {
            State.CompleteDetach(0);
        }
        return failed;
    }

    private ResourceStateMachine NewState()
    {
        var state = new ResourceStateMachine("r0", NodeId, [0], [new PeerState(PeerName, PeerNodeId) { AllowTwoPrimaries = allowTwoPrimaries }], random);
        Engine.Invariant.Assert(state.Attach(0, persisted) == StateChangeResult.Success, "the disk attaches at start");
        Persist(state);
        return state;
    }

    private SimReplicaNode Start(BitmapTracker bitmaps, ImmutableArray<uint> activeExtents)
    {
        var md = persisted;
        if (md.Flags.HasFlag(MetadataFlags.CrashedPrimary))
        {
            bitmaps.MarkExtentsOutOfSync(activeExtents);
        }
        var outdated = md.Peers.Where(p => !p.IsFree && p.Flags.HasFlag(PeerSlotFlags.Outdated)).Select(p => p.NodeId);
        var volume = new ReplicaVolume(0, DiskBytes, md.GenerationIds, md.Flags, State.Volume(0).Disk, new Dictionary<int, int> { [PeerNodeId] = PeerSlot0 },
            bitmaps, md.UsableSizeBytes, outdated)
        {
            ResyncRate = rate,
            ActivityLog = new ActivityLogTracker(2, DiskBytes, activityLogSize4k: 8),
        };
        var sim = new SimReplicaNode(Name, NodeId, scheduler, network, random.Fork(), [settings], [volume], DiskBytes, new Dictionary<int, SimulatedDisk> { [0] = Disk })
        {
            DetachOnIoError = true,
            Clock = t => t * ClockRatePercent / 100 + ClockOffsetMs,
        };
        sim.Persisted = _ => OnPersisted(sim);
        sim.Logged = line => Logged?.Invoke(this, line);
        sim.BecomeSecondary = () => DemoteAfterSplitBrain(sim);
        sim.Replica.SetRole(State.Role);
        sim.Replica.Connect(sim.NowMs);
        return sim;
    }

    /// <summary>The replica moved the volume on: the resource adopts it and persists (the agent's PersistReplicaVolume).</summary>
    private void OnPersisted(SimReplicaNode sim)
    {
        if (sim != Sim || sim.Crashed)
        {
            return;
        }
        var volume = sim.Replica.Volume(0);
        State.AdoptReplicaState(0, volume.Ids, volume.Flags, volume.Disk, [.. volume.FencedPeerDisks.Keys], volume.AgreedSizeBytes);
        Persist();
        GenerationSeen?.Invoke(this, volume.Ids.Current);
    }

    private bool DemoteAfterSplitBrain(SimReplicaNode sim)
    {
        if (sim != Sim)
        {
            return false;
        }
        var result = State.Demote(force: false, deviceOpen: false);
        if (result == StateChangeResult.Success)
        {
            Persist();
            AutoDemotions++;
        }
        return result is StateChangeResult.Success or StateChangeResult.NothingToDo;
    }

    private void Persist() => Persist(State);

    /// <summary>
    /// The agent's PersistVolumeAsync: a changed superblock is written to the metadata area of the
    /// same device, then the device is flushed, which makes every completed data write durable too.
    /// A write error leaves it unwritten (and still dirty) and is a meta-data I/O error: as in DRBD
    /// (drbd_md_write fails → drbd_chk_io_error(DRBD_META_IO_ERROR) → on-io-error detach) the disk
    /// fails, after the state change that wanted it written, as the simulated host fails it on a data
    /// write error. Otherwise a promotion whose primary indicator never reached the disk would, after
    /// a crash, come back without "crashed primary", and the activity log's extents would go unmarked.
    /// </summary>
    private void Persist(ResourceStateMachine state)
    {
        var volume = state.Volume(0);
        if (!volume.MetadataDirty || volume.Metadata is not { } md)
        {
            return;
        }
        if (Disk.FailWrites || Disk.FailFlushes)
        {
            if (Sim is { Crashed: false } running)
            {
                running.HostIoError(0);
            }
            return;
        }
        persisted = md;
        volume.MarkMetadataPersisted();
        Engine.Invariant.Assert(Disk.FlushAsync().IsCompletedSuccessfully, "the simulated disk flushes");
    }
}

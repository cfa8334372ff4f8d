using Redundancy.Block.Agent.Replication;
using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Engine.Status;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// One resource that is up on this agent: its definition, the engine's state machine, the attached
/// volumes and the NBD clients holding it open. The manager serialises every change.
/// </summary>
internal sealed class ResourceRuntime
{
    private readonly Lock exportsGate = new();
    private readonly List<ExportHandle> openExports = [];
    private CancellationTokenSource revocation = new();
    private TaskCompletionSource? allClosed;

    public ResourceRuntime(ResourceDefinition definition, NodeDefinition node, ResourceStateMachine state)
    {
        Definition = definition;
        Node = node;
        State = state;
        foreach (var volume in node.Volumes)
        {
            DataPaths[volume.Number] = null;
        }
    }

    /// <summary>The definition in force (`adjust` replaces it when only settings changed).</summary>
    public ResourceDefinition Definition { get; set; }

    public NodeDefinition Node { get; }

    public ResourceStateMachine State { get; }

    public string Name => Definition.Name;

    /// <summary>Attached volumes by number (absent while Diskless).</summary>
    public Dictionary<int, VolumeRuntime> Attached { get; } = [];

    /// <summary>
    /// The data path of each volume (null until first attached). It outlives a detach, disconnected
    /// while Diskless: NBD clients and the replica keep using the same one, and `attach` connects
    /// the disk to it again.
    /// </summary>
    public Dictionary<int, VolumeDataPath?> DataPaths { get; } = [];

    /// <summary>The replication of a resource with peers, from `up` to `down` (null for a resource of one node).</summary>
    public ReplicaHost? Replication { get; set; }

    /// <summary>1 while a bitmap write-out runs (ticks skip rather than queue).</summary>
    public int BitmapWriterBusy;

    /// <summary>The status as last published, to compute events2 `change` lines.</summary>
    public ResourceStatus? LastPublished { get; set; }

    public int OpenCount
    {
        get
        {
            lock (exportsGate)
            {
                return openExports.Count;
            }
        }
    }

    /// <summary>
    /// Runs a state change atomically with respect to clients opening the device, so a client can
    /// never open a resource that is being demoted or detached.
    /// </summary>
    public T UnderExportsLock<T>(Func<int, T> change)
    {
        lock (exportsGate)
        {
            return change(openExports.Count);
        }
    }

    /// <summary>The NBD export name of a volume: the resource name for volume 0, `NAME/N` otherwise.</summary>
    public string ExportName(int volume) => volume == 0 ? Name : $"{Name}/{volume}";

    /// <summary>The volume an export name refers to, or null.</summary>
    public int? VolumeOfExport(string exportName)
    {
        foreach (var volume in Node.Volumes)
        {
            if (ExportName(volume.Number) == exportName)
            {
                return volume.Number;
            }
        }
        return null;
    }

    /// <summary>
    /// Gives an NBD client a hold on a volume; refused (with DRBD's reason) unless Primary with
    /// UpToDate data: its own disk's, or for a replicated resource a connected peer's (a Diskless
    /// Primary is served through its peer). Checked under the replica's lock, then the exports lock.
    /// </summary>
    public bool TryOpen(int volume, out ExportHandle? handle, out string refusal)
    {
        if (Replication is not { } host)
        {
            return TryOpen(volume, null, out handle, out refusal);
        }
        ExportHandle? opened = null;
        string why = string.Empty;
        bool ok = host.Locked(replica =>
        {
            bool result = TryOpen(volume, replica, out var h, out var r);
            (opened, why) = (h, r);
            return result;
        });
        (handle, refusal) = (opened, why);
        return ok;
    }

    private bool TryOpen(int volume, Replica? replica, out ExportHandle? handle, out string refusal)
    {
        handle = null;
        lock (exportsGate)
        {
            if (State.Role != Role.Primary)
            {
                refusal = $"{Name} is {State.Role}: only a Primary serves I/O (run `rbadm primary {Name}`)";
                return false;
            }
            var dataPath = DataPaths.GetValueOrDefault(volume);
            var disk = State.Volume(volume).Disk;
            bool throughPeer = replica is not null && replica.Links.Values.Any(l => l.State == ConnectionState.Connected && l.PeerDisks.GetValueOrDefault(volume) == DiskState.UpToDate);
            if (dataPath is null || (disk != DiskState.UpToDate && !throughPeer))
            {
                refusal = $"{ExportName(volume)} has no UpToDate data (disk:{disk}{(replica is null ? string.Empty : ", and no connected peer is UpToDate")})";
                return false;
            }
            // The device is the agreed size (la-size in the superblock), which a bigger local disk exceeds;
            // a replicated volume's is the replica's (kept while Diskless: the peer serves that size).
            long agreedBytes = replica is not null ? replica.Volume(volume).AgreedSizeBytes
                : Math.Min(State.Volume(volume).Metadata?.UsableSizeBytes ?? dataPath.SizeBytes, dataPath.SizeBytes);
            IBlockDevice device = Replication is { } host ? new ReplicatedVolumeDevice(host, volume, dataPath, agreedBytes)
                : agreedBytes < dataPath.SizeBytes ? new SubrangeBlockDevice(dataPath, 0, agreedBytes) : dataPath;
            handle = new ExportHandle(ExportName(volume), device, revocation.Token, Release);
            openExports.Add(handle);
            refusal = string.Empty;
            return true;
        }
    }

    /// <summary>
    /// Takes the device away from every client (`secondary --force`, `down`, shutdown): their
    /// requests fail with ESHUTDOWN and they are disconnected. Completes when all have let go or
    /// after <paramref name="timeout"/>.
    /// </summary>
    public async Task RevokeClientsAsync(TimeSpan timeout)
    {
        Task closed;
        lock (exportsGate)
        {
            if (openExports.Count == 0)
            {
                return;
            }
            allClosed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            closed = allClosed.Task;
        }
        await revocation.CancelAsync().ConfigureAwait(false);
        await Task.WhenAny(closed, Task.Delay(timeout)).ConfigureAwait(false);
        lock (exportsGate)
        {
            revocation.Dispose();
            revocation = new CancellationTokenSource();
        }
    }

    private void Release(ExportHandle handle)
    {
        TaskCompletionSource? done = null;
        lock (exportsGate)
        {
            openExports.Remove(handle);
            if (openExports.Count == 0)
            {
                done = allClosed;
                allClosed = null;
            }
        }
        done?.TrySetResult();
    }

    /// <summary>The drbdsetup-shaped status of this resource now.</summary>
    public ResourceStatus Snapshot() => Replication is { } host ? host.Locked(r => Snapshot(r, host.NowMs)) : Snapshot(null, 0);

    private ResourceStatus Snapshot(Replica? replica, long nowMs)
    {
        int open = OpenCount;
        bool suspendedFencing = replica?.SuspendedFencing ?? false;
        return new ResourceStatus
        {
            Name = Name,
            NodeId = Node.NodeId,
            Role = State.Role,
            Suspended = suspendedFencing,
            SuspendedFencing = suspendedFencing,
            Devices = [.. State.Volumes.Select(v => DeviceSnapshot(v, open, replica))],
            Connections = [.. State.Peers.Select(p => replica is null ? new ConnectionStatus
            {
                PeerNodeId = p.NodeId,
                Name = p.Name,
                ConnectionState = p.Connection,
                PeerRole = p.PeerRole,
                PeerDevices = [.. State.Volumes.Select(v => new PeerDeviceStatus
                {
                    Volume = v.Number,
                    ReplicationState = p.IsConnected ? ReplicationState.Established : ReplicationState.Off,
                    PeerDiskState = p.PeerDisk,
                })],
            } : ReplicatedConnection(replica, p, nowMs))],
        };
    }

    /// <summary>A connection as the replica has it: link state, the peer's role and disks, resync or verify progress.</summary>
    private ConnectionStatus ReplicatedConnection(Replica replica, PeerState peer, long nowMs)
    {
        var link = replica.Links[peer.NodeId];
        return new ConnectionStatus
        {
            PeerNodeId = peer.NodeId,
            Name = peer.Name,
            ConnectionState = link.State,
            PeerRole = link.PeerRole,
            PeerDevices = [.. State.Volumes.Select(v =>
            {
                var volume = replica.Volume(v.Number);
                var replication = replica.ReplicationOf(peer.NodeId, v.Number);
                long outOfSyncBytes = volume.OutOfSyncBytes(peer.NodeId);
                double inSync = 100.0 * (volume.AgreedSizeBytes - outOfSyncBytes) / volume.AgreedSizeBytes;
                var progress = replica.ResyncProgressOf(peer.NodeId, v.Number, nowMs);
                var verify = replica.VerifyProgressOf(peer.NodeId, v.Number);
                var (sentBytes, receivedBytes) = replica.TrafficOf(peer.NodeId, v.Number);
                return new PeerDeviceStatus
                {
                    SentKib = sentBytes / 1024,
                    ReceivedKib = receivedBytes / 1024,
                    Volume = v.Number,
                    ReplicationState = replication,
                    PeerDiskState = replica.PeerDiskOf(peer.NodeId, v.Number),
                    ResyncSuspended = replication is ReplicationState.PausedSyncS or ReplicationState.PausedSyncT ? "user" : "no",
                    OutOfSyncKib = outOfSyncBytes / 1024,
                    HasSyncDetails = replication is ReplicationState.SyncSource or ReplicationState.SyncTarget or ReplicationState.PausedSyncS or ReplicationState.PausedSyncT,
                    HasOnlineVerifyDetails = verify is not null,
                    // While verifying, `done:` is how far the verify got (as drbdsetup shows it).
                    PercentInSync = Math.Round(verify?.DonePercent ?? progress?.DonePercent ?? inSync, 2),
                };
            })],
        };
    }

    private DeviceStatus DeviceSnapshot(VolumeState volume, int openCount, Replica? replica)
    {
        var dataPath = DataPaths.GetValueOrDefault(volume.Number);
        return new DeviceStatus
        {
            Volume = volume.Number,
            Minor = MinorOf(volume.Number),
            DiskState = volume.Disk,
            Client = volume.Disk == DiskState.Diskless,
            Open = openCount > 0,
            // The device's size: the agreed one in the metadata, or the replica's while Diskless (the peer serves it).
            SizeKib = (volume.Metadata?.UsableSizeBytes ?? replica?.Volume(volume.Number).AgreedSizeBytes ?? 0) / 1024,
            ReadKib = (dataPath?.ReadBytes ?? 0) / 1024,
            WrittenKib = (dataPath?.WrittenBytes ?? 0) / 1024,
            UpperPending = dataPath?.InFlight ?? 0,
            NbdExport = ExportName(volume.Number),
            NbdAddress = Node.NbdAddress,
            NbdClients = openCount,
        };
    }

    /// <summary>The volume's minor (<see cref="VolumeDefinition.Minor"/>); the volume number for one the node does not define.</summary>
    private int MinorOf(int volume) => Node.Volumes.FirstOrDefault(v => v.Number == volume)?.Minor ?? volume;
}

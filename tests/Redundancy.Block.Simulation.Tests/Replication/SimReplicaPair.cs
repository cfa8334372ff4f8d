using Redundancy.Block.Engine.ActivityLog;
using System.Collections.Immutable;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>Two replica nodes (alpha node-id 0, beta node-id 1) with one volume, over the simulated network.</summary>
public sealed class SimReplicaPair
{
    /// <summary>Four times the resync window, so an interrupted resync has work left that is not yet on the wire.</summary>
    public const long DiskBytes = 16 << 20;

    public SimReplicaPair(int seed, string protocol = "C", NetworkOptions? options = null, ulong sharedCurrent = 0x1234_5678_0000_0000,
        Func<string, (GenerationIds Ids, MetadataFlags Flags, DiskState Disk)>? initial = null, ResyncRateSettings? resyncRate = null,
        string netOptions = "", Func<string, SimVolumeSize>? sizes = null, string? betaNetOptions = null,
        Func<PeerLinkSettings, PeerLinkSettings>? tuneSettings = null)
    {
        this.sizes = sizes ?? (_ => new SimVolumeSize(DiskBytes));
        this.tuneSettings = tuneSettings ?? (s => s);
        this.resyncRate = resyncRate ?? new ResyncRateSettings();
        this.initial = initial ?? (_ => (new GenerationIds(sharedCurrent, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty),
            MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate));
        Random = new SimRandom(seed);
        Network = new SimulatedNetwork(Scheduler, Random.Fork(), options ?? new NetworkOptions());
        ResourceDefinition Resource(string net) => ConfigParser.ParseText($$"""
            resource r0 {
              net { protocol {{protocol}}; cram-hmac-alg sha256; shared-secret "sim"; {{net}} }
              on alpha { node-id 0; address 127.0.0.1:7788; volume 0 { disk /dev/null; meta-disk internal; } }
              on beta  { node-id 1; address 127.0.0.1:7789; volume 0 { disk /dev/null; meta-disk internal; } }
            }
            """, "sim.conf").Resources.Single();
        Alpha = Node(Resource(netOptions), "alpha", "beta");
        // betaNetOptions: beta's configuration differs from alpha's (as during a rolling change).
        Beta = Node(Resource(betaNetOptions ?? netOptions), "beta", "alpha");
        Scheduler.After(100, Tick);
    }

    public EventScheduler Scheduler { get; } = new();

    public SimRandom Random { get; }

    public SimulatedNetwork Network { get; }

    public SimReplicaNode Alpha { get; }

    public SimReplicaNode Beta { get; }

    /// <summary>Both nodes hold the same UpToDate generation (as after a finished initial sync); alpha is Primary.</summary>
    public void ConnectWithAlphaPrimary()
    {
        Alpha.Replica.SetRole(Role.Primary);
        Alpha.Replica.Connect(Scheduler.NowMs);
        Beta.Replica.Connect(Scheduler.NowMs);
        Engine.Invariant.Assert(Scheduler.RunUntil(BothConnected, 10_000), "the pair connects: " + Logs);
    }

    public string Logs => "alpha: " + string.Join(" | ", Alpha.Log) + "\nbeta: " + string.Join(" | ", Beta.Log);

    /// <summary>Both connected, every volume Established, nothing out of sync either way.</summary>
    public bool InSync() => BothConnected()
        && Alpha.Replica.ReplicationOf(1, 0) == ReplicationState.Established && Beta.Replica.ReplicationOf(0, 0) == ReplicationState.Established
        && Alpha.Replica.Volume(0).OutOfSyncBytes(1) == 0 && Beta.Replica.Volume(0).OutOfSyncBytes(0) == 0;

    public bool BothConnected() =>
        Alpha.Replica.Links[1].State == ConnectionState.Connected && Beta.Replica.Links[0].State == ConnectionState.Connected;

    private void Tick()
    {
        foreach (var node in new[] { Alpha, Beta }.Where(n => !n.Crashed))
        {
            node.Replica.Tick(Scheduler.NowMs);
        }
        Scheduler.After(100, Tick);
    }

    private readonly Func<string, (GenerationIds Ids, MetadataFlags Flags, DiskState Disk)> initial;
    private readonly Func<string, SimVolumeSize> sizes;
    private readonly ResyncRateSettings resyncRate;
    private readonly Func<PeerLinkSettings, PeerLinkSettings> tuneSettings;

    private SimReplicaNode Node(ResourceDefinition resource, string local, string peer)
    {
        Engine.Invariant.Assert(PeerLinkSettings.TryCreate(resource, resource.FindNode(local)!, resource.FindNode(peer)!, out var configured, out string error), error);
        var settings = tuneSettings(configured);
        var (ids, flags, disk) = initial(local);
        var size = sizes(local);
        // Two AL slots over four 4 MiB extents: writes keep evicting extents, so the AL's wait and
        // transaction paths run in every simulated workload.
        var volume = new ReplicaVolume(0, size.UsableBytes, ids, flags, disk, new Dictionary<int, int> { [settings.PeerNodeId] = 0 }, agreedSizeBytes: size.AgreedBytes)
        {
            ResyncRate = resyncRate,
            ActivityLog = new ActivityLogTracker(2, size.UsableBytes, activityLogSize4k: 8),
        };
        return new SimReplicaNode(local, settings.LocalNodeId, Scheduler, Network, Random.Fork(), [settings], [volume], Math.Max(size.DiskBytes, size.UsableBytes));
    }

    /// <summary>Hands beta a Data frame as if alpha had sent it (for malformed or damaged frames alpha would never send).</summary>
    public void DeliverDataToBeta(Engine.Peers.Protocol.DataMessage message, byte[] trailing)
    {
        var frame = new byte[Engine.Peers.Protocol.FrameWriter.FrameLength(message) + trailing.Length];
        int written = Engine.Peers.Protocol.FrameWriter.Write(frame, 0, message, trailing.Length);
        trailing.CopyTo(frame, written);
        var buffer = new System.Buffers.ReadOnlySequence<byte>(frame);
        Assert.True(Engine.Peers.Protocol.FrameReader.TryReadFrame(ref buffer, 64 << 20, out var header, out var payload, out string? error), error);
        Beta.Replica.Receive(0, header, payload, Scheduler.NowMs);
    }
}

/// <summary>A simulated volume's sizes: what the disk holds, the agreed size (0: the same), the simulated disk (0: the same; bigger leaves room to grow).</summary>
public sealed record SimVolumeSize(long UsableBytes, long AgreedBytes = 0, long DiskBytes = 0);

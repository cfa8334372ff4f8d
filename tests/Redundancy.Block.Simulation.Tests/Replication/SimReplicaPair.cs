using System.Collections.Immutable;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>Two replica nodes (alpha node-id 0, beta node-id 1) with one volume, over the simulated network.</summary>
public sealed class SimReplicaPair
{
    public const long DiskBytes = 4 << 20;

    public SimReplicaPair(int seed, string protocol = "C", NetworkOptions? options = null, ulong sharedCurrent = 0x1234_5678_0000_0000)
    {
        Random = new SimRandom(seed);
        Network = new SimulatedNetwork(Scheduler, Random.Fork(), options ?? new NetworkOptions());
        string text = $$"""
            resource r0 {
              net { protocol {{protocol}}; cram-hmac-alg sha256; shared-secret "sim"; }
              on alpha { node-id 0; address 127.0.0.1:7788; volume 0 { disk /dev/null; meta-disk internal; } }
              on beta  { node-id 1; address 127.0.0.1:7789; volume 0 { disk /dev/null; meta-disk internal; } }
            }
            """;
        var resource = ConfigParser.ParseText(text, "sim.conf").Resources.Single();
        Alpha = Node(resource, "alpha", "beta", sharedCurrent);
        Beta = Node(resource, "beta", "alpha", sharedCurrent);
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
        Engine.Invariant.Assert(Scheduler.RunUntil(BothConnected, 10_000), "the pair connects: " + string.Join(" | ", Alpha.Log.Concat(Beta.Log)));
    }

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

    private SimReplicaNode Node(ResourceDefinition resource, string local, string peer, ulong current)
    {
        Engine.Invariant.Assert(PeerLinkSettings.TryCreate(resource, resource.FindNode(local)!, resource.FindNode(peer)!, out var settings, out string error), error);
        var ids = new GenerationIds(current, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty);
        var volume = new ReplicaVolume(0, DiskBytes, ids, MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate,
            new Dictionary<int, int> { [settings.PeerNodeId] = 0 });
        return new SimReplicaNode(local, settings.LocalNodeId, Scheduler, Network, Random.Fork(), [settings], [volume], DiskBytes);
    }
}

using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>UP_TO_DATE_NODES, as handlers get it: the node ids whose copy is UpToDate, as this node knows them.</summary>
public class ReplicaUpToDateNodesTests
{
    [Fact]
    public void Connected_UpToDate_peers_count_and_a_lost_or_Inconsistent_one_does_not()
    {
        var pair = new SimReplicaPair(81, options: new NetworkOptions { MaxDelayMs = 3 });
        pair.ConnectWithAlphaPrimary();
        Assert.Equal(0b11UL, pair.Alpha.Replica.UpToDateNodes(0));
        Assert.Equal(0b11UL, pair.Beta.Replica.UpToDateNodes(-1));

        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected, 30_000), pair.Logs);
        Assert.Equal(0b01UL, pair.Alpha.Replica.UpToDateNodes(0));
    }

    [Fact]
    public void A_fresh_Inconsistent_node_is_not_in_the_mask()
    {
        var pair = new SimReplicaPair(82, initial: node => node == "alpha"
            ? (new GenerationIds(0x7300_0000_0000_0001, ImmutableArray.Create(GenerationIds.JustCreated), ImmutableArray<ulong>.Empty), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate)
            : (new GenerationIds(GenerationIds.JustCreated, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), MetadataFlags.None, DiskState.Inconsistent));
        pair.ConnectWithAlphaPrimary();
        Assert.Equal(0b01UL, pair.Alpha.Replica.UpToDateNodes(0));
        Assert.Equal(0b01UL, pair.Beta.Replica.UpToDateNodes(0));
    }
}

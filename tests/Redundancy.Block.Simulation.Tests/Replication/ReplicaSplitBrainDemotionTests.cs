using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// after-sb-1pri call-pri-lost-after-sb: the Primary that loses the split brain gives up its role
/// by itself and becomes SyncTarget. It is then a Secondary like any demoted one: the primary
/// indicator leaves its metadata (else a later crash would come back "crashed primary" and resync
/// its activity log from a node whose data was discarded), and its disk ends equal to the winner's.
/// </summary>
public class ReplicaSplitBrainDemotionTests
{
    [Fact]
    public void The_losing_Primary_demotes_drops_its_primary_indicator_and_resyncs_from_the_winner()
    {
        const ulong shared = 0x1234_5678_0000_0000;
        var pair = new SimReplicaPair(11, netOptions: "after-sb-0pri discard-least-changes; after-sb-1pri call-pri-lost-after-sb;",
            initial: node => (new GenerationIds(shared, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty),
                MetadataFlags.Consistent | MetadataFlags.WasUpToDate | (node == "alpha" ? MetadataFlags.PrimaryInd : 0), DiskState.UpToDate));
        pair.ConnectWithAlphaPrimary();
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => !pair.BothConnected(), 30_000), pair.Logs);

        // Apart: alpha writes one block, beta is promoted, writes eight and steps down again.
        var block = new byte[4096];
        pair.Random.Fill(block);
        int done = 0;
        pair.Alpha.Write(0, 0, block, ok => done += ok ? 1 : 100);
        // As the resource's promotion does without a reachable peer: a new current UUID, the old one
        // kept as the bitmap UUID for the peer.
        pair.Beta.Replica.AdoptLocal(0, new GenerationIds(0xBE7A_0000_0000_0000, ImmutableArray.Create(shared), ImmutableArray<ulong>.Empty),
            MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate);
        pair.Beta.Replica.SetRole(Role.Primary);
        for (int i = 0; i < 8; i++)
        {
            var data = new byte[4096];
            pair.Random.Fill(data);
            pair.Beta.Write(0, (i + 1) * 4096L * 64, data, ok => done += ok ? 1 : 100);
        }
        Assert.True(pair.Scheduler.RunUntil(() => done == 9, 10_000), pair.Logs);
        pair.Beta.Replica.SetRole(Role.Secondary);

        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);

        Assert.True(pair.Alpha.Log.Any(l => l.Contains("Successfully gave up primary role.", StringComparison.Ordinal)), pair.Logs);
        Assert.Equal(Role.Secondary, pair.Alpha.Replica.Role);
        Assert.False(pair.Alpha.Replica.Volume(0).Flags.HasFlag(MetadataFlags.PrimaryInd), $"alpha's flags: {pair.Alpha.Replica.Volume(0).Flags}");
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents), "alpha holds beta's data after the resync");
    }
}

using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Disk states the handshake settles: two Secondaries that came up Consistent (peers configured, so
/// neither knows it is the newest) leave the handshake UpToDate, whether they were equal or one
/// resynced the other.
/// </summary>
public class ReplicaDiskStateTests
{
    private const ulong Older = 0x2000_0000_0000_0000;
    private const ulong Newer = 0x3000_0000_0000_0000;

    [Fact]
    public void Equal_Consistent_copies_are_both_UpToDate_after_the_handshake()
    {
        var pair = new SimReplicaPair(3, initial: _ => (new GenerationIds(Older, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty),
            MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.Consistent));
        ConnectSecondaries(pair);
        Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && Disks(pair) == (DiskState.UpToDate, DiskState.UpToDate), 10_000), pair.Logs);
    }

    [Fact]
    public void The_newer_Consistent_copy_becomes_UpToDate_as_sync_source_and_the_other_after_its_resync()
    {
        var pair = new SimReplicaPair(4, initial: node => node == "alpha"
            ? (new GenerationIds(Newer, ImmutableArray.Create(Older), ImmutableArray<ulong>.Empty), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.Consistent)
            : (new GenerationIds(Older, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.Consistent));
        pair.Alpha.Replica.Volume(0).Bitmaps.MarkOutOfSync(0, 4096, 8192);
        ConnectSecondaries(pair);
        Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && Disks(pair) == (DiskState.UpToDate, DiskState.UpToDate), 10_000), pair.Logs);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal));
    }

    private static void ConnectSecondaries(SimReplicaPair pair)
    {
        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
    }

    private static (DiskState Alpha, DiskState Beta) Disks(SimReplicaPair pair) =>
        (pair.Alpha.Replica.Volume(0).Disk, pair.Beta.Replica.Volume(0).Disk);
}

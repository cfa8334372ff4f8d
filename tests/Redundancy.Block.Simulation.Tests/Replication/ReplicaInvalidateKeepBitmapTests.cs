using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// invalidate and invalidate-remote with --reset-bitmap=no (drbd9-tests' verify scenario): only the
/// blocks the bitmaps already mark out-of-sync — what an online verify found — are resynced, not the
/// whole device. Beta's copy is damaged in five blocks behind the replicas' backs; three are marked
/// (as verify marks them), two are not: after the resync the three are repaired and the two are
/// still damaged, which a full sync would have repaired too.
/// </summary>
public class ReplicaInvalidateKeepBitmapTests
{
    private const int BlockBytes = 4096;
    private static readonly long[] MarkedBlocks = [17, 18, 2500];
    private static readonly long[] UnmarkedBlocks = [40, 3000];

    [Theory]
    [InlineData(false)] // invalidate --reset-bitmap=no on beta, the damaged Secondary
    [InlineData(true)]  // invalidate-remote --reset-bitmap=no on alpha, the Primary
    public void Only_the_blocks_marked_out_of_sync_are_resynced(bool remote)
    {
        var pair = new SimReplicaPair(71, options: new NetworkOptions { MaxDelayMs = 3 });
        FillBoth(pair);
        pair.ConnectWithAlphaPrimary();
        foreach (long block in MarkedBlocks.Concat(UnmarkedBlocks))
        {
            var garbage = new byte[BlockBytes];
            pair.Random.Fill(garbage);
            pair.Beta.Disks[0].WriteAsync(block * BlockBytes, garbage, fua: true);
        }
        var alphaVolume = pair.Alpha.Replica.Volume(0);
        foreach (long block in MarkedBlocks)
        {
            alphaVolume.Bitmaps.MarkOutOfSync(alphaVolume.SlotOfPeer[1], block * BlockBytes, BlockBytes);
        }

        var result = remote
            ? pair.Alpha.Replica.StartSyncAsSource(1, 0, resetBitmap: false)
            : pair.Beta.Replica.Invalidate(0, 0, resetBitmap: false);
        Assert.Equal(StateChangeResult.Success, result);
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);

        Assert.Contains(pair.Alpha.Log, l => l.Contains($"bitmap resync, {MarkedBlocks.Length * BlockBytes / 1024} KiB to sync", StringComparison.Ordinal));
        Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("full resync", StringComparison.Ordinal));
        var alpha = pair.Alpha.Disks[0].Contents;
        var beta = pair.Beta.Disks[0].Contents;
        foreach (long block in MarkedBlocks)
        {
            Assert.True(Block(alpha, block).SequenceEqual(Block(beta, block)), $"marked block {block} was not repaired");
        }
        foreach (long block in UnmarkedBlocks)
        {
            Assert.False(Block(alpha, block).SequenceEqual(Block(beta, block)), $"unmarked block {block} was resynced: a full sync, not a bitmap one");
        }
        Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
        Assert.DoesNotContain(pair.Beta.Log, l => l.Contains("protocol error", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_marks_there_is_nothing_to_resync_and_the_pair_stays_connected()
    {
        var pair = new SimReplicaPair(72, options: new NetworkOptions { MaxDelayMs = 3 });
        FillBoth(pair);
        pair.ConnectWithAlphaPrimary();

        Assert.Equal(StateChangeResult.Success, pair.Beta.Replica.Invalidate(0, 0, resetBitmap: false));
        // The pair is in sync before and after: wait for the (empty) resync itself first.
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Log.Any(l => l.Contains("bitmap resync, 0 KiB to sync", StringComparison.Ordinal)), 10_000), pair.Logs);
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);

        Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
        Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("conn( Connected ->", StringComparison.Ordinal));
    }

    /// <summary>The same random bytes on both disks: an in-sync pair whose blocks a test can tell apart.</summary>
    private static void FillBoth(SimReplicaPair pair)
    {
        var bytes = new byte[SimReplicaPair.DiskBytes];
        pair.Random.Fill(bytes);
        pair.Alpha.Disks[0].WriteAsync(0, bytes, fua: true);
        pair.Beta.Disks[0].WriteAsync(0, bytes, fua: true);
    }

    private static ReadOnlySpan<byte> Block(ReadOnlySpan<byte> disk, long block) => disk.Slice((int)(block * BlockBytes), BlockBytes);
}

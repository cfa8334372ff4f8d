using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>Resync under simulation: bitmap-based after a disconnect, full after a forced primary, resumed after an interruption.</summary>
public class ReplicaResyncTests
{
    private const int BlockBytes = 4096;

    [Fact]
    public void Writes_made_while_apart_are_resynced_by_bitmap_and_the_replicas_end_identical()
    {
        for (int seed = 1; seed <= 20; seed++)
        {
            var pair = new SimReplicaPair(200 + seed, options: new NetworkOptions { MaxDelayMs = 3 });
            long toSync = WriteWhileApart(pair, 40);
            Assert.True(toSync > 0);

            pair.Network.HealAll();
            Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), $"seed {seed}: {pair.Logs}");
            AssertIdentical(pair, seed);
            Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
            Assert.Equal(DiskState.UpToDate, pair.Alpha.Replica.Links[1].PeerDisks[0]);
            Assert.Equal(pair.Alpha.Replica.Volume(0).Ids.Current & ~1UL, pair.Beta.Replica.Volume(0).Ids.Current & ~1UL);
            Assert.Contains(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void A_forced_primary_fully_syncs_a_fresh_peer_even_while_writing()
    {
        const ulong forced = 0x7000_0000_0000_0001;
        var pair = new SimReplicaPair(31, initial: node => node == "alpha"
            ? (new GenerationIds(forced, ImmutableArray.Create(GenerationIds.JustCreated), ImmutableArray<ulong>.Empty), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate)
            : (new GenerationIds(GenerationIds.JustCreated, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), MetadataFlags.None, DiskState.Inconsistent));
        FillAlpha(pair);
        pair.ConnectWithAlphaPrimary();
        Assert.Equal(ReplicationState.WFBitMapT, pair.Beta.Replica.ReplicationOf(0, 0) is ReplicationState.Established ? ReplicationState.Established : ReplicationState.WFBitMapT);
        int done = 0;
        WriteBlocks(pair, 100, () => done++);
        Assert.True(pair.Scheduler.RunUntil(() => done == 100 && pair.InSync(), 120_000), pair.Logs);
        AssertIdentical(pair, 31);
        Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("full resync", StringComparison.Ordinal));
    }

    [Fact]
    public void An_interrupted_resync_resumes_where_it_stopped()
    {
        var pair = new SimReplicaPair(41, options: new NetworkOptions { MaxDelayMs = 3 }, initial: node => node == "alpha"
            ? (new GenerationIds(0x7100_0000_0000_0001, ImmutableArray.Create(GenerationIds.JustCreated), ImmutableArray<ulong>.Empty), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate)
            : (new GenerationIds(GenerationIds.JustCreated, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), MetadataFlags.None, DiskState.Inconsistent));
        FillAlpha(pair);
        pair.ConnectWithAlphaPrimary();
        long total = pair.Alpha.Replica.Volume(0).UsableSizeBytes;
        // Interrupt half way: at most one resync window of requests is on the wire then.
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.ReplicationOf(0, 0) == ReplicationState.SyncTarget
            && pair.Beta.Replica.Volume(0).OutOfSyncBytes(0) < total / 2, 60_000), pair.Logs);
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Links[0].State != ConnectionState.Connected, 30_000));
        long leftAtInterruption = pair.Beta.Replica.Volume(0).OutOfSyncBytes(0);
        Assert.True(pair.Beta.Replica.Volume(0).Disk == DiskState.Inconsistent, pair.Logs);

        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.BothConnected, 60_000), pair.Logs);
        long toSyncAfterReconnect = pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1);
        // Blocks whose RsWriteAck was lost with the connection are redone (as in DRBD): at most one window.
        Assert.True(toSyncAfterReconnect <= leftAtInterruption + Engine.Replication.Replica.ResyncWindowBytes,
            $"resumed with {toSyncAfterReconnect} bytes to sync, {leftAtInterruption} were left: it restarted");
        Assert.True(toSyncAfterReconnect < total, "a resumed resync does not start over");
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        AssertIdentical(pair, 41);
    }

    [Fact]
    public void Invalidate_remote_fully_syncs_the_peer_on_the_same_connection()
    {
        // Alpha's disk holds data beta never got (written under the replica): only a full sync fixes that.
        var pair = new SimReplicaPair(61, options: new NetworkOptions { MaxDelayMs = 3 });
        FillAlpha(pair);
        pair.ConnectWithAlphaPrimary();
        Assert.Equal(StateChangeResult.Success, pair.Alpha.Replica.StartFullSyncAsSource(1, 0));
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        AssertIdentical(pair, 61);
        // The peer learns it is the target (InvalidatePeer) before the bitmap that follows arrives:
        // the sync runs on the connection it was asked on, without a protocol error and reconnect.
        Assert.DoesNotContain(pair.Beta.Log, l => l.Contains("protocol error", StringComparison.Ordinal));
        Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("conn( Connected ->", StringComparison.Ordinal));
        Assert.Contains(pair.Alpha.Log, l => l.Contains("full resync", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0, 4096, 0, 0.85)]      // c-plan-ahead 0: the fixed resync-rate, 4 MiB/s
    [InlineData(2000, 250, 8192, 0.6)]  // the dynamic controller ramps up from resync-rate, capped by c-max-rate 8 MiB/s
    public void The_resync_rate_is_what_the_configuration_says(long planAheadMs, long rateKibPerSec, long maxRateKibPerSec, double minFraction)
    {
        var rate = new Engine.Bitmap.Resync.ResyncRateSettings
        {
            CPlanAheadMs = planAheadMs,
            ResyncRateKibPerSec = rateKibPerSec,
            CMaxRateKibPerSec = maxRateKibPerSec == 0 ? 102400 : maxRateKibPerSec,
            CFillTargetBytes = 1 << 20,
        };
        var pair = new SimReplicaPair(51, resyncRate: rate, initial: node => node == "alpha"
            ? (new GenerationIds(0x7200_0000_0000_0001, ImmutableArray.Create(GenerationIds.JustCreated), ImmutableArray<ulong>.Empty), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate)
            : (new GenerationIds(GenerationIds.JustCreated, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), MetadataFlags.None, DiskState.Inconsistent));
        FillAlpha(pair);
        pair.ConnectWithAlphaPrimary();
        long started = pair.Scheduler.NowMs;
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 120_000), pair.Logs);
        double seconds = (pair.Scheduler.NowMs - started) / 1000.0;
        double mibPerSecond = SimReplicaPair.DiskBytes / (1024.0 * 1024.0) / seconds;
        double limit = (maxRateKibPerSec == 0 ? rateKibPerSec : maxRateKibPerSec) / 1024.0;
        Assert.InRange(mibPerSecond, limit * minFraction, limit * 1.1);
        AssertIdentical(pair, 51);
    }

    [Fact]
    public void Invalidate_remote_on_a_connected_pair_resyncs_without_dropping_the_connection()
    {
        var pair = new SimReplicaPair(91, options: new NetworkOptions { MaxDelayMs = 3 });
        FillAlpha(pair);
        pair.ConnectWithAlphaPrimary();
        Assert.Equal(StateChangeResult.Success, pair.Alpha.Replica.StartFullSyncAsSource(1, 0));
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Log.Any(l => l.Contains("Resync done", StringComparison.Ordinal)) && pair.InSync(), 60_000), pair.Logs);
        // The peer must hear the InvalidatePeer request before the bitmap that follows it.
        Assert.DoesNotContain(pair.Beta.Log, l => l.Contains("protocol error", StringComparison.Ordinal));
        Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("connection lost", StringComparison.Ordinal) || l.Contains("protocol error", StringComparison.Ordinal));
        AssertIdentical(pair, 91);
    }

    /// <summary>
    /// The SyncTarget tells the source a block is in sync (RsWriteAck), and itself UpToDate, only once
    /// a flush made its resync writes durable — unless `disk-flushes no` declares the disk's cache
    /// non-volatile: then on the write. Beta's flushes are held back here: with flushes the resync
    /// waits for them (the source's bits stay set), without it ends.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Resync_writes_count_once_flushed_unless_disk_flushes_is_off(bool diskFlushes)
    {
        var pair = new SimReplicaPair(61, options: new NetworkOptions { MaxDelayMs = 3 }, tuneSettings: s => s with { DiskFlushes = diskFlushes });
        long toSync = WriteWhileApart(pair, 40);
        pair.Beta.HoldFlushes = true;
        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.BothConnected, 30_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);
        AssertIdentical(pair, 61); // every resync write is on beta's disk (its cache)
        if (diskFlushes)
        {
            Assert.Equal(ReplicationState.SyncTarget, pair.Beta.Replica.ReplicationOf(0, 0));
            Assert.Equal(DiskState.Inconsistent, pair.Beta.Replica.Volume(0).Disk);
            Assert.Equal(toSync, pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1));
            pair.Beta.ReleaseFlushes();
        }
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 10_000), pair.Logs);
        Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
    }

    /// <summary>Connects with alpha Primary, cuts the link, writes <paramref name="count"/> blocks on alpha: returns what beta misses.</summary>
    private static long WriteWhileApart(SimReplicaPair pair, int count)
    {
        pair.ConnectWithAlphaPrimary();
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected, 30_000));
        int done = 0;
        WriteBlocks(pair, count, () => done++);
        Assert.True(pair.Scheduler.RunUntil(() => done == count, 30_000));
        return pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1);
    }

    private static void FillAlpha(SimReplicaPair pair)
    {
        var bytes = new byte[SimReplicaPair.DiskBytes];
        pair.Random.Fill(bytes);
        pair.Alpha.Disks[0].WriteAsync(0, bytes, fua: true);
    }

    private static void WriteBlocks(SimReplicaPair pair, int count, Action onDone)
    {
        var random = pair.Random.Fork();
        for (int i = 0; i < count; i++)
        {
            long offset = random.NextInt64(0, SimReplicaPair.DiskBytes / BlockBytes) * BlockBytes;
            var data = new byte[BlockBytes];
            random.Fill(data);
            pair.Scheduler.After(i, () => pair.Alpha.Write(0, offset, data, ok =>
            {
                Assert.True(ok);
                onDone();
            }));
        }
    }

    private static void AssertIdentical(SimReplicaPair pair, int seed)
    {
        var alpha = pair.Alpha.Disks[0].Contents;
        var beta = pair.Beta.Disks[0].Contents;
        for (int block = 0; block < SimReplicaPair.DiskBytes / BlockBytes; block++)
        {
            Assert.True(alpha.Slice(block * BlockBytes, BlockBytes).SequenceEqual(beta.Slice(block * BlockBytes, BlockBytes)), $"seed {seed}: block {block} differs after resync");
        }
    }
}

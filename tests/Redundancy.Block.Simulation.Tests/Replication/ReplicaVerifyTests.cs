using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Online verify under simulation: blocks corrupted behind the replica's back are found exactly,
/// marked on both sides and repaired by the next resync; writes during a verify are no false positives.
/// </summary>
public class ReplicaVerifyTests
{
    private const int BlockBytes = 4096;
    private const long Blocks = SimReplicaPair.DiskBytes / BlockBytes;

    /// <summary>A resync (and verify) rate bound only by the window, so a 16 MiB verify takes well under a simulated second.</summary>
    private static readonly ResyncRateSettings Fast = new() { CPlanAheadMs = 0, ResyncRateKibPerSec = 400 * 1024 };

    [Fact]
    public void Verify_finds_exactly_the_corrupted_blocks_a_reconnect_resyncs_them_and_a_second_verify_finds_none()
    {
        var pair = NewPair(61);
        FillBoth(pair);
        pair.ConnectWithAlphaPrimary();
        long[] corrupted = [100, 101, 2000, Blocks - 1];
        foreach (long block in corrupted)
        {
            var garbage = new byte[BlockBytes];
            pair.Random.Fill(garbage);
            pair.Beta.Disks[0].WriteAsync(block * BlockBytes, garbage, fua: true);
        }

        Assert.Equal(StateChangeResult.Success, pair.Alpha.Replica.StartVerify(1, 0, 0));
        Assert.Equal(ReplicationState.VerifyS, pair.Alpha.Replica.ReplicationOf(1, 0));
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.VerifyProgressOf(1, 0) is { DoneBits: > 0 } p && p.DoneBits < p.TotalBits, 10_000), pair.Logs);
        Assert.Equal(ReplicationState.VerifyT, pair.Beta.Replica.ReplicationOf(0, 0));
        var progress = pair.Beta.Replica.VerifyProgressOf(0, 0);
        Assert.NotNull(progress);
        Assert.InRange(progress.DonePercent, 0.0, 99.99);
        Assert.Equal(Blocks, progress.TotalBits);
        Assert.Equal(StateChangeResult.ResyncRunning, pair.Alpha.Replica.StartVerify(1, 0, 0));

        Assert.True(pair.Scheduler.RunUntil(() => VerifyDone(pair), 60_000), pair.Logs);
        Assert.Contains(pair.Alpha.Log, l => l.EndsWith("Online verify found 4 4k block out of sync!", StringComparison.Ordinal));
        Assert.Contains(pair.Beta.Log, l => l.EndsWith("Online verify found 4 4k block out of sync!", StringComparison.Ordinal));
        Assert.True(pair.Alpha.Log.Any(l => l.EndsWith($"Out of sync: start={100 * 8}, size=16 (sectors)", StringComparison.Ordinal)), string.Join("\n", pair.Alpha.Log.Where(l => l.Contains("sync", StringComparison.Ordinal))));
        Assert.Equal(corrupted, SetBits(pair.Alpha));
        Assert.Equal(corrupted, SetBits(pair.Beta));
        Assert.Null(pair.Alpha.Replica.VerifyProgressOf(1, 0));

        // As in DRBD verify repairs nothing; a reconnect (the Primary moves to a new generation) resyncs the marked blocks.
        Assert.False(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents));
        long dataRepliesBefore = pair.Alpha.Sent.GetValueOrDefault(MessageType.RsDataReply).PayloadBytes;
        Reconnect(pair);
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents), "the disks are identical after the resync");
        long dataBytes = pair.Alpha.Sent[MessageType.RsDataReply].PayloadBytes - dataRepliesBefore;
        Assert.Equal(4 * BlockBytes + 3 * RsDataReplyMessage.Size, dataBytes); // blocks 100-101 in one request

        Assert.Equal(StateChangeResult.Success, pair.Beta.Replica.StartVerify(0, 0, 0));
        Assert.True(pair.Scheduler.RunUntil(() => VerifyDone(pair), 60_000), pair.Logs);
        Assert.Equal(2, pair.Beta.Log.Count(l => l.Contains("Online verify done", StringComparison.Ordinal)));
        Assert.Single(pair.Beta.Log, l => l.Contains("Online verify found", StringComparison.Ordinal));
        Assert.Empty(SetBits(pair.Alpha));
        Assert.Empty(SetBits(pair.Beta));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Writes_during_a_verify_are_not_reported_as_out_of_sync(bool primaryVerifies)
    {
        for (int seed = 1; seed <= 6; seed++)
        {
            var pair = NewPair(700 + seed, protocol: seed % 3 == 0 ? "A" : "C");
            FillBoth(pair);
            pair.ConnectWithAlphaPrimary();
            var verifier = primaryVerifies ? pair.Alpha : pair.Beta;
            Assert.Equal(StateChangeResult.Success, verifier.Replica.StartVerify(1 - verifier.NodeId, 0, 0));
            int done = 0;
            var random = pair.Random.Fork();
            for (int i = 0; i < 600; i++)
            {
                // Writes go where the verify is at: its window is the first 1024 blocks, then it moves on.
                long block = random.NextInt64(0, Blocks);
                var data = new byte[BlockBytes * (1 + (i % 3))];
                random.Fill(data);
                pair.Scheduler.After(i / 2, () => pair.Alpha.Write(0, Math.Min(block, Blocks - 3) * BlockBytes, data, ok =>
                {
                    Assert.True(ok);
                    done++;
                }));
            }
            Assert.True(pair.Scheduler.RunUntil(() => done == 600 && VerifyDone(pair), 60_000), $"seed {seed}: {pair.Logs}");
            Assert.DoesNotContain(verifier.Log, l => l.Contains("Online verify found", StringComparison.Ordinal));
            Assert.Empty(SetBits(pair.Alpha));
            Assert.Empty(SetBits(pair.Beta));
            Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents), $"seed {seed}");
        }
    }

    [Fact]
    public void Verify_is_refused_without_a_verify_alg_a_connection_or_while_resyncing()
    {
        var plain = new SimReplicaPair(62, resyncRate: Fast);
        Assert.Equal(StateChangeResult.NoConnection, plain.Alpha.Replica.StartVerify(1, 0, 0));
        plain.ConnectWithAlphaPrimary();
        Assert.Equal(StateChangeResult.NoVerifyAlg, plain.Alpha.Replica.StartVerify(1, 0, 0));
        Assert.Equal("State change failed: (-14) Need a verify algorithm to start online verify", StateChangeResults.Describe(StateChangeResult.NoVerifyAlg));

        var pair = NewPair(63);
        pair.ConnectWithAlphaPrimary();
        Assert.Equal(StateChangeResult.NothingToDo, pair.Alpha.Replica.StartVerify(1, 0, SimReplicaPair.DiskBytes));
        Assert.Equal(StateChangeResult.Success, pair.Alpha.Replica.StartVerify(1, 0, 0));
        // The peer is VerifyT: it cannot start its own verify (or a resync) with us now.
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.ReplicationOf(0, 0) == ReplicationState.VerifyT, 1_000), pair.Logs);
        Assert.Equal(StateChangeResult.ResyncRunning, pair.Beta.Replica.StartVerify(0, 0, 0));
        Assert.Equal(StateChangeResult.ResyncRunning, pair.Alpha.Replica.StartFullSyncAsSource(1, 0));
        Assert.Equal(StateChangeResult.ResyncRunning, pair.Beta.Replica.Invalidate(0, 0));
    }

    [Fact]
    public void An_interrupted_verify_resumes_where_it_stopped_and_still_finds_every_corrupted_block()
    {
        var pair = NewPair(64);
        FillBoth(pair);
        pair.ConnectWithAlphaPrimary();
        long[] corrupted = [10, Blocks - 10];
        foreach (long block in corrupted)
        {
            pair.Beta.Disks[0].WriteAsync(block * BlockBytes, new byte[BlockBytes], fua: true);
        }
        Assert.Equal(StateChangeResult.Success, pair.Beta.Replica.StartVerify(0, 0, 0));
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.VerifyProgressOf(0, 0) is { } p && p.DoneBits > Blocks / 2, 10_000), pair.Logs);
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Links[0].State != ConnectionState.Connected, 30_000));
        string reached = pair.Beta.Log.Last(l => l.Contains("Online Verify reached sector", StringComparison.Ordinal));
        long reachedSector = long.Parse(reached[(reached.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(reachedSector, 1, (Blocks - 10) * 8);
        Assert.Equal([10L], SetBits(pair.Beta)); // found before the interruption

        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.BothConnected, 60_000), pair.Logs);
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs); // the reconnect resynced block 10
        Assert.Equal(StateChangeResult.Success, pair.Beta.Replica.StartVerify(0, 0));
        Assert.Contains(pair.Beta.Log, l => l.EndsWith($"Starting Online Verify from sector {reachedSector}", StringComparison.Ordinal));
        Assert.Equal(Blocks - (reachedSector / 8), pair.Beta.Replica.VerifyProgressOf(0, 0)!.TotalBits);
        Assert.True(pair.Scheduler.RunUntil(() => VerifyDone(pair), 60_000), pair.Logs);
        Assert.Equal([Blocks - 10], SetBits(pair.Beta));
        Assert.Equal([Blocks - 10], SetBits(pair.Alpha));
    }

    private static SimReplicaPair NewPair(int seed, string protocol = "C") =>
        new(seed, protocol, new NetworkOptions { MaxDelayMs = 3 }, resyncRate: Fast, netOptions: "verify-alg sha256;");

    private static bool VerifyDone(SimReplicaPair pair) => pair.BothConnected()
        && pair.Alpha.Replica.ReplicationOf(1, 0) == ReplicationState.Established && pair.Beta.Replica.ReplicationOf(0, 0) == ReplicationState.Established
        && pair.Alpha.Replica.VerifyProgressOf(1, 0) is null && pair.Beta.Replica.VerifyProgressOf(0, 0) is null;

    /// <summary>Both disks hold the same bytes, as after a finished initial sync.</summary>
    private static void FillBoth(SimReplicaPair pair)
    {
        var bytes = new byte[SimReplicaPair.DiskBytes];
        pair.Random.Fill(bytes);
        pair.Alpha.Disks[0].WriteAsync(0, bytes, fua: true);
        pair.Beta.Disks[0].WriteAsync(0, bytes, fua: true);
    }

    private static void Reconnect(SimReplicaPair pair)
    {
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected, 30_000));
        pair.Network.HealAll();
    }

    /// <summary>The out-of-sync blocks in the node's bitmap slot for its peer.</summary>
    private static List<long> SetBits(SimReplicaNode node)
    {
        var bitmap = node.Replica.Volume(0).Bitmaps.Bitmap(0);
        var bits = new List<long>();
        for (long bit = bitmap.FindNextSet(0); bit >= 0; bit = bit + 1 < bitmap.BitCount ? bitmap.FindNextSet(bit + 1) : -1)
        {
            bits.Add(bit);
        }
        return bits;
    }
}

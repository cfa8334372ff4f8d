using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// on-congestion under simulation (drbd.md §8 item 15): protocol A writes faster than a slow link
/// carries them make the Primary go Ahead and the Secondary Behind; once the link has drained the
/// pair resyncs by bitmap and ends Established with identical disks. With `disconnect` the link is
/// dropped instead and a later connect resyncs.
/// </summary>
public class ReplicaCongestionTests
{
    /// <summary>About 10 Mbit/s.</summary>
    private const long SlowLinkBytesPerSecond = 1_250_000;
    private const int WriteBytes = 64 << 10;
    /// <summary>Writes go to the first half of the disk: the resync after Ahead copies no more than that.</summary>
    private const long RegionBytes = SimReplicaPair.DiskBytes / 2;
    private const string PullAhead = "on-congestion pull-ahead; congestion-fill 256k;";

    [Fact]
    public void Writes_faster_than_the_link_go_Ahead_and_Behind_then_resync_and_end_identical()
    {
        for (int seed = 1; seed <= 5; seed++)
        {
            var pair = SlowPair(300 + seed, PullAhead);
            pair.ConnectWithAlphaPrimary();
            var model = new byte[SimReplicaPair.DiskBytes];
            var seen = new SeenStates(pair);
            var done = WriteBurst(pair, model, seed, durationMs: 1_000);

            Assert.True(pair.Scheduler.RunUntil(() => seen.Update() && done.Count == Writes(1_000) && pair.InSync(), 120_000), $"seed {seed}: {pair.Logs}");
            Assert.True(seen.AlphaAhead, $"seed {seed}: alpha never went Ahead: {pair.Logs}");
            Assert.True(seen.BetaBehindOutdated, $"seed {seed}: beta was never Behind with an Outdated disk: {pair.Logs}");
            Assert.True(seen.BetaMarkedOutOfSync, $"seed {seed}: beta's bitmap got nothing from P_OUT_OF_SYNC while Behind");
            Assert.True(seen.SyncSourceAfterAhead && seen.SyncTargetAfterBehind, $"seed {seed}: no resync after Ahead/Behind: {pair.Logs}");
            Assert.True(pair.Alpha.Sent[MessageType.OutOfSync].Frames > 0, "writes were marked out of sync instead of sent");
            Assert.Contains(pair.Alpha.Log, l => l.Contains("Congestion-fill threshold reached", StringComparison.Ordinal));
            // A bitmap resync: what was written while Ahead, not the whole disk.
            long resyncBytes = pair.Alpha.Sent[MessageType.RsDataReply].PayloadBytes;
            Assert.InRange(resyncBytes, 1, RegionBytes + RegionBytes / 100);
            AssertIdentical(pair, model, seed);
            Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
            Assert.Equal(DiskState.UpToDate, pair.Alpha.Replica.Links[1].PeerDisks[0]);
            Assert.Equal(pair.Alpha.Replica.Volume(0).Ids.Current & ~1UL, pair.Beta.Replica.Volume(0).Ids.Current & ~1UL);
            Assert.Equal(0UL, pair.Alpha.Replica.Volume(0).Ids.Bitmap[0]);
        }
    }

    [Fact]
    public void A_connection_lost_while_Behind_is_resynced_by_bitmap_from_the_node_that_was_Ahead()
    {
        var pair = SlowPair(321, PullAhead);
        pair.ConnectWithAlphaPrimary();
        var model = new byte[SimReplicaPair.DiskBytes];
        var done = WriteBurst(pair, model, 21, durationMs: 1_000);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.ReplicationOf(0, 0) == ReplicationState.Behind, 10_000), pair.Logs);
        Assert.Equal(DiskState.Outdated, pair.Beta.Replica.Volume(0).Disk);
        // The new data generation: beta's current UUID is alpha's bitmap UUID for it.
        Assert.Equal(pair.Beta.Replica.Volume(0).Ids.Current & ~1UL, pair.Alpha.Replica.Volume(0).Ids.Bitmap[0] & ~1UL);

        pair.Beta.Replica.Disconnect(0);
        Assert.True(pair.Scheduler.RunUntil(() => done.Count == Writes(1_000), 30_000), pair.Logs);
        Assert.Equal(ReplicationState.Off, pair.Alpha.Replica.ReplicationOf(1, 0));
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 120_000), pair.Logs);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal));
        Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("full resync", StringComparison.Ordinal));
        AssertIdentical(pair, model, 21);
        Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
    }

    [Fact]
    public void On_congestion_disconnect_drops_the_link_and_a_later_connect_resyncs()
    {
        var pair = SlowPair(331, "on-congestion disconnect; congestion-fill 256k; connect-int 1;");
        pair.ConnectWithAlphaPrimary();
        var model = new byte[SimReplicaPair.DiskBytes];
        var done = WriteBurst(pair, model, 31, durationMs: 1_000);
        Assert.True(pair.Scheduler.RunUntil(() => done.Count == Writes(1_000), 30_000), pair.Logs);

        Assert.Equal(ConnectionState.StandAlone, pair.Alpha.Replica.Links[1].State);
        Assert.Contains("on-congestion disconnect: Congestion-fill threshold reached", pair.Alpha.Replica.Links[1].LastError, StringComparison.Ordinal);
        Assert.True(pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1) > 0, "the bitmap records what beta misses");
        Assert.False(pair.Alpha.Sent.ContainsKey(MessageType.OutOfSync), "disconnect never goes Ahead");
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 3_000);
        Assert.NotEqual(ConnectionState.Connected, pair.Beta.Replica.Links[0].State);

        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 120_000), pair.Logs);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal));
        AssertIdentical(pair, model, 31);
    }

    [Fact]
    public void A_link_that_keeps_up_never_goes_Ahead()
    {
        // The same burst over an unlimited link stays well under congestion-fill.
        var pair = new SimReplicaPair(341, protocol: "A", options: new NetworkOptions { MinDelayMs = 1, MaxDelayMs = 3 }, netOptions: "on-congestion pull-ahead; congestion-fill 8M;");
        pair.ConnectWithAlphaPrimary();
        var model = new byte[SimReplicaPair.DiskBytes];
        var seen = new SeenStates(pair);
        var done = WriteBurst(pair, model, 41, durationMs: 1_000);
        Assert.True(pair.Scheduler.RunUntil(() => seen.Update() && done.Count == Writes(1_000) && pair.InSync(), 60_000), pair.Logs);
        Assert.False(seen.AlphaAhead, pair.Logs);
        Assert.False(pair.Alpha.Sent.ContainsKey(MessageType.OutOfSync));
        AssertIdentical(pair, model, 41);
    }

    [Fact]
    public void Too_many_active_activity_log_extents_also_pull_ahead()
    {
        // The simulated AL has 2 slots; the configuration's minimum of 67 is bypassed to reach the limit.
        var pair = new SimReplicaPair(351, protocol: "A", options: new NetworkOptions { MinDelayMs = 1, MaxDelayMs = 3 },
            netOptions: "on-congestion pull-ahead;", tuneSettings: s => s with { CongestionExtents = 2 });
        pair.ConnectWithAlphaPrimary();
        pair.Alpha.DiskLatencyMaxMs = 30; // writes stay in flight long enough to hold both extents at once
        var model = new byte[SimReplicaPair.DiskBytes];
        var seen = new SeenStates(pair);
        var done = WriteBurst(pair, model, 51, durationMs: 1_000);
        Assert.True(pair.Scheduler.RunUntil(() => seen.Update() && done.Count == Writes(1_000) && pair.InSync(), 60_000), pair.Logs);
        Assert.True(seen.AlphaAhead && seen.SyncTargetAfterBehind, pair.Logs);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("Congestion-extents threshold reached (2 >= 2)", StringComparison.Ordinal));
        AssertIdentical(pair, model, 51);
    }

    [Theory]
    [InlineData("B", "pull-ahead")]
    [InlineData("C", "disconnect")]
    public void An_on_congestion_policy_other_than_block_needs_protocol_A(string protocol, string policy)
    {
        var resource = ConfigParser.ParseText($$"""
            resource r0 {
              net { protocol {{protocol}}; on-congestion {{policy}}; }
              on alpha { node-id 0; address 127.0.0.1:7788; volume 0 { disk /dev/null; meta-disk internal; } }
              on beta  { node-id 1; address 127.0.0.1:7789; volume 0 { disk /dev/null; meta-disk internal; } }
            }
            """, "sim.conf").Resources.Single();
        Assert.False(PeerLinkSettings.TryCreate(resource, resource.FindNode("alpha")!, resource.FindNode("beta")!, out _, out string error));
        Assert.Equal($"r0: on-congestion policy {policy} only with prot A allowed", error);
    }

    private static SimReplicaPair SlowPair(int seed, string netOptions) =>
        new(seed, protocol: "A", options: new NetworkOptions { MinDelayMs = 1, MaxDelayMs = 3, BandwidthBytesPerSecond = SlowLinkBytesPerSecond },
            netOptions: netOptions);

    private const int WriteIntervalMs = 5;

    private static int Writes(long durationMs) => (int)(durationMs / WriteIntervalMs);

    /// <summary>
    /// 64 KiB writes at random 4 KiB-aligned offsets of the first half of alpha's disk, one every
    /// 5 ms (about 13 MB/s) for <paramref name="durationMs"/>; <paramref name="model"/> gets what the
    /// disk must hold (overlapping writes land in issue order). Returns the completions so far.
    /// </summary>
    private static Completions WriteBurst(SimReplicaPair pair, byte[] model, int seed, long durationMs)
    {
        var random = new Random(seed);
        var completions = new Completions();
        for (int i = 0; i < Writes(durationMs); i++)
        {
            long offset = random.NextInt64(0, (RegionBytes - WriteBytes) / 4096) * 4096;
            var data = new byte[WriteBytes];
            random.NextBytes(data);
            data.CopyTo(model.AsSpan((int)offset));
            pair.Scheduler.After(i * WriteIntervalMs, () => pair.Alpha.Write(0, offset, data, ok =>
            {
                Assert.True(ok, "a client write failed");
                completions.Count++;
            }));
        }
        return completions;
    }

    private sealed class Completions
    {
        public int Count { get; set; }
    }

    /// <summary>Protocol A completes a write once it is sent: the last ones may still be on the way when the pair is in sync.</summary>
    private static void AssertIdentical(SimReplicaPair pair, byte[] model, int seed)
    {
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);
        Assert.True(model.AsSpan().SequenceEqual(pair.Alpha.Disks[0].Contents), $"seed {seed}: alpha's disk is not what was written");
        Assert.True(model.AsSpan().SequenceEqual(pair.Beta.Disks[0].Contents), $"seed {seed}: beta's disk differs from alpha's");
    }

    /// <summary>States seen along the way (sampled as the simulation runs).</summary>
    private sealed class SeenStates(SimReplicaPair pair)
    {
        public bool AlphaAhead { get; private set; }
        public bool BetaBehindOutdated { get; private set; }
        public bool SyncSourceAfterAhead { get; private set; }
        public bool SyncTargetAfterBehind { get; private set; }
        public bool BetaMarkedOutOfSync { get; private set; }

        /// <summary>Records the current states; always true, so it can sit in a RunUntil condition.</summary>
        public bool Update()
        {
            var alpha = pair.Alpha.Replica.ReplicationOf(1, 0);
            var beta = pair.Beta.Replica.ReplicationOf(0, 0);
            AlphaAhead |= alpha == ReplicationState.Ahead;
            BetaBehindOutdated |= beta == ReplicationState.Behind && pair.Beta.Replica.Volume(0).Disk == DiskState.Outdated;
            BetaMarkedOutOfSync |= beta == ReplicationState.Behind && pair.Beta.Replica.Volume(0).OutOfSyncBytes(0) > 0;
            SyncSourceAfterAhead |= AlphaAhead && alpha == ReplicationState.SyncSource;
            SyncTargetAfterBehind |= BetaBehindOutdated && beta == ReplicationState.SyncTarget;
            return true;
        }
    }
}

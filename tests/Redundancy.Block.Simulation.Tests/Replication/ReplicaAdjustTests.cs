using System.Collections.Immutable;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>`adjust` on a running pair: new settings without restarting replication, writes going on throughout.</summary>
public class ReplicaAdjustTests
{
    private const int BlockBytes = 4096;

    [Fact]
    public void Timers_change_live_without_dropping_the_connection()
    {
        var pair = new SimReplicaPair(501);
        pair.ConnectWithAlphaPrimary();
        var wanted = Settings("alpha", "ping-int 3; ko-count 2; timeout 90;");
        Assert.Equal(SettingsChange.Live, SettingsChanges.Compare(pair.Alpha.Replica.Links[1].Settings, wanted));
        int transitions = pair.Alpha.Log.Count(l => l.Contains("conn(", StringComparison.Ordinal));

        pair.Alpha.Replica.Reconfigure([wanted], new Dictionary<int, ResyncRateSettings>(), pair.Scheduler.NowMs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 10_000);

        Assert.True(pair.BothConnected(), pair.Logs);
        Assert.Equal(transitions, pair.Alpha.Log.Count(l => l.Contains("conn(", StringComparison.Ordinal)));
        Assert.Equal(3000, pair.Alpha.Replica.Links[1].Settings.PingIntervalMs);
        Assert.Equal(2, pair.Alpha.Replica.Links[1].Settings.KoCount);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("adjust: new net options in effect", StringComparison.Ordinal));
    }

    [Fact]
    public void A_changed_policy_reconnects_and_waits_for_the_peers_adjust_while_writes_go_on()
    {
        var pair = new SimReplicaPair(502, options: new NetworkOptions { MaxDelayMs = 3 });
        pair.ConnectWithAlphaPrimary();
        var alphaWanted = Settings("alpha", "after-sb-0pri discard-zero-changes; data-integrity-alg crc32c;");
        Assert.Equal(SettingsChange.Reconnect, SettingsChanges.Compare(pair.Alpha.Replica.Links[1].Settings, alphaWanted));
        int done = 0;
        WriteBlocks(pair, 60, spacingMs: 200, () => done++);

        // Alpha adjusts first: it reconnects, beta (old settings) refuses and stands alone; alpha keeps trying.
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 1_000);
        pair.Alpha.Replica.Reconfigure([alphaWanted], new Dictionary<int, ResyncRateSettings>(), pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Links[0].State == ConnectionState.StandAlone, 30_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 25_000);
        Assert.NotEqual(ConnectionState.StandAlone, pair.Alpha.Replica.Links[1].State);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("retrying: the peer may not have run adjust yet", StringComparison.Ordinal));

        // Then beta adjusts (its StandAlone link is connected again, as rbadm adjust does).
        pair.Beta.Replica.Reconfigure([Settings("beta", "after-sb-0pri discard-zero-changes; data-integrity-alg crc32c;")], new Dictionary<int, ResyncRateSettings>(), pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(() => done == 60 && pair.InSync(), 60_000), pair.Logs);

        Assert.Equal(Role.Primary, pair.Alpha.Replica.Role);
        Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
        Assert.Equal(Engine.Peers.Protocol.DigestAlgorithm.Crc32C, pair.Beta.Replica.Links[0].Settings.Protocol.DataIntegrityAlg);
        AssertIdentical(pair);
    }

    [Fact]
    public void A_new_resync_rate_speeds_up_the_running_resync()
    {
        var slow = new ResyncRateSettings { ResyncRateKibPerSec = 100, CPlanAheadMs = 0 };
        var pair = new SimReplicaPair(503, resyncRate: slow, initial: node => node == "alpha"
            ? (new GenerationIds(0x7300_0000_0000_0001, ImmutableArray.Create(GenerationIds.JustCreated), ImmutableArray<ulong>.Empty), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate)
            : (new GenerationIds(GenerationIds.JustCreated, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), MetadataFlags.None, DiskState.Inconsistent));
        var bytes = new byte[SimReplicaPair.DiskBytes];
        pair.Random.Fill(bytes);
        pair.Alpha.Disks[0].WriteAsync(0, bytes, fua: true);
        pair.ConnectWithAlphaPrimary();
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 5_000);
        // 16 MiB at 100 KiB/s would take nearly three minutes.
        Assert.Equal(ReplicationState.SyncTarget, pair.Beta.Replica.ReplicationOf(0, 0));
        Assert.True(pair.Beta.Replica.Volume(0).OutOfSyncBytes(0) > 8 << 20);

        var fast = new ResyncRateSettings { ResyncRateKibPerSec = 100 * 1024, CPlanAheadMs = 0 };
        pair.Beta.Replica.Reconfigure([pair.Beta.Replica.Links[0].Settings], new Dictionary<int, ResyncRateSettings> { [0] = fast }, pair.Scheduler.NowMs);

        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 10_000), pair.Logs);
        Assert.Equal(fast, pair.Beta.Replica.Volume(0).ResyncRate);
        Assert.Contains(pair.Beta.Log, l => l.Contains("the running resync continues at the new rate settings", StringComparison.Ordinal));
        AssertIdentical(pair);
    }

    [Fact]
    public void What_each_setting_change_takes()
    {
        var running = Settings("alpha", "");
        Assert.Equal(SettingsChange.None, SettingsChanges.Compare(running, Settings("alpha", "")));
        Assert.Equal(SettingsChange.ProtocolUpdate, SettingsChanges.Compare(running, Settings("alpha", "", protocol: "A")));
        Assert.Equal(SettingsChange.ProtocolUpdate, SettingsChanges.Compare(running, Settings("alpha", "after-sb-1pri consensus; always-asbp yes;")));
        Assert.Equal(SettingsChange.Reconnect, SettingsChanges.Compare(running, Settings("alpha", "csums-alg crc32c;", protocol: "A")));
        Assert.Equal(SettingsChange.Restart, SettingsChanges.Compare(running, running with { MaxFramePayloadBytes = running.MaxFramePayloadBytes * 2 }));
        Assert.Equal(SettingsChange.Reconnect, SettingsChanges.Compare(running, Settings("alpha", "shared-secret \"other\";")));
        Assert.Equal(SettingsChange.Reconnect, SettingsChanges.Compare(running, Settings("alpha", "sndbuf-size 1M;")));
        Assert.Equal(SettingsChange.Live, SettingsChanges.Compare(running, Settings("alpha", "connect-int 3; ping-timeout 10; fencing resource-only;")));
    }

    [Fact]
    public void A_protocol_change_goes_to_the_peer_without_reconnecting_while_writes_go_on()
    {
        var pair = new SimReplicaPair(504, options: new NetworkOptions { MaxDelayMs = 3 });
        pair.ConnectWithAlphaPrimary();
        int done = 0;
        WriteBlocks(pair, 60, spacingMs: 200, () => done++);

        // C -> A (with a new after-sb-0pri), one node after the other, as an operator's `adjust` on
        // each node does: the first sends it to the peer, which adopts it; the second finds nothing to change.
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 1_000);
        int alphaTransitions = pair.Alpha.Log.Count(l => l.Contains("conn(", StringComparison.Ordinal));
        int betaTransitions = pair.Beta.Log.Count(l => l.Contains("conn(", StringComparison.Ordinal));
        var alphaWanted = Settings("alpha", "after-sb-0pri discard-node-alpha;", protocol: "A");
        var betaWanted = Settings("beta", "after-sb-0pri discard-node-alpha;", protocol: "A");
        Assert.Equal(SettingsChange.ProtocolUpdate, SettingsChanges.Compare(pair.Alpha.Replica.Links[1].Settings, alphaWanted));
        pair.Alpha.Replica.Reconfigure([alphaWanted], new Dictionary<int, ResyncRateSettings>(), pair.Scheduler.NowMs);
        Assert.Equal(ReplicationProtocol.A, pair.Alpha.Replica.Protocol);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Protocol == ReplicationProtocol.A, 5_000), pair.Logs);
        var adopted = pair.Beta.Replica.Links[0].Settings;
        Assert.Equal(ReplicationProtocol.A, adopted.Protocol.Protocol);
        Assert.Equal(AfterSb0Pri.DiscardRemote, adopted.Protocol.AfterSb0Pri); // alpha's discard-local, as beta sees it
        Assert.Equal(Engine.SplitBrain.AfterSbStrategy.DiscardRemote, adopted.Policies.AfterSb0Pri.Strategy);
        Assert.Contains(pair.Beta.Log, l => l.Contains("the peer's adjust changed the protocol settings: protocol A, after-sb-0pri discard-remote", StringComparison.Ordinal));
        Assert.Contains(pair.Beta.Log, l => l.Contains("the peer's adjust: replication protocol C -> A", StringComparison.Ordinal));
        Assert.Contains(pair.Alpha.Log, l => l.Contains("adjust: replication protocol C -> A (requests in flight keep theirs)", StringComparison.Ordinal));
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 3_000);
        Assert.Equal(SettingsChange.ProtocolUpdate, SettingsChanges.Compare(pair.Beta.Replica.Links[0].Settings, betaWanted)); // discard-node-alpha vs discard-remote: same on the wire
        pair.Beta.Replica.Reconfigure([betaWanted], new Dictionary<int, ResyncRateSettings>(), pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(() => done == 60 && pair.InSync(), 60_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 1_000); // under A the last writes completed when sent: they land on beta's disk now
        AssertIdentical(pair);
        Assert.Equal(alphaTransitions, pair.Alpha.Log.Count(l => l.Contains("conn(", StringComparison.Ordinal)));
        Assert.Equal(betaTransitions, pair.Beta.Log.Count(l => l.Contains("conn(", StringComparison.Ordinal)));
        Assert.Equal(ConnectionState.Connected, pair.Alpha.Replica.Links[1].State);

        // Protocol A now: with the peer's answers cut off, a write completes on the local disk alone
        // (under C it would wait for the WriteAck until the connection timed out).
        pair.Network.Partition("beta", "alpha", oneWay: true);
        bool written = false;
        long startMs = pair.Scheduler.NowMs;
        pair.Alpha.Write(0, 0, new byte[BlockBytes], ok => written = ok);
        Assert.True(pair.Scheduler.RunUntil(() => written, 1_000), pair.Logs);
        Assert.True(pair.Scheduler.NowMs - startMs < 100, $"completed after {pair.Scheduler.NowMs - startMs} ms");
    }

    [Fact]
    public void A_write_in_flight_keeps_the_protocol_it_was_sent_under()
    {
        var pair = new SimReplicaPair(505, options: new NetworkOptions { MaxDelayMs = 3 });
        pair.ConnectWithAlphaPrimary();
        // The peer's answers are held back: a protocol C write waits for its WriteAck.
        pair.Network.Partition("beta", "alpha", oneWay: true);
        bool? underC = null, underA = null;
        pair.Alpha.Write(0, 0, Pattern(pair, 1), ok => underC = ok);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 100);
        Assert.Null(underC);

        pair.Alpha.Replica.Reconfigure([Settings("alpha", "", protocol: "A")], new Dictionary<int, ResyncRateSettings>(), pair.Scheduler.NowMs);
        pair.Alpha.Write(0, BlockBytes, Pattern(pair, 2), ok => underA = ok);
        Assert.True(pair.Scheduler.RunUntil(() => underA is not null, 1_000), pair.Logs);
        Assert.True(underA);
        Assert.Null(underC); // sent under C: still waiting for the peer

        // Once the peer can answer again the C write completes, and the peer has both.
        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(() => underC is not null && pair.InSync(), 60_000), pair.Logs);
        Assert.True(underC);
        AssertIdentical(pair);
    }

    private static byte[] Pattern(SimReplicaPair pair, int seed)
    {
        var data = new byte[BlockBytes];
        pair.Random.Fork().Fill(data);
        data[0] = (byte)seed;
        return data;
    }

    /// <summary>The settings SimReplicaPair's configuration gives <paramref name="local"/> with <paramref name="net"/> added.</summary>
    private static PeerLinkSettings Settings(string local, string net, string protocol = "C")
    {
        var resource = ConfigParser.ParseText($$"""
            resource r0 {
              net { protocol {{protocol}}; cram-hmac-alg sha256; shared-secret "sim"; {{net}} }
              on alpha { node-id 0; address 127.0.0.1:7788; volume 0 { disk /dev/null; meta-disk internal; } }
              on beta  { node-id 1; address 127.0.0.1:7789; volume 0 { disk /dev/null; meta-disk internal; } }
            }
            """, "sim.conf").Resources.Single();
        string peer = local == "alpha" ? "beta" : "alpha";
        Assert.True(PeerLinkSettings.TryCreate(resource, resource.FindNode(local)!, resource.FindNode(peer)!, out var settings, out string error), error);
        return settings;
    }

    private static void WriteBlocks(SimReplicaPair pair, int count, long spacingMs, Action onDone)
    {
        var random = pair.Random.Fork();
        for (int i = 0; i < count; i++)
        {
            long offset = random.NextInt64(0, SimReplicaPair.DiskBytes / BlockBytes) * BlockBytes;
            var data = new byte[BlockBytes];
            random.Fill(data);
            pair.Scheduler.After(i * spacingMs, () => pair.Alpha.Write(0, offset, data, ok =>
            {
                Assert.True(ok);
                onDone();
            }));
        }
    }

    private static void AssertIdentical(SimReplicaPair pair)
    {
        var alpha = pair.Alpha.Disks[0].Contents;
        var beta = pair.Beta.Disks[0].Contents;
        for (int block = 0; block < SimReplicaPair.DiskBytes / BlockBytes; block++)
        {
            Assert.True(alpha.Slice(block * BlockBytes, BlockBytes).SequenceEqual(beta.Slice(block * BlockBytes, BlockBytes)), $"block {block} differs");
        }
    }
}

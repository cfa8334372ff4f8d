using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Two peer links over the simulated network: connect, authenticate, agree on settings, decide
/// the sync direction — and refuse what DRBD refuses, with the reason in the log.
/// </summary>
public class PeerLinkHandshakeTests
{
    private const string SecureNet = "protocol C; cram-hmac-alg sha256; shared-secret \"change-me\"; after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary; after-sb-2pri disconnect;";

    [Fact]
    public void Fresh_pair_connects_after_authentication_and_needs_no_sync()
    {
        var pair = Pair(1, SecureNet, SecureNet, FakeHost.Fresh(), FakeHost.Fresh());
        pair.ConnectBoth();
        Assert.True(pair.RunUntil(() => BothConnected(pair), 5_000), Logs(pair));
        Assert.Contains(pair.Alpha.Log, l => l.Contains("peer authenticated using sha256", StringComparison.Ordinal));
        Assert.Contains(pair.Beta.Log, l => l.Contains("peer authenticated using sha256", StringComparison.Ordinal));
        Assert.Equal(HandshakeAction.NoSync, pair.Alpha.Decisions.Single().Single().Outcome.Action);
        Assert.Equal(HandshakeAction.NoSync, pair.Beta.Decisions.Single().Single().Outcome.Action);
        Assert.Equal(DiskState.Inconsistent, pair.Alpha.Link.PeerDisks[0]);
    }

    [Fact]
    public void A_forced_primary_becomes_full_sync_source_of_a_fresh_peer()
    {
        var alpha = FakeHost.UpToDate(0xAB00_0000_0000_0001, bitmap: 4);
        alpha.Role = Role.Primary;
        var pair = Pair(2, SecureNet, SecureNet, alpha, FakeHost.Fresh());
        pair.ConnectBoth();
        Assert.True(pair.RunUntil(() => BothConnected(pair), 5_000), Logs(pair));
        var source = pair.Alpha.Decisions.Single().Single().Outcome;
        var target = pair.Beta.Decisions.Single().Single().Outcome;
        Assert.Equal((HandshakeAction.SyncSource, true), (source.Action, source.FullSync));
        Assert.Equal((HandshakeAction.SyncTarget, true), (target.Action, target.FullSync));
        Assert.Equal(Role.Primary, pair.Beta.Link.PeerRole);
    }

    [Fact]
    public void A_wrong_shared_secret_never_connects_and_both_logs_say_so()
    {
        string wrong = SecureNet.Replace("change-me", "not-the-secret", StringComparison.Ordinal);
        var pair = Pair(3, SecureNet, wrong, FakeHost.Fresh(), FakeHost.Fresh());
        pair.ConnectBoth();
        Assert.True(pair.RunUntil(() => BothStandAlone(pair), 5_000), Logs(pair));
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 30_000);
        Assert.Equal(ConnectionState.StandAlone, pair.Alpha.Link.State);
        Assert.Equal(ConnectionState.StandAlone, pair.Beta.Link.State);
        Assert.Contains("authentication of peer failed", pair.Alpha.Link.LastError + pair.Beta.Link.LastError, StringComparison.Ordinal);
        Assert.Empty(pair.Alpha.Decisions);
        Assert.Empty(pair.Beta.Decisions);
    }

    [Fact]
    public void A_peer_without_a_secret_is_refused()
    {
        var pair = Pair(4, SecureNet, "protocol C; after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary;", FakeHost.Fresh(), FakeHost.Fresh());
        pair.ConnectBoth();
        Assert.True(pair.RunUntil(() => BothStandAlone(pair), 5_000), Logs(pair));
        Assert.Empty(pair.Alpha.Decisions);
    }

    [Theory]
    [InlineData("protocol A;", "protocol")]
    [InlineData("after-sb-0pri disconnect;", "after-sb-0pri")]
    [InlineData("allow-two-primaries;", "allow-two-primaries")]
    public void Settings_that_must_agree_leave_both_StandAlone_with_the_reason(string change, string setting)
    {
        string keyword = change.Split(' ', ';')[0];
        string beta = string.Join(' ', SecureNet.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(s => !s.StartsWith(keyword, StringComparison.Ordinal)).Select(s => s + ";")) + " " + change;
        var pair = Pair(5, SecureNet, beta, FakeHost.Fresh(), FakeHost.Fresh());
        pair.ConnectBoth();
        Assert.True(pair.RunUntil(() => BothStandAlone(pair), 5_000), Logs(pair));
        Assert.Contains($"incompatible {setting}", pair.Alpha.Link.LastError + pair.Beta.Link.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void Independently_forced_primaries_are_unrelated_data_and_stand_alone()
    {
        var pair = Pair(6, SecureNet, SecureNet, FakeHost.UpToDate(0x1111_0000_0000_0001, bitmap: 4), FakeHost.UpToDate(0x2222_0000_0000_0001, bitmap: 4));
        pair.ConnectBoth();
        Assert.True(pair.RunUntil(() => BothStandAlone(pair), 5_000), Logs(pair));
        Assert.Contains("Unrelated data", pair.Alpha.Link.LastError, StringComparison.Ordinal);
        Assert.Contains("Unrelated data", pair.Beta.Link.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_writers_after_a_split_with_discard_zero_changes_is_split_brain()
    {
        const ulong shared = 0x5000_0000_0000_0000;
        var alpha = FakeHost.UpToDate(0xA000_0000_0000_0001, bitmap: shared);
        var beta = FakeHost.UpToDate(0xB000_0000_0000_0001, bitmap: shared);
        alpha.Volumes[0] = alpha.Volumes[0] with { OutOfSyncBits = 10 };
        beta.Volumes[0] = beta.Volumes[0] with { OutOfSyncBits = 3 };
        var pair = Pair(7, SecureNet, SecureNet, alpha, beta);
        pair.ConnectBoth();
        Assert.True(pair.RunUntil(() => BothStandAlone(pair), 5_000), Logs(pair));
        Assert.Contains("Split-Brain", pair.Alpha.Link.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void A_partition_drops_the_connection_by_ping_timeout_and_healing_reconnects()
    {
        var pair = Pair(8, SecureNet, SecureNet, FakeHost.Fresh(), FakeHost.Fresh());
        pair.ConnectBoth();
        Assert.True(pair.RunUntil(() => BothConnected(pair), 5_000), Logs(pair));
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.RunUntil(() => pair.Alpha.Link.State == ConnectionState.Connecting && pair.Beta.Link.State == ConnectionState.Connecting, 30_000), Logs(pair));
        Assert.Contains(pair.Alpha.Log.Concat(pair.Beta.Log), l => l.Contains("PingAck did not arrive in time", StringComparison.Ordinal));
        pair.Network.HealAll();
        Assert.True(pair.RunUntil(() => BothConnected(pair), 30_000), Logs(pair));
        Assert.Equal(2, pair.Alpha.Decisions.Count);
    }

    [Fact]
    public void A_peer_claiming_another_node_id_is_refused()
    {
        var pair = Pair(9, SecureNet, SecureNet, FakeHost.Fresh(), FakeHost.Fresh(), betaClaimsNodeId: 5);
        pair.ConnectBoth();
        Assert.True(pair.RunUntil(() => pair.Alpha.Link.State == ConnectionState.StandAlone, 5_000), Logs(pair));
        Assert.Contains("claims node-id 5", pair.Alpha.Link.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public void Lossy_slow_network_still_connects_and_every_seed_replays_exactly()
    {
        var options = new NetworkOptions { MaxDelayMs = 30, LossProbability = 0.2, RetransmitDelayMs = 150 };
        for (int seed = 100; seed < 130; seed++)
        {
            var first = Pair(seed, SecureNet, SecureNet, FakeHost.Fresh(), FakeHost.Fresh(), options: options);
            first.ConnectBoth();
            Assert.True(first.RunUntil(() => BothConnected(first), 60_000), $"seed {seed}: {Logs(first)}");
            var again = Pair(seed, SecureNet, SecureNet, FakeHost.Fresh(), FakeHost.Fresh(), options: options);
            again.ConnectBoth();
            again.RunUntil(() => BothConnected(again), 60_000);
            Assert.Equal(first.Scheduler.NowMs, again.Scheduler.NowMs);
            Assert.Equal(first.Alpha.Log, again.Alpha.Log);
        }
    }

    private static bool BothConnected(LinkedPair pair) =>
        pair.Alpha.Link.State == ConnectionState.Connected && pair.Beta.Link.State == ConnectionState.Connected;

    private static bool BothStandAlone(LinkedPair pair) =>
        pair.Alpha.Link.State == ConnectionState.StandAlone && pair.Beta.Link.State == ConnectionState.StandAlone;

    private static string Logs(LinkedPair pair) =>
        "alpha:\n  " + string.Join("\n  ", pair.Alpha.Log) + "\nbeta:\n  " + string.Join("\n  ", pair.Beta.Log);

    private static LinkedPair Pair(int seed, string alphaNet, string betaNet, FakeHost alphaHost, FakeHost betaHost,
        NetworkOptions? options = null, int betaClaimsNodeId = 1)
    {
        var alpha = Resolve(alphaNet, "alpha", "beta");
        var beta = Resolve(betaNet, "beta", "alpha") with { LocalNodeId = betaClaimsNodeId };
        return new LinkedPair(seed, alpha, alphaHost, beta, betaHost, options);
    }

    private static PeerLinkSettings Resolve(string net, string local, string peer)
    {
        string text = $$"""
            resource r0 {
              net { {{net}} }
              on alpha { node-id 0; address 127.0.0.1:7788; volume 0 { disk /dev/null; meta-disk internal; } }
              on beta  { node-id 1; address 127.0.0.1:7789; volume 0 { disk /dev/null; meta-disk internal; } }
            }
            """;
        var resource = ConfigParser.ParseText(text, "sim.conf").Resources.Single();
        Assert.True(PeerLinkSettings.TryCreate(resource, resource.FindNode(local)!, resource.FindNode(peer)!, out var settings, out string error), error);
        return settings;
    }
}

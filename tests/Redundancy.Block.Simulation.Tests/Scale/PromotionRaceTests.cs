using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// `primary` as a cluster-wide state change, through the simulated operator (the agent's path):
/// two nodes promoting at the same simulated instant end with exactly one Primary, the other
/// refused with DRBD's message; a promotion whose answer never comes ends with the connection
/// (ping-timeout) or twopc-timeout, never hanging. The two-Primaries checker runs after every event.
/// </summary>
public class PromotionRaceTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Both_promote_at_once_and_exactly_one_becomes_Primary(int seed)
    {
        var (cluster, op) = SecondaryPair(seed);
        StateChangeResult? alpha = null, beta = null;
        op.Primary(cluster.Alpha, force: false, r => alpha = r);
        op.Primary(cluster.Beta, force: false, r => beta = r);
        Assert.True(cluster.RunUntil(() => alpha is not null && beta is not null, 5_000), "both promotions got an answer");
        // beta (node-id 1) holds resolve-conflicts: its request wins, alpha's is aborted.
        Assert.Equal(StateChangeResult.Success, beta);
        Assert.Equal(StateChangeResult.ConcurrentStateChange, alpha);
        Assert.Equal("State change failed: (-19) Concurrent state changes detected and aborted", StateChangeResults.Describe(alpha!.Value));
        Assert.Equal((Role.Secondary, Role.Primary), (cluster.Alpha.Replica.Role, cluster.Beta.Replica.Role));
        Assert.Equal(ConnectionState.Connected, cluster.Alpha.Replica.Links[1].State);
        cluster.RunUntil(cluster.Scheduler.NowMs + 200);
        Assert.Equal(Role.Primary, cluster.Alpha.Replica.Links[1].PeerRole);
        Assert.False(cluster.Alpha.Replica.PeerPromotionGranted(1), "beta's State (Primary) ended the grant");
        Assert.False(cluster.Alpha.Replica.PromotionInFlight || cluster.Beta.Replica.PromotionInFlight);
        // The refused node is refused again for the plain reason now: its peer is Primary.
        StateChangeResult? again = null;
        op.Primary(cluster.Alpha, force: false, r => again = r);
        Assert.Equal(StateChangeResult.TwoPrimaries, again);
        WriteOn(cluster, cluster.Beta, block: 5);
    }

    [Fact]
    public void A_promotion_asked_while_the_peer_is_asking_is_refused_until_the_peer_is_Primary()
    {
        var (cluster, op) = SecondaryPair(seed: 7);
        StateChangeResult? alpha = null, beta = null;
        op.Primary(cluster.Alpha, force: false, r => alpha = r);
        // beta hears alpha's request and grants it before beta's operator asks.
        Assert.True(cluster.RunUntil(() => cluster.Beta.Replica.PeerPromotionGranted(0) || alpha is not null, 1_000));
        op.Primary(cluster.Beta, force: false, r => beta = r);
        Assert.Equal(StateChangeResult.TwoPrimaries, beta); // refused at once: alpha's promotion is in flight
        Assert.True(cluster.RunUntil(() => alpha is not null, 5_000));
        Assert.Equal(StateChangeResult.Success, alpha);
        Assert.Equal((Role.Primary, Role.Secondary), (cluster.Alpha.Replica.Role, cluster.Beta.Replica.Role));
    }

    [Fact]
    public void A_lost_answer_ends_with_the_connection_and_the_disconnected_rules_promote()
    {
        var (cluster, op) = SecondaryPair(seed: 11);
        cluster.Network.Partition("beta", "alpha", oneWay: true); // beta's answer (and pings) never reach alpha
        long asked = cluster.Scheduler.NowMs;
        StateChangeResult? alpha = null;
        op.Primary(cluster.Alpha, force: false, r => alpha = r);
        Assert.True(cluster.RunUntil(() => alpha is not null, 10_000), "the promotion does not hang");
        // ping-int 1 s + ping-timeout 0.5 s: the connection is declared lost, and alpha (UpToDate,
        // no fencing) promotes under the disconnected rules with a new data generation.
        Assert.Equal(StateChangeResult.Success, alpha);
        Assert.InRange(cluster.Scheduler.NowMs - asked, 500, 3_000);
        Assert.Equal(Role.Primary, cluster.Alpha.Replica.Role);
        Assert.NotEqual(ConnectionState.Connected, cluster.Alpha.Replica.Links[1].State);
        Assert.Equal(Role.Secondary, cluster.Beta.Replica.Role);
        // Healed: one Primary, the pair resyncs and replicates again.
        cluster.Network.HealAll();
        Assert.True(cluster.RunUntil(() => ScaleRun.InSync(cluster), 30_000), ScaleRun.States(cluster));
        Assert.False(cluster.Beta.Replica.PeerPromotionGranted(0), "the grant ended with the connection");
        WriteOn(cluster, cluster.Alpha, block: 3);
    }

    [Fact]
    public void A_peer_that_never_answers_times_out_and_the_grant_is_released()
    {
        var cluster = new ScaleCluster(13, new NetworkOptions { MaxDelayMs = 3, RetransmitDelayMs = 100, DialTimeoutMs = 300 });
        var op = new ScaleOperator(cluster) { TwopcTimeoutMs = 200 };
        Demote(cluster, op);
        cluster.Network.Partition("beta", "alpha", oneWay: true);
        StateChangeResult? alpha = null;
        op.Primary(cluster.Alpha, force: false, r => alpha = r);
        Assert.True(cluster.RunUntil(() => alpha is not null, 1_000), "twopc-timeout (200 ms) ends the request before ping-timeout does");
        Assert.Equal(StateChangeResult.Timeout, alpha);
        Assert.Equal("State change failed: (-23) Timeout in operation", StateChangeResults.Describe(StateChangeResult.Timeout));
        Assert.Equal(Role.Secondary, cluster.Alpha.Replica.Role);
        Assert.Equal(ConnectionState.Connected, cluster.Alpha.Replica.Links[1].State);
        // alpha's StateChangeAbort reached beta (that direction works): beta may promote again.
        Assert.True(cluster.RunUntil(() => !cluster.Beta.Replica.PeerPromotionGranted(0), 100), "beta still holds back for alpha's given-up promotion");
        Assert.False(cluster.Alpha.Replica.PromotionInFlight);
    }

    /// <summary>A started pair (alpha Primary, in sync) whose Primary demoted: both Secondary, UpToDate, connected, each knowing the other's role.</summary>
    private static (ScaleCluster Cluster, ScaleOperator Operator) SecondaryPair(int seed)
    {
        var (cluster, op) = ScaleRun.Started(seed);
        Demote(cluster, op);
        return (cluster, op);
    }

    private static void Demote(ScaleCluster cluster, ScaleOperator op)
    {
        if (cluster.Alpha.Replica.Role != Role.Primary)
        {
            Assert.True(cluster.RunUntil(() => ScaleRun.InSync(cluster), 10_000), ScaleRun.States(cluster));
            StateChangeResult? promoted = null;
            op.Primary(cluster.Alpha, force: false, r => promoted = r);
            Assert.True(cluster.RunUntil(() => promoted is not null, 1_000));
        }
        Assert.True(cluster.RunUntil(() => cluster.Beta.Replica.Links[0].PeerRole == Role.Primary, 1_000), "beta hears that alpha is Primary");
        Assert.False(cluster.Beta.Replica.PeerPromotionGranted(0), "alpha's State (Primary) carried the promotion out");
        Assert.Equal(StateChangeResult.Success, op.Secondary(cluster.Alpha));
        Assert.True(cluster.RunUntil(() => cluster.Beta.Replica.Links[0].PeerRole == Role.Secondary, 1_000));
        Assert.True(ScaleRun.InSync(cluster), ScaleRun.States(cluster));
    }

    /// <summary>A write on the Primary is acknowledged and lands on both disks.</summary>
    private static void WriteOn(ScaleCluster cluster, ScaleNode primary, long block)
    {
        var data = new byte[WriteLedger.BlockBytes];
        new SimRandom((int)block).Fill(data);
        bool? acknowledged = null;
        cluster.Write(primary, block, data);
        cluster.Flush(primary, ok => acknowledged = ok);
        Assert.True(cluster.RunUntil(() => acknowledged is not null && cluster.PendingWrites == 0, 5_000));
        Assert.True(acknowledged);
        foreach (var node in cluster.Nodes)
        {
            Assert.True(node.Block(block).SequenceEqual(data), $"{node.Name} holds the write");
        }
    }
}

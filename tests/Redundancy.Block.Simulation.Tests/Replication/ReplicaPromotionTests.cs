using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// The promotion request between two replicas (Replica.Promotion.cs), without the resource's
/// rules: with allow-two-primaries the peers grant each other's promotion; without it, two
/// requests at once end with exactly one granted (the resolve-conflicts side's).
/// </summary>
public class ReplicaPromotionTests
{
    [Fact]
    public void With_allow_two_primaries_both_requests_are_granted()
    {
        var pair = ConnectedSecondaries("allow-two-primaries;");
        var (alpha, beta) = AskBoth(pair);
        Assert.Equal((StateChangeResult.Success, StateChangeResult.Success), (alpha, beta));
        pair.Alpha.Replica.SetRole(Role.Primary);
        pair.Beta.Replica.SetRole(Role.Primary);
        Assert.False(pair.Alpha.Replica.PeerPromotionGranted(1) && pair.Beta.Replica.PeerPromotionGranted(0), "allow-two-primaries holds nothing back");
        Assert.True(pair.BothConnected());
    }

    [Fact]
    public void Without_allow_two_primaries_the_resolve_conflicts_side_wins()
    {
        var pair = ConnectedSecondaries(string.Empty);
        var (alpha, beta) = AskBoth(pair);
        Assert.Equal((StateChangeResult.ConcurrentStateChange, StateChangeResult.Success), (alpha, beta));
        Assert.True(pair.Alpha.Replica.PeerPromotionGranted(1), "alpha holds back for beta's promotion until beta is Primary");
        Assert.Equal(StateChangeResult.TwoPrimaries, pair.Alpha.Replica.RequestPromotion(pair.Scheduler.NowMs, 30_000, out long token));
        Assert.Equal(0, token);
        pair.Beta.Replica.SetRole(Role.Primary);
        Assert.True(pair.Scheduler.RunUntil(() => !pair.Alpha.Replica.PeerPromotionGranted(1), 1_000), "beta's State (Primary) is the commit");
        Assert.Equal(Role.Primary, pair.Alpha.Replica.Links[1].PeerRole);
    }

    private static SimReplicaPair ConnectedSecondaries(string netOptions)
    {
        var pair = new SimReplicaPair(5, netOptions: netOptions);
        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(pair.BothConnected, 10_000), pair.Logs);
        return pair;
    }

    /// <summary>Both nodes ask at the same instant; each answer once every asked peer replied.</summary>
    private static (StateChangeResult? Alpha, StateChangeResult? Beta) AskBoth(SimReplicaPair pair)
    {
        long now = pair.Scheduler.NowMs;
        Assert.Equal(StateChangeResult.Success, pair.Alpha.Replica.RequestPromotion(now, 30_000, out long alphaToken));
        Assert.Equal(StateChangeResult.Success, pair.Beta.Replica.RequestPromotion(now, 30_000, out long betaToken));
        Assert.NotEqual(0, alphaToken);
        Assert.NotEqual(0, betaToken);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.PromotionAnswer(alphaToken) is not null
            && pair.Beta.Replica.PromotionAnswer(betaToken) is not null, 5_000), pair.Logs);
        var answers = (pair.Alpha.Replica.PromotionAnswer(alphaToken), pair.Beta.Replica.PromotionAnswer(betaToken));
        // As a host does: a refused request is ended (a granted one ends when SetRole(Primary) carries it out).
        foreach (var (node, token, answer) in new[] { (pair.Alpha, alphaToken, answers.Item1), (pair.Beta, betaToken, answers.Item2) })
        {
            if (answer != StateChangeResult.Success)
            {
                node.Replica.EndPromotion(token);
            }
        }
        return answers;
    }
}

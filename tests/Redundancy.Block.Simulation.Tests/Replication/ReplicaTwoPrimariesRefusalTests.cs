using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// drbd.md §8 item 8 (two-primaries-reject): both nodes Primary while apart, no allow-two-primaries,
/// and they meet again. Here a promotion without the peer always starts a new data generation, so the
/// meeting is a split brain with two Primaries: after-sb-2pri disconnect refuses it (StandAlone); a
/// policy that would make a Primary SyncTarget is refused by rr-conflict (StandAlone, or with
/// retry-connect trying again); and two Primaries never connect. No data crosses either way.
/// </summary>
public class ReplicaTwoPrimariesRefusalTests
{
    [Theory]
    [InlineData("", false)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-2pri violently-as0p;", false)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-2pri violently-as0p; rr-conflict violently;", false)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-2pri violently-as0p; rr-conflict retry-connect;", true)]
    public void Two_Primaries_without_allow_two_primaries_are_refused_and_no_data_crosses(string net, bool retries)
    {
        var run = ReplicaSplitBrainPolicyTests.SplitBrain(net, alphaBlocks: 3, betaBlocks: 8, alphaPrimary: true, betaPrimary: true);
        var pair = run.Pair;
        if (retries)
        {
            // Several attempts, each refused, none StandAlone.
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Log.Count(l => l.Contains("but I am primary!", StringComparison.Ordinal)) >= 3, 120_000), pair.Logs);
            Assert.NotEqual(ConnectionState.StandAlone, pair.Alpha.Replica.Links[1].State);
            Assert.NotEqual(ConnectionState.StandAlone, pair.Beta.Replica.Links[0].State);
        }
        else
        {
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State == ConnectionState.StandAlone
                && pair.Beta.Replica.Links[0].State == ConnectionState.StandAlone, 60_000), pair.Logs);
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);
        }
        Assert.False(pair.BothConnected(), "two Primaries never connect without allow-two-primaries");
        Assert.Equal((Role.Primary, Role.Primary), (pair.Alpha.Replica.Role, pair.Beta.Replica.Role));
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(run.AlphaBefore), $"alpha's disk holds what alpha wrote\n{pair.Logs}");
        Assert.True(pair.Beta.Disks[0].Contents.SequenceEqual(run.BetaBefore), $"beta's disk holds what beta wrote\n{pair.Logs}");
        Assert.False(pair.Alpha.Sent.ContainsKey(MessageType.RsDataReply) || pair.Beta.Sent.ContainsKey(MessageType.RsDataReply)
            || pair.Alpha.Sent.ContainsKey(MessageType.RsDataRequest) || pair.Beta.Sent.ContainsKey(MessageType.RsDataRequest));
        foreach (var node in new[] { pair.Alpha, pair.Beta })
        {
            Assert.Contains($"initial-split-brain {1 - node.NodeId}/0", node.HandlerCalls);
        }
    }
}

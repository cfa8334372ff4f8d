using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Every after-sb-0pri / 1pri / 2pri policy end to end (drbd.md §5, DRBD 8.4's drbd_asb_recover_0p/1p/2p).
/// Alpha is Primary when the link breaks (its bitmap UUID carries the primary bit: the older Primary);
/// beta is promoted while apart (the younger Primary). Both write distinct patterns to blocks that partly
/// overlap, take the roles the policy needs, and meet again. Beta (node-id 1) holds RESOLVE_CONFLICTS.
/// A resolved split brain leaves both disks equal to the winner's as it was before the reconnect, by a
/// bitmap resync of exactly the union of both sides' changed blocks; an unresolved one leaves both
/// StandAlone with their own data, the `split-brain` handler called on each.
/// </summary>
public class ReplicaSplitBrainPolicyTests
{
    private const int BlockBytes = 4096;
    private const ulong Shared = 0x1234_5678_0000_0000;

    /// <param name="net">net options.</param>
    /// <param name="alphaBlocks">Blocks alpha writes while apart (0: none).</param>
    /// <param name="betaBlocks">Blocks beta writes while apart.</param>
    /// <param name="alphaPrimary">Alpha is Primary at the reconnect.</param>
    /// <param name="betaPrimary">Beta is Primary at the reconnect.</param>
    /// <param name="winner">"alpha", "beta", or null: unresolved (both StandAlone).</param>
    /// <param name="loserDemotes">The loser, Primary at the reconnect, gives up its role (call-pri-lost-after-sb).</param>
    [Theory]
    // after-sb-0pri, both Secondary at the reconnect.
    [InlineData("after-sb-0pri discard-younger-primary;", 8, 3, false, false, "alpha", false)]
    [InlineData("after-sb-0pri discard-older-primary;", 8, 3, false, false, "beta", false)]
    [InlineData("after-sb-0pri discard-zero-changes;", 5, 0, false, false, "alpha", false)]
    [InlineData("after-sb-0pri discard-zero-changes;", 0, 5, false, false, "beta", false)]
    [InlineData("after-sb-0pri discard-zero-changes;", 5, 3, false, false, null, false)]
    [InlineData("after-sb-0pri discard-least-changes;", 3, 8, false, false, "beta", false)]
    [InlineData("after-sb-0pri discard-least-changes;", 8, 3, false, false, "alpha", false)]
    [InlineData("after-sb-0pri discard-node-alpha;", 8, 3, false, false, "beta", false)]
    [InlineData("after-sb-0pri discard-node-beta;", 3, 8, false, false, "alpha", false)]
    [InlineData("after-sb-0pri disconnect;", 5, 3, false, false, null, false)]
    // after-sb-1pri, alpha Primary and beta Secondary at the reconnect.
    [InlineData("after-sb-0pri discard-least-changes; after-sb-1pri disconnect;", 8, 3, true, false, null, false)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-1pri consensus;", 8, 3, true, false, "alpha", false)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-1pri consensus;", 3, 8, true, false, null, false)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-1pri violently-as0p; rr-conflict violently;", 3, 8, true, false, "beta", false)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-1pri violently-as0p;", 8, 3, true, false, "alpha", false)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-1pri discard-secondary;", 3, 8, true, false, "alpha", false)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-1pri call-pri-lost-after-sb;", 3, 8, true, false, "beta", true)]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-1pri call-pri-lost-after-sb;", 8, 3, true, false, "alpha", false)]
    // after-sb-2pri, both Primary at the reconnect (allow-two-primaries, protocol C).
    [InlineData("allow-two-primaries yes; after-sb-0pri discard-least-changes; after-sb-2pri disconnect;", 8, 3, true, true, null, false)]
    [InlineData("allow-two-primaries yes; after-sb-0pri discard-least-changes; after-sb-2pri violently-as0p; rr-conflict violently;", 3, 8, true, true, "beta", false)]
    [InlineData("allow-two-primaries yes; after-sb-0pri discard-least-changes; after-sb-2pri call-pri-lost-after-sb;", 3, 8, true, true, "beta", true)]
    [InlineData("allow-two-primaries yes; after-sb-0pri discard-least-changes; after-sb-2pri call-pri-lost-after-sb;", 8, 3, true, true, "alpha", true)]
    public void After_a_split_brain_the_policy_decides_and_the_data_follows(string net, int alphaBlocks, int betaBlocks,
        bool alphaPrimary, bool betaPrimary, string? winner, bool loserDemotes)
    {
        var run = SplitBrain(net, alphaBlocks, betaBlocks, alphaPrimary, betaPrimary);
        var pair = run.Pair;
        var (alpha, beta) = (pair.Alpha, pair.Beta);

        if (winner is null)
        {
            Assert.True(pair.Scheduler.RunUntil(() => alpha.Replica.Links[1].State == ConnectionState.StandAlone
                && beta.Replica.Links[0].State == ConnectionState.StandAlone, 60_000), pair.Logs);
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);
            foreach (var node in new[] { alpha, beta })
            {
                Assert.Contains($"initial-split-brain {1 - node.NodeId}/0", node.HandlerCalls);
                Assert.Contains($"split-brain {1 - node.NodeId}/0", node.HandlerCalls);
                Assert.DoesNotContain($"pri-lost-after-sb {1 - node.NodeId}/0", node.HandlerCalls);
            }
            Assert.True(alpha.Disks[0].Contents.SequenceEqual(run.AlphaBefore), "no data crossed to alpha");
            Assert.True(beta.Disks[0].Contents.SequenceEqual(run.BetaBefore), "no data crossed to beta");
            Assert.False(alpha.Sent.ContainsKey(MessageType.RsDataReply) || beta.Sent.ContainsKey(MessageType.RsDataReply));
            Assert.Equal((alphaPrimary ? Role.Primary : Role.Secondary, betaPrimary ? Role.Primary : Role.Secondary), (alpha.Replica.Role, beta.Replica.Role));
            return;
        }

        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        var (won, lost) = winner == "alpha" ? (alpha, beta) : (beta, alpha);
        byte[] winnerBefore = winner == "alpha" ? run.AlphaBefore : run.BetaBefore;
        Assert.True(won.Disks[0].Contents.SequenceEqual(winnerBefore), $"the winner's disk is unchanged\n{pair.Logs}");
        Assert.True(lost.Disks[0].Contents.SequenceEqual(winnerBefore), $"the loser's writes are rolled back: its disk is the winner's\n{pair.Logs}");
        foreach (var (offset, data) in winner == "alpha" ? run.AlphaWrites : run.BetaWrites)
        {
            Assert.True(lost.Disks[0].Contents.Slice((int)offset, data.Length).SequenceEqual(data), $"the winner's write at {offset} is on the loser");
        }

        // A bitmap resync from the winner of exactly the blocks either side changed.
        long union = run.AlphaWrites.Keys.Union(run.BetaWrites.Keys).Count() * (long)BlockBytes;
        var replies = won.Sent[MessageType.RsDataReply];
        Assert.Equal(union, replies.PayloadBytes - replies.Frames * RsDataReplyMessage.Size);
        Assert.False(lost.Sent.ContainsKey(MessageType.RsDataReply), "the loser is the SyncTarget");

        foreach (var node in new[] { alpha, beta })
        {
            Assert.Contains($"initial-split-brain {1 - node.NodeId}/0", node.HandlerCalls);
            Assert.DoesNotContain($"split-brain {1 - node.NodeId}/0", node.HandlerCalls);
            Assert.DoesNotContain($"pri-lost-after-sb {1 - node.NodeId}/0", node.HandlerCalls);
        }
        Role lostWas = lost == alpha ? (alphaPrimary ? Role.Primary : Role.Secondary) : (betaPrimary ? Role.Primary : Role.Secondary);
        Role wonWas = won == alpha ? (alphaPrimary ? Role.Primary : Role.Secondary) : (betaPrimary ? Role.Primary : Role.Secondary);
        Assert.Equal(wonWas, won.Replica.Role);
        Assert.Equal(loserDemotes ? Role.Secondary : lostWas, lost.Replica.Role);
        Assert.Equal(loserDemotes, lost.Log.Any(l => l.Contains("Successfully gave up primary role.", StringComparison.Ordinal)));
    }

    /// <summary>
    /// call-pri-lost-after-sb and a losing Primary that cannot give up its role (its device is held open):
    /// DRBD calls `pri-lost-after-sb` and the split brain stays unresolved: no resync overwrites the data
    /// under the Primary's users.
    /// </summary>
    [Theory]
    [InlineData("after-sb-0pri discard-least-changes; after-sb-1pri call-pri-lost-after-sb;", false)]
    [InlineData("allow-two-primaries yes; after-sb-0pri discard-least-changes; after-sb-2pri call-pri-lost-after-sb;", true)]
    public void A_losing_Primary_that_cannot_demote_calls_pri_lost_after_sb_and_keeps_its_data(string net, bool betaPrimary)
    {
        var run = SplitBrain(net, alphaBlocks: 3, betaBlocks: 8, alphaPrimary: true, betaPrimary, alphaCannotDemote: true);
        var pair = run.Pair;
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State == ConnectionState.StandAlone
            && pair.Beta.Replica.Links[0].State != ConnectionState.Connected, 60_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);
        Assert.Contains("initial-split-brain 1/0", pair.Alpha.HandlerCalls);
        Assert.Contains("pri-lost-after-sb 1/0", pair.Alpha.HandlerCalls);
        Assert.Contains("split-brain 1/0", pair.Alpha.HandlerCalls);
        Assert.Contains("initial-split-brain 0/0", pair.Beta.HandlerCalls);
        Assert.Equal(Role.Primary, pair.Alpha.Replica.Role);
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(run.AlphaBefore), $"the Primary's data was not overwritten\n{pair.Logs}");
        Assert.True(pair.Beta.Disks[0].Contents.SequenceEqual(run.BetaBefore), "nothing crossed to beta");
    }

    internal sealed record Run(SimReplicaPair Pair, Dictionary<long, byte[]> AlphaWrites, Dictionary<long, byte[]> BetaWrites, byte[] AlphaBefore, byte[] BetaBefore);

    /// <summary>
    /// The split brain: alpha Primary (the primary bit in its current UUID, as a promotion sets it),
    /// connected, a common pattern written; the link breaks; beta is promoted as the resource does
    /// without its peer (a new current UUID, the old one its bitmap UUID); each writes its blocks; each
    /// takes its role for the reconnect (a demotion clears the primary bit); the link heals.
    /// </summary>
    internal static Run SplitBrain(string net, int alphaBlocks, int betaBlocks, bool alphaPrimary, bool betaPrimary, bool alphaCannotDemote = false)
    {
        var pair = new SimReplicaPair(41 + alphaBlocks * 10 + betaBlocks, netOptions: net,
            initial: node => (new GenerationIds(node == "alpha" ? Shared | GenerationIds.PrimaryBit : Shared, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty),
                MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate));
        pair.ConnectWithAlphaPrimary();
        var common = new byte[32 * BlockBytes];
        pair.Random.Fill(common);
        int done = 0;
        pair.Alpha.Write(0, 0, common, ok => done += ok ? 1 : 100);
        Assert.True(pair.Scheduler.RunUntil(() => done == 1 && pair.InSync(), 10_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 500);

        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected
            && pair.Beta.Replica.Links[0].State != ConnectionState.Connected, 30_000), pair.Logs);
        var betaVolume = pair.Beta.Replica.Volume(0);
        pair.Beta.Replica.AdoptLocal(0, betaVolume.Ids.NewCurrentUuid(0xBE7A_0000_0000_0000, primary: true, [true]), betaVolume.Flags, DiskState.UpToDate);
        pair.Beta.Replica.SetRole(Role.Primary);
        Assert.True((pair.Alpha.Replica.Volume(0).Ids.Bitmap[0] & GenerationIds.PrimaryBit) != 0, "alpha parted as Primary: the older Primary");
        Assert.True((pair.Beta.Replica.Volume(0).Ids.Bitmap[0] & GenerationIds.PrimaryBit) == 0, "beta was promoted apart: the younger Primary");

        // Alpha's blocks are 2, 6, 10, ...; beta's 2, 5, 8, ...: some blocks both wrote (2, 14, ...), with different data.
        var alphaWrites = Writes(pair, pair.Alpha, alphaBlocks, first: 2, step: 4);
        var betaWrites = Writes(pair, pair.Beta, betaBlocks, first: 2, step: 3);
        Assert.True(pair.Scheduler.RunUntil(() => alphaWrites.Count == alphaBlocks && betaWrites.Count == betaBlocks, 10_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 500);
        Assert.Equal(alphaBlocks * (long)BlockBytes, pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1));
        Assert.Equal(betaBlocks * (long)BlockBytes, pair.Beta.Replica.Volume(0).OutOfSyncBytes(0));

        foreach (var (node, primary) in new[] { (pair.Alpha, alphaPrimary), (pair.Beta, betaPrimary) })
        {
            if (!primary)
            {
                var volume = node.Replica.Volume(0);
                node.Replica.SetRole(Role.Secondary);
                node.Replica.AdoptLocal(0, volume.Ids.WithPrimaryBit(false), volume.Flags, volume.Disk);
            }
        }
        if (alphaCannotDemote)
        {
            pair.Alpha.BecomeSecondary = () => false;
        }
        var run = new Run(pair, alphaWrites, betaWrites, pair.Alpha.Disks[0].Contents.ToArray(), pair.Beta.Disks[0].Contents.ToArray());
        pair.Network.HealAll();
        return run;
    }

    private static Dictionary<long, byte[]> Writes(SimReplicaPair pair, SimReplicaNode node, int count, int first, int step)
    {
        var acked = new Dictionary<long, byte[]>();
        for (int i = 0; i < count; i++)
        {
            long offset = (first + i * step) * (long)BlockBytes;
            var data = new byte[BlockBytes];
            pair.Random.Fill(data);
            node.Write(0, offset, data, ok =>
            {
                Assert.True(ok);
                acked[offset] = data;
            });
        }
        return acked;
    }
}

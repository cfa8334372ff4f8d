// Every after-sb-0pri / 1pri / 2pri value with the outcome on both nodes. The split brain is rule 90:
// alice and bob share the bitmap UUID X (their last common generation); alice's bitmap UUID has the
// primary bit (she was Primary when they parted: the older primary), bob's has not.
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.SplitBrain.HandshakePair;

namespace Redundancy.Block.Engine.Tests.SplitBrain;

public class AfterSbPolicyTests
{
    private const ulong X = 0x1000, H = 0x0F00, Ca = 0xA000, Cb = 0xB000;

    private static HandshakeSide Alice(Role role = Role.Secondary, long bits = 5, bool canDemote = true) =>
        Node("alice", new UuidSet(Ca | 1, X | 1, H), role, bits: bits, canDemote: canDemote);

    private static HandshakeSide Bob(Role role = Role.Secondary, long bits = 5, bool canDemote = true) =>
        Node("bob", new UuidSet(Cb | 1, X, H), role, bits: bits, canDemote: canDemote);

    private static void AssertResolved((HandshakeOutcome A, HandshakeOutcome B) pair, HandshakeAction alice)
    {
        AssertPair(pair, alice);
        Assert.Equal(90, pair.A.Comparison.Rule);
        Assert.Equal(SplitBrainResolution.AfterSbPolicy, pair.A.SplitBrain);
        Assert.Equal(HandshakeHandlers.InitialSplitBrain, pair.A.Handlers);
        Assert.Equal(HandshakeHandlers.InitialSplitBrain, pair.B.Handlers);
    }

    private static void AssertUnresolved((HandshakeOutcome A, HandshakeOutcome B) pair)
    {
        AssertPair(pair, HandshakeAction.Disconnect);
        foreach (var o in new[] { pair.A, pair.B })
        {
            Assert.Equal(DisconnectReason.SplitBrain, o.Reason);
            Assert.Equal(SplitBrainResolution.Unresolved, o.SplitBrain);
            Assert.Equal(HandshakeHandlers.InitialSplitBrain | HandshakeHandlers.SplitBrain, o.Handlers);
            Assert.Equal(ConnectionState.StandAlone, o.NextConnectionState);
            Assert.Contains("Split-Brain detected but unresolved, dropping connection!", o.Log);
        }
    }

    [Fact]
    public void ZeroPri_disconnect() => AssertUnresolved(Run(Alice(), Bob(), Policies(p0: "disconnect")));

    [Fact]
    public void ZeroPri_discard_younger_primary_discards_bob()
    {
        var pair = Run(Alice(), Bob(), Policies(p0: "discard-younger-primary"));
        AssertResolved(pair, HandshakeAction.SyncSource);
        Assert.Equal(ReplicationState.WFBitMapS, pair.A.NextReplicationState);
        Assert.Equal(ReplicationState.WFBitMapT, pair.B.NextReplicationState);
        Assert.Contains("Split-Brain detected, 0 primaries, automatically solved. Sync from this node", pair.A.Log);
        Assert.Contains("Split-Brain detected, 0 primaries, automatically solved. Sync from peer node", pair.B.Log);
    }

    [Fact]
    public void ZeroPri_discard_older_primary_discards_alice() =>
        AssertResolved(Run(Alice(), Bob(), Policies(p0: "discard-older-primary")), HandshakeAction.SyncTarget);

    [Theory]
    [InlineData("discard-younger-primary")]
    [InlineData("discard-older-primary")]
    public void ZeroPri_by_age_without_a_decision_falls_back_to_zero_then_least_changes(string policy)
    {
        HandshakeSide alice = Node("alice", new UuidSet(Ca, X, H), bits: 5);
        HandshakeSide bob = Node("bob", new UuidSet(Cb, X, H), bits: 0);
        var pair = Run(alice, bob, Policies(p0: policy));
        AssertResolved(pair, HandshakeAction.SyncSource); // bob has no changes
        Assert.Contains(pair.A.Log, l => l.StartsWith("Discard younger/older primary did not find a decision", StringComparison.Ordinal));

        var least = Run(alice with { OutOfSyncBits = 3 }, bob with { OutOfSyncBits = 9 }, Policies(p0: policy));
        AssertResolved(least, HandshakeAction.SyncTarget); // both wrote: fewer changes lose
    }

    [Fact]
    public void ZeroPri_discard_zero_changes_one_writer_is_source()
    {
        AssertResolved(Run(Alice(bits: 0), Bob(bits: 8), Policies(p0: "discard-zero-changes")), HandshakeAction.SyncTarget);
        AssertResolved(Run(Alice(bits: 8), Bob(bits: 0), Policies(p0: "discard-zero-changes")), HandshakeAction.SyncSource);
    }

    [Fact]
    public void ZeroPri_discard_zero_changes_two_writers_disconnect() =>
        AssertUnresolved(Run(Alice(bits: 1), Bob(bits: 8), Policies(p0: "discard-zero-changes")));

    [Theory]
    [InlineData(true, HandshakeAction.SyncTarget)]
    [InlineData(false, HandshakeAction.SyncSource)]
    public void ZeroPri_discard_zero_changes_neither_wrote_discards_the_resolve_conflicts_node(bool aliceResolves, HandshakeAction alice) =>
        AssertResolved(Run(Alice(bits: 0), Bob(bits: 0), Policies(p0: "discard-zero-changes"), aliceResolves), alice);

    [Fact]
    public void ZeroPri_discard_least_changes()
    {
        AssertResolved(Run(Alice(bits: 3), Bob(bits: 10), Policies(p0: "discard-least-changes")), HandshakeAction.SyncTarget);
        AssertResolved(Run(Alice(bits: 30), Bob(bits: 10), Policies(p0: "discard-least-changes")), HandshakeAction.SyncSource);
    }

    [Theory]
    [InlineData(true, HandshakeAction.SyncTarget)]
    [InlineData(false, HandshakeAction.SyncSource)]
    public void ZeroPri_discard_least_changes_tie_discards_the_resolve_conflicts_node(bool aliceResolves, HandshakeAction alice) =>
        AssertResolved(Run(Alice(bits: 7), Bob(bits: 7), Policies(p0: "discard-least-changes"), aliceResolves), alice);

    [Fact]
    public void ZeroPri_discard_local_and_remote()
    {
        // alice says discard-local; bob states the same configuration as discard-remote.
        AssertResolved(Run(Alice(), Bob(), Policies(p0: "discard-local")), HandshakeAction.SyncTarget);
        AssertResolved(Run(Alice(), Bob(), Policies(p0: "discard-remote")), HandshakeAction.SyncSource);
    }

    [Fact]
    public void ZeroPri_discard_node_name()
    {
        AssertResolved(Run(Alice(), Bob(), Policies(p0: "discard-node-bob")), HandshakeAction.SyncSource);
        AssertResolved(Run(Alice(), Bob(), Policies(p0: "discard-node-alice")), HandshakeAction.SyncTarget);
    }

    [Fact]
    public void ZeroPri_discard_node_naming_neither_node_is_a_configuration_error()
    {
        var pair = Run(Alice(), Bob(), Policies(p0: "discard-node-carol"));
        AssertUnresolved(pair);
        Assert.Contains(pair.A.Log, l => l.StartsWith("Configuration error", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("consensus")]
    [InlineData("violently-as0p")]
    [InlineData("discard-secondary")]
    [InlineData("call-pri-lost-after-sb")]
    public void ZeroPri_one_primary_values_are_configuration_errors(string policy)
    {
        var pair = Run(Alice(), Bob(), Policies(p0: policy));
        AssertUnresolved(pair);
        Assert.Contains($"Configuration error: after-sb-0pri {policy} is not valid here", pair.A.Log);
    }

    [Fact]
    public void OnePri_disconnect() => AssertUnresolved(Run(Alice(Role.Primary), Bob(), Policies(p1: "disconnect")));

    [Fact]
    public void OnePri_consensus_accepts_a_verdict_that_discards_the_secondary()
    {
        // 0pri discard-zero-changes: bob (Secondary) did not write → discard bob: accepted.
        AssertResolved(Run(Alice(Role.Primary, bits: 4), Bob(bits: 0), Policies(p0: "discard-zero-changes", p1: "consensus")),
            HandshakeAction.SyncSource);
    }

    [Fact]
    public void OnePri_consensus_refuses_a_verdict_that_discards_the_primary() =>
        AssertUnresolved(Run(Alice(Role.Primary, bits: 0), Bob(bits: 4), Policies(p0: "discard-zero-changes", p1: "consensus")));

    [Fact]
    public void OnePri_violently_as0p_follows_0pri_even_against_the_primary()
    {
        var policies = Policies(p0: "discard-zero-changes", p1: "violently-as0p", rr: "violently");
        var pair = Run(Alice(Role.Primary, bits: 0), Bob(bits: 4), policies);
        AssertResolved(pair, HandshakeAction.SyncTarget);
        Assert.Contains("Becoming SyncTarget, violating the stable-data assumption", pair.A.Log);

        // With rr-conflict disconnect the Primary refuses to become SyncTarget — on both nodes.
        var refused = Run(Alice(Role.Primary, bits: 0), Bob(bits: 4), policies with { RrConflict = RrConflictPolicy.Disconnect });
        AssertPair(refused, HandshakeAction.Disconnect);
        Assert.Equal(DisconnectReason.PrimarySyncTarget, refused.A.Reason);
        Assert.Equal(DisconnectReason.PeerPrimarySyncTarget, refused.B.Reason);
    }

    [Fact]
    public void OnePri_discard_secondary()
    {
        AssertResolved(Run(Alice(Role.Primary), Bob(), Policies(p1: "discard-secondary")), HandshakeAction.SyncSource);
        AssertResolved(Run(Alice(), Bob(Role.Primary), Policies(p1: "discard-secondary")), HandshakeAction.SyncTarget);
    }

    [Fact]
    public void OnePri_call_pri_lost_after_sb_losing_primary_demotes_and_becomes_target()
    {
        var pair = Run(Alice(Role.Primary, bits: 2), Bob(bits: 9), Policies(p0: "discard-least-changes", p1: "call-pri-lost-after-sb"));
        AssertResolved(pair, HandshakeAction.SyncTarget);
        Assert.True(pair.A.Demote);
        Assert.False(pair.B.Demote);
        Assert.Contains("Successfully gave up primary role.", pair.A.Log);
    }

    [Fact]
    public void OnePri_call_pri_lost_after_sb_winning_primary_stays()
    {
        var pair = Run(Alice(Role.Primary, bits: 9), Bob(bits: 2), Policies(p0: "discard-least-changes", p1: "call-pri-lost-after-sb"));
        AssertResolved(pair, HandshakeAction.SyncSource);
        Assert.False(pair.A.Demote || pair.B.Demote);
    }

    [Fact]
    public void OnePri_call_pri_lost_after_sb_when_demotion_is_impossible_runs_the_handler_and_disconnects()
    {
        var policies = Policies(p0: "discard-least-changes", p1: "call-pri-lost-after-sb");
        var alice = SyncHandshake.Decide(Alice(Role.Primary, bits: 2, canDemote: false), Bob(bits: 9), true, policies);
        Assert.Equal(HandshakeAction.Disconnect, alice.Action);
        Assert.Equal(DisconnectReason.SplitBrain, alice.Reason);
        Assert.Equal(HandshakeHandlers.InitialSplitBrain | HandshakeHandlers.PriLostAfterSb | HandshakeHandlers.SplitBrain, alice.Handlers);
        Assert.False(alice.Demote);
    }

    [Theory]
    [InlineData("discard-younger-primary")]
    [InlineData("discard-older-primary")]
    [InlineData("discard-zero-changes")]
    [InlineData("discard-least-changes")]
    [InlineData("discard-local")]
    [InlineData("discard-remote")]
    public void OnePri_zero_primary_values_are_configuration_errors(string policy) =>
        AssertUnresolved(Run(Alice(Role.Primary), Bob(), Policies(p1: policy)));

    [Fact]
    public void TwoPri_disconnect() => AssertUnresolved(Run(Alice(Role.Primary), Bob(Role.Primary), Policies(p2: "disconnect")));

    [Fact]
    public void TwoPri_violently_as0p_needs_rr_conflict_violently_to_make_a_primary_target()
    {
        var violent = Run(Alice(Role.Primary, bits: 1), Bob(Role.Primary, bits: 6),
            Policies(p0: "discard-least-changes", p2: "violently-as0p", rr: "violently"));
        AssertResolved(violent, HandshakeAction.SyncTarget);

        var refused = Run(Alice(Role.Primary, bits: 1), Bob(Role.Primary, bits: 6),
            Policies(p0: "discard-least-changes", p2: "violently-as0p", rr: "disconnect"));
        AssertPair(refused, HandshakeAction.Disconnect);
        Assert.Equal(DisconnectReason.PrimarySyncTarget, refused.A.Reason);
    }

    [Fact]
    public void TwoPri_call_pri_lost_after_sb_loser_demotes()
    {
        var pair = Run(Alice(Role.Primary, bits: 6), Bob(Role.Primary, bits: 1),
            Policies(p0: "discard-least-changes", p2: "call-pri-lost-after-sb"));
        AssertResolved(pair, HandshakeAction.SyncSource);
        Assert.False(pair.A.Demote);
        Assert.True(pair.B.Demote);
    }

    [Fact]
    public void TwoPri_call_pri_lost_after_sb_without_demotion_runs_pri_lost_after_sb()
    {
        var bob = SyncHandshake.Decide(Bob(Role.Primary, bits: 1, canDemote: false), Alice(Role.Primary, bits: 6), false,
            Policies(p0: "discard-least-changes", p2: "call-pri-lost-after-sb"));
        Assert.Equal(HandshakeAction.Disconnect, bob.Action);
        Assert.True(bob.Handlers.HasFlag(HandshakeHandlers.PriLostAfterSb));
    }

    [Theory]
    [InlineData("consensus")]
    [InlineData("discard-secondary")]
    [InlineData("discard-least-changes")]
    public void TwoPri_other_values_are_configuration_errors(string policy) =>
        AssertUnresolved(Run(Alice(Role.Primary), Bob(Role.Primary), Policies(p2: policy)));

    [Fact]
    public void Policy_values_parse_and_print_as_in_drbd_conf()
    {
        foreach (var text in new[] { "disconnect", "discard-younger-primary", "discard-older-primary", "discard-zero-changes",
            "discard-least-changes", "discard-local", "discard-remote", "discard-node-alice", "consensus", "violently-as0p",
            "discard-secondary", "call-pri-lost-after-sb" })
        {
            Assert.Equal(text, AfterSbPolicy.Parse(text).ToString());
        }

        Assert.Equal(new AfterSbPolicy(AfterSbStrategy.DiscardNode, "alice"), AfterSbPolicy.Parse("discard-node-alice"));
        Assert.False(AfterSbPolicy.TryParse("discard-node-", out _));
        Assert.Throws<FormatException>(() => AfterSbPolicy.Parse("discard-everything"));
        Assert.Equal(RrConflictPolicy.RetryConnect, RrConflictPolicies.Parse("retry-connect"));
        Assert.Throws<FormatException>(() => RrConflictPolicies.Parse("maybe"));
    }
}

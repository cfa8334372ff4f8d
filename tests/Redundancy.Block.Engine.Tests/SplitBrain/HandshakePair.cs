// Test harness: runs the sync handshake on both nodes with mirrored inputs (each side's own view,
// RESOLVE_CONFLICTS on exactly one, policies as the peer states them) and checks mirrored results.
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Tests.SplitBrain;

internal static class HandshakePair
{
    public static HandshakeSide Node(string name, UuidSet uuids, Role role = Role.Secondary, DiskState disk = DiskState.UpToDate,
        long bits = 0, bool discardMyData = false, bool crashed = false, bool canDemote = true, bool missedWrites = false) =>
        new(uuids, crashed ? MetadataFlags.Consistent | MetadataFlags.CrashedPrimary : MetadataFlags.Consistent,
            role, disk, name, bits, discardMyData, canDemote, MissedWrites: missedWrites);

    public static SplitBrainPolicies Policies(string p0 = "disconnect", string p1 = "disconnect", string p2 = "disconnect",
        string rr = "disconnect", bool alwaysAsbp = false) =>
        SplitBrainPolicies.Parse(p0, p1, p2, rr, alwaysAsbp);

    /// <summary>Runs both sides; <paramref name="a"/> holds RESOLVE_CONFLICTS unless told otherwise.</summary>
    public static (HandshakeOutcome A, HandshakeOutcome B) Run(HandshakeSide a, HandshakeSide b, SplitBrainPolicies? policies = null, bool aResolves = true)
    {
        policies ??= SplitBrainPolicies.Default;
        return (SyncHandshake.Decide(a, b, aResolves, policies), SyncHandshake.Decide(b, a, !aResolves, policies.AsSeenByPeer()));
    }

    /// <summary>Source on one ⇔ target on the other (same bitmap/full), or both NoSync, or both Disconnect.</summary>
    public static void AssertMirrored(HandshakeOutcome a, HandshakeOutcome b)
    {
        switch (a.Action)
        {
            case HandshakeAction.SyncSource:
                Assert.Equal(HandshakeAction.SyncTarget, b.Action);
                break;
            case HandshakeAction.SyncTarget:
                Assert.Equal(HandshakeAction.SyncSource, b.Action);
                break;
            default:
                Assert.Equal(a.Action, b.Action);
                break;
        }

        Assert.Equal(a.FullSync, b.FullSync);
        Assert.Equal(a.RetryConnect, b.RetryConnect);
        Assert.Equal(a.SplitBrain, b.SplitBrain);
    }

    /// <summary>Asserts the pair mirrors and that its first node did <paramref name="expected"/>.</summary>
    public static void AssertPair((HandshakeOutcome A, HandshakeOutcome B) pair, HandshakeAction expected, bool full = false)
    {
        Assert.Equal(expected, pair.A.Action);
        Assert.Equal(full, pair.A.FullSync);
        AssertMirrored(pair.A, pair.B);
    }
}

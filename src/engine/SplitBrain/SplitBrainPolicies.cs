// The net options the sync handshake applies: after-sb-0pri/1pri/2pri, rr-conflict, always-asbp.
using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Engine.SplitBrain;

public sealed record SplitBrainPolicies(
    AfterSbPolicy AfterSb0Pri,
    AfterSbPolicy AfterSb1Pri,
    AfterSbPolicy AfterSb2Pri,
    RrConflictPolicy RrConflict,
    bool AlwaysAsbp)
{
    /// <summary>DRBD's defaults: disconnect everywhere, always-asbp no.</summary>
    public static SplitBrainPolicies Default { get; } = new(
        new AfterSbPolicy(AfterSbStrategy.Disconnect), new AfterSbPolicy(AfterSbStrategy.Disconnect),
        new AfterSbPolicy(AfterSbStrategy.Disconnect), RrConflictPolicy.Disconnect, AlwaysAsbp: false);

    /// <summary>Parses the config strings (as <see cref="ResourceOptions"/> returns them).</summary>
    public static SplitBrainPolicies Parse(string afterSb0Pri, string afterSb1Pri, string afterSb2Pri, string rrConflict, bool alwaysAsbp) =>
        new(AfterSbPolicy.Parse(afterSb0Pri), AfterSbPolicy.Parse(afterSb1Pri), AfterSbPolicy.Parse(afterSb2Pri),
            RrConflictPolicies.Parse(rrConflict), alwaysAsbp);

    public static SplitBrainPolicies FromResource(ResourceDefinition resource) =>
        Parse(resource.AfterSb0Pri(), resource.AfterSb1Pri(), resource.AfterSb2Pri(), resource.RrConflict(), resource.AlwaysAsbp());

    /// <summary>The same configuration as the peer states it (discard-local ⇔ discard-remote).</summary>
    public SplitBrainPolicies AsSeenByPeer() =>
        this with { AfterSb0Pri = AfterSb0Pri.AsSeenByPeer(), AfterSb1Pri = AfterSb1Pri.AsSeenByPeer(), AfterSb2Pri = AfterSb2Pri.AsSeenByPeer() };
}

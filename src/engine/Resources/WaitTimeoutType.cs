namespace Redundancy.Block.Engine.Resources;

/// <summary>
/// Which startup timeout wait-connect and wait-sync use (DRBD's UT_* from get-timeout-type): the
/// peer of a node that went down as a degraded Primary, or whose peer it knew Outdated, is less
/// likely to come back in time, so those waits may be shorter.
/// </summary>
public enum WaitTimeoutType
{
    /// <summary>UT_DEFAULT: wfc-timeout.</summary>
    Default,

    /// <summary>UT_DEGRADED: degr-wfc-timeout — this node was Primary without a connected peer when it went down.</summary>
    Degraded,

    /// <summary>UT_PEER_OUTDATED: outdated-wfc-timeout — the peer's disk is known Outdated.</summary>
    PeerOutdated,
}

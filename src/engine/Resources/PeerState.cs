using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Resources;

/// <summary>A peer node of a resource as this node sees it: the connection and the peer's role.</summary>
public sealed class PeerState(string name, int nodeId)
{
    public string Name { get; } = name;

    public int NodeId { get; } = nodeId;

    /// <summary>StandAlone until a connection is asked for (`connect`, part of `up` once peers replicate).</summary>
    public ConnectionState Connection { get; internal set; } = ConnectionState.StandAlone;

    public Role PeerRole { get; internal set; } = Role.Unknown;

    /// <summary>The peer's disk state as last reported by the peer; DUnknown while not connected.</summary>
    public DiskState PeerDisk { get; internal set; } = DiskState.DUnknown;

    /// <summary>
    /// `fencing resource-only` or `resource-and-stonith` on the connection: a promotion needs this
    /// peer connected or known Outdated (DRBD's SS_PRIMARY_NOP otherwise).
    /// </summary>
    public bool Fencing { get; init; }

    /// <summary>`allow-two-primaries yes` on the connection: this node may be Primary while the peer is (dual-primary).</summary>
    public bool AllowTwoPrimaries { get; init; }

    public bool IsConnected => Connection == ConnectionState.Connected;
}

using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// Never two Primaries without allow-two-primaries: two nodes connected to each other may not
/// both be Primary (apart, a split brain may make two; the handshake must then refuse to connect
/// them as they are). With `allow-two-primaries yes` on both ends of the connection (the handshake
/// refuses to connect when the two disagree, P_PROTOCOL) two connected Primaries are DRBD's
/// dual-primary mode (UG9 drbd-dualprimary.adoc; at most two, which a pair cannot exceed).
/// </summary>
public static class PrimaryChecker
{
    public static void Check(ScaleCluster cluster)
    {
        var (a, b) = (cluster.Alpha, cluster.Beta);
        if (a.Up && b.Up && a.Replica.Role == Role.Primary && b.Replica.Role == Role.Primary
            && a.Replica.Links[b.NodeId].State == ConnectionState.Connected && b.Replica.Links[a.NodeId].State == ConnectionState.Connected
            && !(a.Replica.Links[b.NodeId].Settings.Protocol.AllowTwoPrimaries && b.Replica.Links[a.NodeId].Settings.Protocol.AllowTwoPrimaries))
        {
            throw new SimulationViolation("two-primaries", $"{a.Name} and {b.Name} are both Primary and connected to each other");
        }
    }
}

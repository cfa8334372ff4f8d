using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// Never two Primaries without allow-two-primaries: two nodes connected to each other may not
/// both be Primary (apart, a split brain may make two; the handshake must then refuse to connect
/// them as they are).
/// </summary>
public static class PrimaryChecker
{
    public static void Check(ScaleCluster cluster)
    {
        var (a, b) = (cluster.Alpha, cluster.Beta);
        if (a.Up && b.Up && a.Replica.Role == Role.Primary && b.Replica.Role == Role.Primary
            && a.Replica.Links[b.NodeId].State == ConnectionState.Connected && b.Replica.Links[a.NodeId].State == ConnectionState.Connected)
        {
            throw new SimulationViolation("two-primaries", $"{a.Name} and {b.Name} are both Primary and connected to each other");
        }
    }
}

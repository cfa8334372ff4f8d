using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// Only legal state transitions, after every simulated event, in DRBD's rules: the role changes
/// only by an operator's primary/secondary (or a split-brain loser's demotion); an Inconsistent
/// disk becomes good only by a resync it was the target of (or a forced promotion); an Outdated one
/// only through a peer; a Diskless one only by attach; UpToDate never falls back to Consistent
/// while running; a Primary's disk never becomes Outdated (except by attaching one while apart); resync and verify states need a connection and the
/// right disk states; Connected comes only from Connecting, and StandAlone is left only by connect.
/// </summary>
public sealed class TransitionChecker
{
    private readonly Dictionary<string, Seen> last = [];

    /// <summary>Transitions the operator's current action may make, per node (cleared after the action).</summary>
    public Dictionary<string, Allowance> Allowed { get; } = [];

    public long Observations { get; private set; }

    public void Observe(ScaleNode node)
    {
        if (!node.Up)
        {
            return;
        }
        var link = node.Replica.Links[node.PeerNodeId];
        var now = new Seen(node.Restarts, node.AutoDemotions, node.Replica.Role, node.Volume.Disk, link.State, node.Replica.ReplicationOf(node.PeerNodeId, 0), false);
        Observations++;
        if (!last.TryGetValue(node.Name, out var before) || before.Incarnation != now.Incarnation)
        {
            last[node.Name] = now with { SyncedAsTarget = false };
            CheckStatic(node.Name, now);
            return;
        }
        var allowed = Allowed.GetValueOrDefault(node.Name);
        bool synced = now.Disk == DiskState.Inconsistent
            && (before.SyncedAsTarget || IsTarget(now.Replication) || IsTarget(before.Replication));
        CheckChange(node.Name, before, now, allowed);
        CheckStatic($"{node.Name} (was {Describe(before)})", now);
        last[node.Name] = now with { SyncedAsTarget = synced };
    }

    private static void CheckChange(string name, Seen before, Seen now, Allowance allowed)
    {
        string change = $"{name}: {Describe(before)} -> {Describe(now)}";
        if (before.Role != now.Role && !allowed.Role && now.AutoDemotions == before.AutoDemotions)
        {
            Fail($"role changed without primary/secondary: {change}");
        }
        if (before.Disk == DiskState.Diskless && now.Disk != DiskState.Diskless && !allowed.Attach)
        {
            Fail($"a Diskless volume got a disk without attach: {change}");
        }
        bool good = now.Disk is DiskState.Outdated or DiskState.Consistent or DiskState.UpToDate;
        if (before.Disk == DiskState.Inconsistent && good && !allowed.Force
            && !(before.SyncedAsTarget || IsTarget(before.Replication)))
        {
            Fail($"Inconsistent became {now.Disk} without a finished resync: {change}");
        }
        if (before.Disk == DiskState.UpToDate && now.Disk == DiskState.Consistent)
        {
            Fail($"UpToDate fell back to Consistent: {change}");
        }
        if (before.Disk == DiskState.Outdated && now.Disk is DiskState.UpToDate or DiskState.Consistent && !allowed.Force
            && before.Connection is not (ConnectionState.Connecting or ConnectionState.Connected))
        {
            Fail($"Outdated became {now.Disk} without a peer: {change}");
        }
        // The engine attaches a disk to a disconnected Primary as Outdated (nothing says its data is
        // current); any other way into a Primary with an Outdated disk is illegal.
        if (now.Role == Role.Primary && now.Disk == DiskState.Outdated
            && before.Disk is not (DiskState.Outdated or DiskState.Diskless or DiskState.Negotiating or DiskState.Attaching))
        {
            Fail($"a Primary's disk became Outdated: {change}");
        }
        if (now.Connection == ConnectionState.Connected && before.Connection is not (ConnectionState.Connecting or ConnectionState.Connected))
        {
            Fail($"Connected without Connecting: {change}");
        }
        if (before.Connection == ConnectionState.StandAlone && now.Connection != ConnectionState.StandAlone && !allowed.Connect)
        {
            Fail($"left StandAlone without connect: {change}");
        }
    }

    private static void CheckStatic(string name, Seen now)
    {
        if (now.Replication != ReplicationState.Off && now.Connection != ConnectionState.Connected)
        {
            Fail($"{name}: replication {now.Replication} without a connection ({Describe(now)})");
        }
        bool ok = now.Replication switch
        {
            ReplicationState.SyncSource or ReplicationState.PausedSyncS => now.Disk == DiskState.UpToDate,
            ReplicationState.VerifyS or ReplicationState.VerifyT => now.Disk >= DiskState.Inconsistent && now.Disk != DiskState.DUnknown,
            ReplicationState.SyncTarget or ReplicationState.PausedSyncT => now.Disk == DiskState.Inconsistent,
            _ => true,
        };
        if (!ok)
        {
            Fail($"{name}: {now.Replication} with a {now.Disk} disk ({Describe(now)})");
        }
    }

    /// <summary>A resync target, or about to be one (WFSyncUUID: an empty resync starts and ends within one event).</summary>
    private static bool IsTarget(ReplicationState state) => state is ReplicationState.SyncTarget or ReplicationState.PausedSyncT or ReplicationState.WFSyncUUID;

    private static string Describe(Seen s) => $"{s.Role}/{s.Disk}/{s.Connection}/{s.Replication}";

    private static void Fail(string detail) => throw new SimulationViolation("state-transition", detail);

    private sealed record Seen(int Incarnation, int AutoDemotions, Role Role, DiskState Disk, ConnectionState Connection, ReplicationState Replication, bool SyncedAsTarget);
}

/// <summary>What an operator action may change: the role, a forced promotion's disk, an attach, leaving StandAlone.</summary>
public readonly record struct Allowance(bool Role, bool Force, bool Attach, bool Connect);

using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;
using Redundancy.Block.Simulation.Replication;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// One seed of the simulation at scale: the pair starts in sync with alpha Primary, then each step
/// draws an application write or flush, a network, disk, clock or crash fault, or an operator
/// command, and lets up to 60 ms of simulated time pass, checking after every event and every
/// step. At the end every fault is healed, split brains resolved as an operator would (the
/// Secondary connects with --discard-my-data), and the pair must converge: both UpToDate, no bit
/// left, byte-identical disks holding every acknowledged write. Everything follows from the seed.
/// Dual-primary runs (<c>dualPrimary</c>, scripts/sim --dual-primary) configure allow-two-primaries,
/// promote both nodes at the start, write on both (sometimes the same block on both at once) and
/// promote a Secondary on otherwise idle steps; single-Primary runs draw exactly the random numbers
/// they always did. Slow-disk runs (<c>slowDisks</c>, scripts/sim --slow-disks) add a disk fault:
/// a node's disk takes up to hundreds of milliseconds per request for a while, so writes, flushes
/// and barriers are still in flight when connections end, nodes are promoted and peers reconnect;
/// without it the random numbers drawn are the same. Protocol A or B runs (<c>protocol</c>,
/// scripts/sim --protocol) replicate asynchronously: the checkers then hold a node to the writes it
/// acknowledged itself (WriteLedger.OwedBy).
/// </summary>
public static class ScaleRun
{
    public const int DefaultSteps = 150;
    private static readonly NetworkOptions Calm = new() { MaxDelayMs = 3, RetransmitDelayMs = 100, DialTimeoutMs = 300 };

    public static ScaleResult Run(int seed, int steps = DefaultSteps, bool trace = false, bool dualPrimary = false, bool slowDisks = false,
        ReplicationProtocol protocol = ReplicationProtocol.C)
    {
        var result = new ScaleResult(seed);
        var cluster = new ScaleCluster(seed, Calm, dualPrimary, protocol) { Trace = trace ? [] : null, SlowDisks = slowDisks };
        try
        {
            var op = new ScaleOperator(cluster);
            var random = cluster.Random.Fork();
            Start(cluster, op);
            int hotBlocks = random.Next(4, 64);
            for (int step = 0; step < steps; step++)
            {
                Step(cluster, op, random, hotBlocks, result);
                cluster.RunUntil(cluster.Scheduler.NowMs + random.Next(1, 60));
                cluster.EndOrphanedWrites();
                result.AcknowledgedChecks += AckChecker.Check(cluster);
                result.BitmapChecks += BitmapCoverageChecker.Check(cluster) ? 1 : 0;
                result.Steps++;
            }
            Heal(cluster, op, result);
            foreach (var (outcome, count) in op.Outcomes)
            {
                result.Operator[outcome] = count;
            }
        }
        catch (Exception e)
        {
            result.Failure = e is SimulationViolation ? e.Message : $"exception: {e}";
            result.Logs = string.Join("\n", cluster.Nodes.Select(n => $"{n.Name}: {string.Join("\n  ", n.Sim.Log.TakeLast(trace ? 400 : 60))}"))
                + (cluster.Trace is { } timeline ? "\ntimeline:\n" + string.Join("\n", timeline) : string.Empty);
        }
        result.WritesIssued = cluster.Ledger.Issued;
        result.WritesAcknowledged = cluster.Ledger.Acknowledged;
        result.WritesForgiven = cluster.Ledger.Forgiven;
        result.ConcurrentWrites = cluster.Ledger.Concurrent;
        result.TransitionsObserved = cluster.Transitions.Observations;
        result.Fault("messages lost (retransmitted)", cluster.Network.MessagesLost);
        result.Fault("messages duplicated", cluster.Network.MessagesDuplicated);
        result.Fault("messages reordered", cluster.Network.MessagesReordered);
        return result;
    }

    /// <summary>A pair as every seed starts: connected, in sync, alpha Primary (and beta with <paramref name="dualPrimary"/>; for tests of the checkers).</summary>
    public static (ScaleCluster Cluster, ScaleOperator Operator) Started(int seed, bool dualPrimary = false, ReplicationProtocol protocol = ReplicationProtocol.C)
    {
        var cluster = new ScaleCluster(seed, Calm, dualPrimary, protocol);
        var op = new ScaleOperator(cluster);
        Start(cluster, op);
        return (cluster, op);
    }

    private static void Start(ScaleCluster cluster, ScaleOperator op)
    {
        if (!cluster.RunUntil(() => InSync(cluster), 10_000))
        {
            throw new SimulationViolation("convergence", $"the fresh pair does not connect: {States(cluster)}");
        }
        StateChangeResult? promoted = null;
        op.Primary(cluster.Alpha, force: false, r => promoted = r);
        if (!cluster.RunUntil(() => promoted is not null, 10_000) || promoted != StateChangeResult.Success)
        {
            throw new SimulationViolation("operator-rules", "alpha cannot become Primary on a fresh, connected, UpToDate pair");
        }
        if (cluster.AllowTwoPrimaries)
        {
            promoted = null;
            op.Primary(cluster.Beta, force: false, r => promoted = r);
            if (!cluster.RunUntil(() => promoted is not null, 10_000) || promoted != StateChangeResult.Success)
            {
                throw new SimulationViolation("operator-rules", $"beta cannot become the second Primary with allow-two-primaries: {promoted}");
            }
        }
    }

    private static void Step(ScaleCluster cluster, ScaleOperator op, SimRandom random, int hotBlocks, ScaleResult result)
    {
        int roll = random.Next(0, 1000);
        var node = cluster.Nodes[random.Next(0, 2)];
        var primaries = cluster.Nodes.Where(n => n.Up && n.Replica.Role == Role.Primary).ToList();
        if (roll < 520)
        {
            if (primaries.Count > 0)
            {
                var data = new byte[WriteLedger.BlockBytes];
                random.Fill(data);
                var writer = primaries[random.Next(0, primaries.Count)];
                long block = random.Next(0, hotBlocks);
                cluster.Write(writer, block, data);
                if (cluster.AllowTwoPrimaries && primaries.Count == 2 && random.Chance(0.3))
                {
                    // The other Primary writes the same block at the same moment: the writes conflict.
                    var other = new byte[WriteLedger.BlockBytes];
                    random.Fill(other);
                    cluster.Write(cluster.Other(writer), block, other);
                }
            }
        }
        else if (roll < 580)
        {
            if (primaries.Count > 0)
            {
                cluster.Flush(primaries[random.Next(0, primaries.Count)]);
            }
        }
        else if (roll < 720)
        {
            NetworkFault(cluster, random, result);
        }
        else if (roll < 760)
        {
            DiskFault(cluster, node, random, hotBlocks, result);
        }
        else if (roll < 800)
        {
            CrashOrRestart(cluster, node, random, result);
        }
        else if (roll < 815)
        {
            ClockFault(cluster, node, random, result);
        }
        else if (roll < 900 && node.Up)
        {
            OperatorAction(op, node, random);
        }
        else if (cluster.AllowTwoPrimaries && node.Up && node.Replica.Role == Role.Secondary)
        {
            // Dual-primary: the cluster manager promotes a Secondary back, so both are Primary most of the time.
            op.Primary(node, force: false);
        }
    }

    private static void NetworkFault(ScaleCluster cluster, SimRandom random, ScaleResult result)
    {
        var network = cluster.Network;
        switch (random.Next(0, 5))
        {
            case 0:
                network.Partition("alpha", "beta");
                result.Fault("partition (symmetric)");
                cluster.Note("partition alpha <-> beta");
                break;
            case 1:
                bool alphaSide = random.Chance(0.5);
                network.Partition(alphaSide ? "alpha" : "beta", alphaSide ? "beta" : "alpha", oneWay: true);
                result.Fault("partition (one-way)");
                cluster.Note(alphaSide ? "partition alpha -> beta" : "partition beta -> alpha");
                break;
            case 2:
            case 3:
                network.HealAll();
                result.Fault("partition healed");
                cluster.Note("network healed");
                break;
            default:
                network.Options = Calm with
                {
                    MaxDelayMs = random.Next(1, 40),
                    LossProbability = random.Next(0, 3) * 0.05,
                    DuplicationProbability = random.Next(0, 3) * 0.05,
                    ReorderProbability = random.Next(0, 3) * 0.05,
                    ResetProbability = random.Next(0, 3) * 0.002,
                };
                result.Fault("network weather change (delay, loss, duplication, reordering, resets)");
                cluster.Note($"network {network.Options}");
                break;
        }
    }

    private static void DiskFault(ScaleCluster cluster, ScaleNode node, SimRandom random, int hotBlocks, ScaleResult result)
    {
        if (cluster.SlowDisks && random.Chance(0.5))
        {
            var sim = node.Sim; // a restart brings a disk of normal speed
            sim.DiskLatencyMaxMs = random.Next(20, 500);
            cluster.Scheduler.After(random.Next(100, 3000), () => sim.DiskLatencyMaxMs = SimReplicaNode.DefaultDiskLatencyMaxMs);
            result.Fault("slow disk");
            cluster.Note($"{node.Name}: disk slow, up to {sim.DiskLatencyMaxMs} ms a request");
            return;
        }
        if (random.Chance(0.5))
        {
            var disk = node.Disk;
            disk.FailWrites = true;
            cluster.Scheduler.After(random.Next(1, 200), () => disk.FailWrites = false);
            result.Fault("disk write errors");
            cluster.Note($"{node.Name}: disk write errors start");
        }
        else
        {
            node.Disk.AddLatentReadError(random.Next(0, hotBlocks) * (long)WriteLedger.BlockBytes);
            result.Fault("latent read error");
            cluster.Note($"{node.Name}: latent read error");
        }
    }

    private static void CrashOrRestart(ScaleCluster cluster, ScaleNode node, SimRandom random, ScaleResult result)
    {
        if (node.Up)
        {
            bool tear = random.Chance(0.5);
            result.Fault(tear ? "crash (unflushed writes torn)" : "crash (unflushed writes lost)");
            result.Fault("unflushed writes at crash", node.Disk.UnflushedWrites);
            cluster.Crash(node, tear);
        }
        else
        {
            node.Restart();
            result.Fault("restart");
            cluster.Note($"{node.Name}: restart, disk {node.Volume.Disk}, uuid {node.Volume.Ids.Current:X16}, flags {node.PersistedSuperblock.Flags}, oos {node.Volume.OutOfSyncBytes(node.PeerNodeId)}");
            cluster.AfterEvent();
        }
    }

    private static void ClockFault(ScaleCluster cluster, ScaleNode node, SimRandom random, ScaleResult result)
    {
        long now = node.Sim.NowMs;
        long t = cluster.Scheduler.NowMs;
        bool jump = random.Chance(0.5);
        if (!jump)
        {
            node.ClockRatePercent = random.Next(90, 111);
        }
        node.ClockOffsetMs = now - t * node.ClockRatePercent / 100 + (jump ? random.Next(100, 3000) : 0);
        result.Fault(jump ? "clock jump forward" : "clock drift change");
        cluster.Note($"{node.Name}: clock {(jump ? "jump" : "drift")}");
    }

    private static void OperatorAction(ScaleOperator op, ScaleNode node, SimRandom random)
    {
        switch (random.Next(0, 10))
        {
            case 0:
            case 1:
                // --force is for disasters (no UpToDate data reachable): only while the peer is not connected.
                op.Primary(node, force: random.Chance(0.2) && node.Replica.Links[node.PeerNodeId].State != ConnectionState.Connected);
                break;
            case 2:
            case 3:
                op.Secondary(node);
                break;
            case 4:
                op.Disconnect(node);
                break;
            case 5:
            case 6:
                op.Connect(node, discardMyData: random.Chance(0.3));
                break;
            case 7:
                op.Invalidate(node);
                break;
            case 8:
                op.Verify(node);
                break;
            default:
                op.Attach(node);
                break;
        }
    }

    /// <summary>Every fault healed, the nodes restarted and attached, split brain resolved: the pair must converge.</summary>
    private static void Heal(ScaleCluster cluster, ScaleOperator op, ScaleResult result)
    {
        cluster.Network.HealAll();
        cluster.Network.Options = Calm;
        foreach (var node in cluster.Nodes)
        {
            node.Disk.FailWrites = false;
            node.Disk.ClearLatentReadErrors();
            node.Sim.DiskLatencyMaxMs = SimReplicaNode.DefaultDiskLatencyMaxMs;
            if (!node.Up)
            {
                node.Restart();
                result.Fault("restart");
            }
        }
        cluster.RunUntil(cluster.Scheduler.NowMs + 500);
        for (int round = 0; round < 4 && !InSync(cluster); round++)
        {
            cluster.RunUntil(() => cluster.PendingWrites == 0 && cluster.PendingFlushes == 0, 30_000);
            foreach (var node in cluster.Nodes.Where(n => n.Volume.Disk == DiskState.Diskless))
            {
                if (op.Attach(node) == StateChangeResult.DataNotCurrent)
                {
                    // A diskless Primary whose data generation is gone with its peer's disk: the
                    // administrator demotes it, then its own disk attaches and is resynced.
                    op.Secondary(node);
                    op.Attach(node);
                }
            }
            // Two Primaries: without allow-two-primaries they never connect; with it, only a split brain
            // (after-sb-2pri disconnect, DRBD's default) keeps them apart, and beta is its victim.
            if (cluster.Alpha.Replica.Role == Role.Primary && cluster.Beta.Replica.Role == Role.Primary
                && (!cluster.AllowTwoPrimaries || cluster.Nodes.Any(n => n.Replica.Links[n.PeerNodeId].State == ConnectionState.StandAlone)))
            {
                op.Secondary(cluster.Beta);
            }
            // rr-conflict disconnect (DRBD's default) leaves a Primary that would be SyncTarget StandAlone:
            // the administrator demotes it and connects again, as DRBD's guide says.
            foreach (var node in cluster.Nodes.Where(n => n.Replica.Role == Role.Primary
                && n.Replica.Links[n.PeerNodeId].State == ConnectionState.StandAlone
                && n.Replica.Links[n.PeerNodeId].LastError?.Contains("rr-conflict", StringComparison.Ordinal) == true))
            {
                op.Secondary(node);
            }
            // Unrelated data (DRBD refuses it whatever --discard-my-data says) with a node that holds no
            // complete data (Inconsistent, it was a SyncTarget): DRBD's guide has the administrator
            // recreate that node's metadata, and a full sync follows.
            foreach (var node in cluster.Nodes.Where(n => n.Up && n.Replica.Role == Role.Secondary && n.Volume.Disk == DiskState.Inconsistent
                && n.Replica.Links[n.PeerNodeId].State == ConnectionState.StandAlone
                && n.Replica.Links[n.PeerNodeId].LastError?.Contains("Unrelated data", StringComparison.Ordinal) == true))
            {
                op.CreateMetadata(node);
            }
            var victim = cluster.Alpha.Replica.Role == Role.Primary ? cluster.Beta : cluster.Beta.Replica.Role == Role.Primary ? cluster.Alpha : cluster.Beta;
            foreach (var node in cluster.Nodes.Where(n => n.Replica.Links[n.PeerNodeId].State == ConnectionState.StandAlone))
            {
                op.Connect(node, discardMyData: node == victim);
            }
            if (round > 0 && cluster.Nodes.All(n => n.Replica.ReplicationOf(n.PeerNodeId, 0) == ReplicationState.Established
                && n.Volume.Disk is DiskState.Outdated or DiskState.Consistent))
            {
                // Still no UpToDate disk on either side after a round of healing (both came back
                // Outdated, say, after failing as Diskless Primaries): no side may be a sync source
                // until the administrator says whose data to keep. DRBD's guide: `primary --force`
                // there (the victim's peer), which overwrites the peer with a full sync; a Primary is
                // demoted first. Counted apart from the operator's own promotions.
                var keeper = victim == cluster.Alpha ? cluster.Beta : cluster.Alpha;
                foreach (var node in new[] { victim, keeper }.Where(n => n.Replica.Role == Role.Primary))
                {
                    cluster.RunUntil(() => cluster.PendingOn(node) == 0, 30_000);
                    op.Secondary(node);
                }
                op.Primary(keeper, force: true, done: forced =>
                {
                    string key = $"heal: primary --force {forced}";
                    op.Outcomes[key] = op.Outcomes.GetValueOrDefault(key) + 1;
                });
            }
            else if (cluster.Nodes.All(n => n.Replica.ReplicationOf(n.PeerNodeId, 0) == ReplicationState.Established)
                && cluster.Nodes.Any(n => n.Volume.OutOfSyncBytes(n.PeerNodeId) > 0))
            {
                // Blocks online verify found out of sync are only marked (DRBD 8.4's rule 40 finds
                // nothing to sync on reconnect): the operator invalidates the Secondary. With two
                // Primaries it first demotes the victim (`invalidate` is refused on a Primary).
                if (cluster.AllowTwoPrimaries && victim.Replica.Role == Role.Primary)
                {
                    cluster.RunUntil(() => cluster.PendingOn(victim) == 0, 30_000);
                    op.Secondary(victim);
                }
                op.Invalidate(victim);
            }
            cluster.RunUntil(() => InSync(cluster), 60_000);
        }
        if (!InSync(cluster))
        {
            throw new SimulationViolation("convergence", $"no convergence after healing: {States(cluster)}");
        }
        cluster.RunUntil(() => cluster.PendingWrites == 0 && cluster.PendingFlushes == 0 && InSync(cluster), 30_000);
        ConvergenceChecker.Check(cluster);
        result.AcknowledgedChecks += AckChecker.Check(cluster);
    }

    /// <summary>Both up and connected, Established, UpToDate, nothing out of sync either way.</summary>
    public static bool InSync(ScaleCluster cluster) => cluster.Nodes.All(n => n.Up
        && n.Replica.Links[n.PeerNodeId].State == ConnectionState.Connected
        && n.Replica.ReplicationOf(n.PeerNodeId, 0) == ReplicationState.Established
        && n.Volume.Disk == DiskState.UpToDate
        && n.Volume.OutOfSyncBytes(n.PeerNodeId) == 0);

    public static string States(ScaleCluster cluster) => string.Join("; ", cluster.Nodes.Select(n => n.Up
        ? $"{n.Name} {n.Replica.Role}/{n.Volume.Disk}/{n.Replica.Links[n.PeerNodeId].State}/{n.Replica.ReplicationOf(n.PeerNodeId, 0)} oos {n.Volume.OutOfSyncBytes(n.PeerNodeId)} B"
            + $" uuid {n.Volume.Ids.Current:X16} peer {n.Replica.PeerDiskOf(n.PeerNodeId, 0)} {n.Replica.Links[n.PeerNodeId].LastError}"
        : $"{n.Name} down"));
}

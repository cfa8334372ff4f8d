// Property: both nodes run the handshake on mirrored inputs and agree (source ⇔ target with the same
// bitmap/full kind, or both NoSync, or both Disconnect). Inputs come from a seeded simulation of
// reachable histories — promotions and writes while apart, crashes, resyncs that finish, are
// interrupted, lose P_SYNC_UUID or miss the finish — using the engine's own UUID operations, with
// random after-sb policies, rr-conflict, discard-my-data and RESOLVE_CONFLICTS holder at each connect.
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.SplitBrain.HandshakePair;

namespace Redundancy.Block.Engine.Tests.SplitBrain;

public class MirrorPropertyTests
{
    private static readonly string[] Pri0 = ["disconnect", "discard-younger-primary", "discard-older-primary", "discard-zero-changes",
        "discard-least-changes", "discard-local", "discard-remote", "discard-node-n0", "discard-node-n1"];
    private static readonly string[] Pri1 = ["disconnect", "consensus", "violently-as0p", "discard-secondary", "call-pri-lost-after-sb"];
    private static readonly string[] Pri2 = ["disconnect", "violently-as0p", "call-pri-lost-after-sb"];
    private static readonly string[] Rr = ["disconnect", "call-pri-lost", "violently", "retry-connect", "auto-discard"];

    private sealed class SimNode(string name)
    {
        public string Name { get; } = name;
        public UuidSet Uuids { get; set; } = new(GenerationIds.JustCreated, 0);
        public Role Role { get; set; } = Role.Secondary;
        public DiskState Disk { get; set; } = DiskState.Inconsistent;
        public bool Crashed { get; set; }
        public bool MissedWrites { get; set; }
        public long Bits { get; set; }

        public void NewCurrentUuid(Random random)
        {
            var ids = new GenerationIds(Uuids.Current, [Uuids.Bitmap], Uuids.History);
            Uuids = UuidSet.FromGenerationIds(ids.NewCurrentUuid(Next64(random), Role == Role.Primary, [true]), 0);
        }

        public void SetRole(Role role)
        {
            Role = role;
            Uuids = Uuids.WithCurrent(role == Role.Primary ? Uuids.Current | 1 : Uuids.Current & ~1UL);
        }
    }

    private static ulong Next64(Random random) => unchecked((ulong)random.NextInt64(long.MinValue, long.MaxValue));

    private sealed class Stats
    {
        public HashSet<int> Rules { get; } = [];
        public HashSet<(HandshakeAction, bool)> Actions { get; } = [];
        public HashSet<SplitBrainResolution> Resolutions { get; } = [];
        public HashSet<DisconnectReason> Reasons { get; } = [];
        public int Handshakes { get; set; }
        public int DecidedByMissedWrites { get; set; }
    }

    [Fact]
    public void Both_sides_reach_mirrored_conclusions_over_generated_histories()
    {
        var stats = new Stats();
        for (int seed = 1; seed <= 400; seed++)
        {
            RunHistory(new Random(seed), stats);
        }

        Assert.True(stats.Handshakes > 5000, $"only {stats.Handshakes} handshakes");
        var wanted = new HashSet<int> { 20, 30, 34, 35, 40, 41, 50, 51, 60, 70, 71, 80, 90, 100 };
        Assert.True(wanted.IsSubsetOf(stats.Rules), "rules never reached: " + string.Join(' ', wanted.Except(stats.Rules)));
        Assert.Equal(6, stats.Actions.Count); // NoSync, Source/Target × bitmap/full, Disconnect
        Assert.Equal(4, stats.Resolutions.Count);
        Assert.Contains(DisconnectReason.InconsistentSyncSource, stats.Reasons);
        Assert.Contains(DisconnectReason.PrimarySyncTarget, stats.Reasons);
        Assert.True(stats.DecidedByMissedWrites > 10, $"a disk that missed writes decided only {stats.DecidedByMissedWrites} handshakes");
    }

    private static void RunHistory(Random random, Stats stats)
    {
        SimNode[] nodes = [new SimNode("n0"), new SimNode("n1")];
        SimNode first = nodes[random.Next(2)];
        first.SetRole(Role.Primary); // primary --force on fresh metadata
        first.NewCurrentUuid(random);
        first.Disk = DiskState.UpToDate;
        if (random.Next(2) == 0)
        {
            first.SetRole(Role.Secondary);
        }

        for (int step = 0; step < 20; step++)
        {
            ApartStep(random, nodes);
            Connect(random, nodes, stats);
        }
    }

    /// <summary>Things that happen while the nodes are disconnected.</summary>
    private static void ApartStep(Random random, SimNode[] nodes)
    {
        foreach (SimNode node in nodes)
        {
            switch (random.Next(12))
            {
                case 5 when node.Role == Role.Secondary:
                    node.Disk = DiskState.Inconsistent; // `invalidate` while apart
                    break;
                case 0 when node.Role == Role.Secondary && node.Disk == DiskState.UpToDate:
                    node.SetRole(Role.Primary);
                    node.NewCurrentUuid(random); // promotion without the peer: new data generation
                    break;
                case 1 or 2 when node.Role == Role.Primary:
                    node.Bits += random.Next(1, 50); // writes the peer misses
                    break;
                case 3 when node.Role == Role.Primary:
                    node.SetRole(Role.Secondary);
                    break;
                case 4 when node.Role == Role.Primary:
                    node.Crashed = true; // crash and restart as Secondary
                    node.Role = Role.Secondary;
                    break;
                case 6 when node.Disk > DiskState.Inconsistent:
                    node.MissedWrites = true; // its disk failed under a write and was attached again
                    node.Bits++;
                    break;
            }
        }
    }

    private static void Connect(Random random, SimNode[] nodes, Stats stats)
    {
        var policies = Policies(Pri0[random.Next(Pri0.Length)], Pri1[random.Next(Pri1.Length)], Pri2[random.Next(Pri2.Length)],
            Rr[random.Next(Rr.Length)], alwaysAsbp: random.Next(3) == 0);
        int discard = random.Next(5); // 0: n0 discards its data, 1: n1, 4: both, else none
        HandshakeSide Side(int i) => new(nodes[i].Uuids, nodes[i].Crashed ? MetadataFlags.CrashedPrimary : MetadataFlags.None,
            nodes[i].Role, nodes[i].Disk, nodes[i].Name, nodes[i].Bits, DiscardMyData: discard == i || discard == 4, MissedWrites: nodes[i].MissedWrites);

        var (a, b) = Run(Side(0), Side(1), policies, aResolves: random.Next(2) == 0);
        AssertMirrored(a, b);
        stats.Handshakes++;
        stats.DecidedByMissedWrites += a.Log.Any(l => l.Contains("missed writes")) ? 1 : 0;
        stats.Rules.Add(a.Comparison.Rule);
        stats.Actions.Add((a.Action, a.FullSync));
        stats.Resolutions.Add(a.SplitBrain);
        stats.Reasons.Add(a.Reason);
        stats.Reasons.Add(b.Reason);
        Apply(random, nodes, a, b);
    }

    private static void Apply(Random random, SimNode[] nodes, HandshakeOutcome a, HandshakeOutcome b)
    {
        if (a.Action == HandshakeAction.Disconnect)
        {
            return;
        }

        UuidSet[] atHandshake = [a.Comparison.SelfFixup ?? nodes[0].Uuids, b.Comparison.SelfFixup ?? nodes[1].Uuids];
        nodes[0].Uuids = atHandshake[0];
        nodes[1].Uuids = atHandshake[1];
        foreach (var (node, outcome) in new[] { (nodes[0], a), (nodes[1], b) })
        {
            if (outcome.Demote)
            {
                node.SetRole(Role.Secondary);
            }
        }

        if (a.Action == HandshakeAction.NoSync)
        {
            Connected(random, nodes);
            return;
        }

        int s = a.Action == HandshakeAction.SyncSource ? 0 : 1;
        SimNode source = nodes[s], target = nodes[1 - s];
        (source.Uuids, ulong sync) = ResyncUuids.GenAndSendSyncUuid(source.Uuids, Next64(random));
        int fate = random.Next(8);
        if (fate == 0)
        {
            return; // P_SYNC_UUID lost, link drops
        }

        target.Uuids = ResyncUuids.ReceiveSyncUuid(target.Uuids, sync, target.Role == Role.Primary);
        target.Disk = DiskState.Inconsistent;
        target.Bits = source.Bits = Math.Max(source.Bits, target.Bits) + 1;
        if (fate == 1)
        {
            return; // interrupted mid-resync
        }

        target.Uuids = ResyncUuids.ResyncFinishedTarget(target.Uuids, atHandshake[s], target.Role == Role.Primary);
        target.Disk = DiskState.UpToDate;
        target.Bits = 0;
        target.Crashed = false;
        target.MissedWrites = false;
        if (fate == 2)
        {
            return; // the source missed the resync-finished event
        }

        source.Uuids = ResyncUuids.ResyncFinishedSource(source.Uuids);
        source.MissedWrites = false;
        Connected(random, nodes);
    }

    /// <summary>In sync and connected; then the link drops, a Primary makes a new current UUID.</summary>
    private static void Connected(Random random, SimNode[] nodes)
    {
        foreach (SimNode node in nodes)
        {
            node.Bits = 0;
            node.Crashed = false;
        }

        if (nodes[0].Role == Role.Primary && nodes[1].Role == Role.Primary)
        {
            nodes[1].SetRole(Role.Secondary); // no allow-two-primaries while connected
        }

        if (random.Next(4) == 0)
        {
            // Both lose power together: no UUID rotation; a crashed Primary keeps its flag. Sometimes the
            // survivor was promoted with I/O frozen by fencing (no new current UUID either): rule 41.
            foreach (SimNode node in nodes.Where(n => n.Role == Role.Primary))
            {
                node.Crashed = true;
                node.Role = Role.Secondary;
            }

            SimNode other = nodes[random.Next(2)];
            if (!other.Crashed && random.Next(2) == 0)
            {
                other.SetRole(Role.Primary);
            }

            return;
        }

        foreach (SimNode node in nodes)
        {
            if (node.Role == Role.Primary && node.Disk == DiskState.UpToDate)
            {
                node.NewCurrentUuid(random);
            }
        }
    }
}

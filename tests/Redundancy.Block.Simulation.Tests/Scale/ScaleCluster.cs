using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// Two nodes of one resource (alpha node-id 0, beta node-id 1) over the simulated network, with
/// the application's writes and flushes recorded in the <see cref="WriteLedger"/>. Time advances
/// one event at a time; after each the cheap checkers run (state transitions, two Primaries).
/// </summary>
public sealed class ScaleCluster
{
    private const ulong InitialUuid = 0x5CA1_E000_0000_0000;

    /// <summary>A pair from <paramref name="seed"/> over a network starting as <paramref name="network"/>; with
    /// <paramref name="dualPrimary"/> the resource has `net { allow-two-primaries yes; }` (both nodes may be Primary);
    /// <paramref name="protocol"/> is the resource's replication protocol (two Primaries need C, as in DRBD).</summary>
    public ScaleCluster(int seed, NetworkOptions network, bool dualPrimary = false, ReplicationProtocol protocol = ReplicationProtocol.C)
    {
        if (dualPrimary && protocol != ReplicationProtocol.C)
        {
            throw new ArgumentException("allow-two-primaries needs protocol C", nameof(protocol));
        }
        Random = new SimRandom(seed);
        Network = new SimulatedNetwork(Scheduler, Random.Fork(), network);
        string twoPrimaries = dualPrimary ? " allow-two-primaries yes;" : string.Empty;
        var resource = ConfigParser.ParseText($$"""
            resource r0 {
              net { protocol {{protocol}}; verify-alg sha256; connect-int 1; ping-int 1; cram-hmac-alg sha256; shared-secret "sim";{{twoPrimaries}} }
              on alpha { node-id 0; address 127.0.0.1:7788; volume 0 { disk /dev/null; meta-disk internal; } }
              on beta  { node-id 1; address 127.0.0.1:7789; volume 0 { disk /dev/null; meta-disk internal; } }
            }
            """, "scale.conf").Resources.Single();
        AllowTwoPrimaries = resource.AllowTwoPrimaries();
        Ledger = new WriteLedger { ConcurrentWriters = AllowTwoPrimaries, Asynchronous = protocol != ReplicationProtocol.C };
        Ledger.Root(InitialUuid);
        Alpha = new ScaleNode("alpha", 0, "beta", 1, resource, InitialUuid, Scheduler, Network, Random.Fork());
        Beta = new ScaleNode("beta", 1, "alpha", 0, resource, InitialUuid, Scheduler, Network, Random.Fork());
        foreach (var node in Nodes)
        {
            node.Logged = (n, line) => Note($"{n.Name}| {line}");
            node.GenerationSeen = (n, uuid) => Ledger.ObserveGeneration(uuid, block => n.Block(block).ToArray());
        }
        Scheduler.After(100, Tick);
    }

    public EventScheduler Scheduler { get; } = new();

    public SimRandom Random { get; }

    public SimulatedNetwork Network { get; }

    public WriteLedger Ledger { get; }

    /// <summary>The resource's `allow-two-primaries` (both nodes may be Primary at once, writing concurrently).</summary>
    public bool AllowTwoPrimaries { get; }

    /// <summary>The run draws slow-disk faults too (scripts/sim --slow-disks).</summary>
    public bool SlowDisks { get; init; }

    public TransitionChecker Transitions { get; } = new();

    public ScaleNode Alpha { get; }

    public ScaleNode Beta { get; }

    public IReadOnlyList<ScaleNode> Nodes => [Alpha, Beta];

    /// <summary>Application writes issued on running nodes and not yet completed.</summary>
    public int PendingWrites => Nodes.Where(n => n.Up).Sum(n => pendingWrites.GetValueOrDefault(n.Sim));

    public int PendingFlushes => Nodes.Where(n => n.Up).Sum(n => pendingFlushes.GetValueOrDefault(n.Sim));

    /// <summary>Writes in flight on <paramref name="node"/> (the application holds the device open meanwhile).</summary>
    public int PendingOn(ScaleNode node) => pendingWrites.GetValueOrDefault(node.Sim) + pendingFlushes.GetValueOrDefault(node.Sim);

    /// <summary>A timeline of steps and outcomes, kept only when replaying one seed (it costs time).</summary>
    public List<string>? Trace { get; set; }

    public void Note(string what) => Trace?.Add($"{Scheduler.NowMs,7} ms  {what}");

    public ScaleNode Other(ScaleNode node) => node == Alpha ? Beta : Alpha;

    /// <summary>Runs events until <paramref name="untilMs"/>, checking after each.</summary>
    public void RunUntil(long untilMs)
    {
        while (Scheduler.NextEventMs is long next && next <= untilMs)
        {
            Scheduler.Step();
            AfterEvent();
        }
        Scheduler.RunUntil(untilMs);
    }

    /// <summary>Runs until <paramref name="condition"/> holds or <paramref name="maxMs"/> pass; whether it held.</summary>
    public bool RunUntil(Func<bool> condition, long maxMs)
    {
        long deadline = Scheduler.NowMs + maxMs;
        while (!condition())
        {
            if (Scheduler.NextEventMs is not long next || next > deadline)
            {
                Scheduler.RunUntil(deadline);
                return condition();
            }
            Scheduler.Step();
            AfterEvent();
        }
        return true;
    }

    /// <summary>The cheap checkers, and the state machine following a disk the replica lost.</summary>
    public void AfterEvent()
    {
        foreach (var node in Nodes)
        {
            if (node.Up)
            {
                if (node.FollowDiskFailure())
                {
                    Ledger.Lost(node.Name, flushedSurvive: false, crashedPrimary: false, HeldElsewhere, (_, _) => false);
                }
                Transitions.Observe(node);
            }
        }
        PrimaryChecker.Check(this);
        if (orphanedWrites.Count > 0)
        {
            NoteOrphansPeerDisconnected();
        }
    }

    /// <summary>An application write of one 4 KiB block on <paramref name="node"/>.</summary>
    public void Write(ScaleNode node, long block, byte[] data)
    {
        var record = Ledger.Issue(node.Name, block, data);
        Note($"{node.Name}: write #{record.Sequence} block {block}");
        var incarnation = node.Sim;
        int diskFailuresAtIssue = node.DiskFailures;
        int peerDiskFailuresAtIssue = Other(node).DiskFailures;
        bool disklessAtIssue = !node.Volume.HasLocalData;
        pendingWrites[incarnation] = pendingWrites.GetValueOrDefault(incarnation) + 1;
        incarnation.WriteTracked(0, block * WriteLedger.BlockBytes, data, (ok, _) =>
        {
            pendingWrites[incarnation]--;
            ulong generation = DataGeneration(node, disklessAtIssue);
            // The disk failed while the write was in flight (it may be attached again by now, with what
            // the failure left on it): the write's local copy went to the disk that failed.
            bool failedInFlight = node.DiskFailures != diskFailuresAtIssue;
            if (ok && (!node.Volume.HasLocalData || failedInFlight))
            {
                CheckDisklessAcknowledgement(node, record, failedInFlight, peerFailedInFlight: Other(node).DiskFailures != peerDiskFailuresAtIssue);
            }
            Ledger.Complete(record, ok, generation);
            Note($"{node.Name}: write #{record.Sequence} {(ok ? "acknowledged" : "failed")} in generation {generation:X16}");
        });
    }

    /// <summary>
    /// The generation of the data a write on <paramref name="node"/> went to: its own disk's, or for a
    /// Primary without a disk, its peer's (the data it reads and writes lives there). A write issued
    /// while <paramref name="disklessAtIssue"/> went to the peer alone even when a disk was attached
    /// before it completed (that disk negotiates with the peer and gets the write by resync, or it
    /// does not hold the peer's data at all: seed 24110 --dual-primary --slow-disks, where the
    /// attached disk met the peer in a split brain).
    /// </summary>
    public ulong DataGeneration(ScaleNode node, bool disklessAtIssue) =>
        (node.Volume.HasLocalData && !disklessAtIssue) || !Other(node).Up ? node.Volume.Ids.Current : Other(node).Volume.Ids.Current;

    /// <summary>An application flush on <paramref name="node"/>: when it succeeds, the writes acknowledged before it are durable.</summary>
    public void Flush(ScaleNode node, Action<bool>? done = null)
    {
        var covers = Ledger.FlushCovers(node.Name);
        Note($"{node.Name}: flush (covers {string.Join(",", covers.Select(r => r.Sequence))})");
        var incarnation = node.Sim;
        pendingFlushes[incarnation] = pendingFlushes.GetValueOrDefault(incarnation) + 1;
        incarnation.Flush(ok =>
        {
            pendingFlushes[incarnation]--;
            if (ok)
            {
                covers.ForEach(r => r.Durable = true);
            }
            Note($"{node.Name}: flush {(ok ? "done" : "failed")}");
            done?.Invoke(ok);
        });
    }

    /// <summary>Power loss on <paramref name="node"/>; the ledger forgives unflushed writes no live node still holds.</summary>
    public void Crash(ScaleNode node, bool tear)
    {
        Note($"{node.Name}: CRASH{(tear ? " (torn)" : string.Empty)}, {node.Disk.UnflushedWrites} unflushed writes");
        // DRBD's rule 40 resyncs the activity log from the disk whose metadata says "crashed primary":
        // a Primary, or one demoted while its disk was gone (the demotion never reached that disk), or
        // one demoted before its peer confirmed its last writes (the primary indicator stays until then).
        // The metadata says so with MDF_CRASHED_PRIMARY, or with MDF_PRIMARY_IND, which the next attach
        // of a Secondary turns into crashed-primary (DRBD: drbdmeta applies the AL when MDF_PRIMARY_IND
        // is set, need_to_apply_al; the attach takes CRASHED_PRIMARY from the metadata, drbd_nl.c).
        bool wasPrimary = node.Replica.Role == Engine.States.Role.Primary
            || (node.PersistedSuperblock.Flags & (Engine.Metadata.MetadataFlags.CrashedPrimary | Engine.Metadata.MetadataFlags.PrimaryInd)) != 0;
        foreach (var record in Ledger.InFlight(Other(node).Name))
        {
            record.OnPeerAtCrash |= Ledger.SameOrLater(record).Any(v => node.Block(record.Block).SequenceEqual(v));
        }
        if (Ledger.ConcurrentWriters)
        {
            Ledger.InFlight(node.Name).ForEach(r => orphanedWrites[r] = null);
        }
        node.Crash(tear);
        Ledger.Lost(node.Name, flushedSurvive: true, wasPrimary, HeldElsewhere, (block, data) => node.Block(block).SequenceEqual(data),
            crashedGeneration: node.Volume.Ids.Current);
    }

    /// <summary>
    /// Writes whose writer crashed with them in flight never complete, but a copy sent before the crash
    /// may still land on the peer while its connection to the writer lasts. The end of that connection
    /// is noted after every event (<see cref="AfterEvent"/>); between steps, once the peer's disk had
    /// time to finish a write it received (the simulated disk's latency) and none of the writer's
    /// writes is still on its way to its disk (held behind a barrier of the ended connection), they
    /// end for the ledger.
    /// </summary>
    public void EndOrphanedWrites()
    {
        var ended = orphanedWrites.Where(o => o.Value is long dropped && Scheduler.NowMs - dropped > OrphanGraceMs && !PeerStillWriting(o.Key)).Select(o => o.Key).ToList();
        Ledger.End(ended);
        ended.ForEach(r => orphanedWrites.Remove(r));
    }

    private bool PeerStillWriting(WriteRecord record)
    {
        var peer = Nodes.Single(n => n.Name != record.Writer);
        return peer.Up && peer.Replica.PeerWritesPending(peer.PeerNodeId);
    }

    private void NoteOrphansPeerDisconnected()
    {
        foreach (var record in orphanedWrites.Where(o => o.Value is null).Select(o => o.Key).ToList())
        {
            var peer = Nodes.Single(n => n.Name != record.Writer);
            if (!peer.Up || peer.Replica.Links[peer.PeerNodeId].State != Engine.States.ConnectionState.Connected)
            {
                orphanedWrites[record] = Scheduler.NowMs;
            }
        }
    }

    /// <summary>Longer than a simulated disk write takes (SimReplicaNode.DiskLatencyMaxMs).</summary>
    private const long OrphanGraceMs = 10;

    /// <summary>Writes in flight at their writer's crash, with when the peer's connection to it was seen gone.</summary>
    private readonly Dictionary<WriteRecord, long?> orphanedWrites = [];

    /// <summary>Whether a live node other than <paramref name="except"/>, with good data, holds <paramref name="data"/> in <paramref name="block"/>.</summary>
    private bool HeldElsewhere(string except, long block, byte[] data) => Nodes.Any(n => n.Name != except && n.Up
        && n.Volume.Disk is Engine.States.DiskState.UpToDate or Engine.States.DiskState.Consistent
        && n.Block(block).SequenceEqual(data));

    /// <summary>
    /// A write acknowledged on a node whose disk has failed since it was issued: it (or a write issued
    /// after it) must be on the peer, or else it reached the failed disk before it failed and the peer
    /// never confirmed it (a partition and a disk failure at once): its only copy is gone with that
    /// disk, which no replication can prevent, so it is forgiven. DRBD acknowledges such a write too
    /// (drbd_req_complete: a write succeeds when the local disk or a peer has it, RQ_LOCAL_OK or
    /// RQ_NET_OK; the local write succeeded, the connection then dropped) and promises nothing of
    /// a failed disk's data, even when that disk is attached again (it comes back Outdated at best).
    /// The peer may have crashed after it wrote and acknowledged it, its acknowledgement arriving after
    /// the crash (in flight on the network): the peer's disk then keeps what the crash left of it. If
    /// the crash took it (the write was in the peer's disk cache at the crash, never flushed: the
    /// flush comes with the peer's next barrier, DRBD's drbd_flush_after_epoch in receive_Barrier, and a WriteAck
    /// means written, not flushed), it is forgiven as any unflushed write whose every copy a crash took
    /// (the same rule <see cref="Crash"/> applies to writes acknowledged before the crash).
    /// On neither disk otherwise, it was acknowledged without being written anywhere.
    /// <para>With two Primaries the peer may have answered the write P_SUPERSEDED while its own
    /// overlapping write is still in flight (DRBD 8.4 handle_write_conflicts: the resolve-conflicts
    /// node's write covers the peer's, which completes without being stored; the answer goes out at
    /// once, e_send_superseded, before that node's own write reaches its disk). When neither disk holds
    /// it while such a peer write is still in flight, the write is not judged here but stays required, and <see cref="AckChecker"/>
    /// checks the peer's disk for it (or the concurrent write that won) from the next step on, while
    /// the ledger forgives it only as any write (every copy lost with a failed disk or a crash). When
    /// the peer's disk failed under its superseding write (after this write was issued), the block is
    /// gone with that second failed disk, as in the two-failed-disks case above: forgiven.</para>
    /// </summary>
    private void CheckDisklessAcknowledgement(ScaleNode node, WriteRecord record, bool failedInFlight, bool peerFailedInFlight)
    {
        var peer = Other(node);
        var versions = Ledger.SameOrLater(record);
        if (versions.Any(v => peer.Block(record.Block).SequenceEqual(v)))
        {
            if (!peer.Volume.HasLocalData)
            {
                // The peer wrote it and then lost its own disk too: two failed disks, no copy left.
                Ledger.Forgive(record);
            }
            else if (failedInFlight && peer.Volume.Disk != Engine.States.DiskState.UpToDate)
            {
                // This node's disk, the only UpToDate one, failed under the write, and only an
                // Inconsistent peer (a SyncTarget) has it. DRBD completes it (the peer's ack is net
                // OK) but keeps no guarantee for it: without an UpToDate disk nothing is current
                // (drbd_data_accessible is false, further I/O fails), and when the failed disk
                // returns its data (Consistent at best) is the sync source over the Inconsistent
                // peer ("Becoming sync source due to disk states"), overwriting the write there.
                Ledger.Forgive(record);
            }
            return;
        }
        if (Ledger.Asynchronous)
        {
            // Protocol A or B: acknowledged once sent (A) or received (B), not once on the peer's disk
            // (DRBD's mod_rq_state for protocol A: "pretend it was successfully written on the peer").
            // Without a disk here nothing else holds it: no guarantee is left to check.
            Ledger.Forgive(record);
            return;
        }
        if (!versions.Any(v => node.Block(record.Block).SequenceEqual(v)) && !record.OnPeerAtCrash)
        {
            var superseding = Ledger.ConcurrentWith(record).Where(r => r.Writer == peer.Name).ToList();
            if (superseding.Any(r => r.InFlight))
            {
                return; // superseded by the peer's write still in flight: required, AckChecker judges it
            }
            if (superseding.Count > 0 && peerFailedInFlight && !peer.Volume.HasLocalData)
            {
                Ledger.Forgive(record); // superseded, and the peer's disk failed under the superseding write
                return;
            }
            throw new SimulationViolation("acknowledged-write", $"{node.Name} acknowledged write #{record.Sequence} (block {record.Block}) without a disk, and neither disk holds it");
        }
        Ledger.Forgive(record);
    }

    private readonly Dictionary<Replication.SimReplicaNode, int> pendingWrites = [];
    private readonly Dictionary<Replication.SimReplicaNode, int> pendingFlushes = [];

    private void Tick()
    {
        foreach (var node in Nodes.Where(n => n.Up))
        {
            node.Replica.Tick(node.Sim.NowMs);
            node.WriteOutBitmap();
        }
        Scheduler.After(100, Tick);
        AfterEvent();
    }
}

using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// Seeds of the simulation at scale that found engine bugs, replayed exactly: each failed before
/// its fix (the comment names the checker that fired) and must pass from then on.
/// </summary>
public class ScaleRegressionTests
{
    [Theory]
    // state-transition: an Outdated disk the handshake picked as the newest became SyncSource and stayed Outdated.
    [InlineData(1)]
    [InlineData(140)]
    [InlineData(151)]
    // state-transition: a verify went on (VerifyS/VerifyT) after this node's or the peer's disk failed.
    [InlineData(26)]
    [InlineData(51)]
    [InlineData(69)]
    [InlineData(130)]
    // two-primaries: both nodes Primary and connected — a promotion while the peer's was in flight,
    // or a handshake between two Primaries (promotion is now a cluster-wide state change).
    [InlineData(57)]
    [InlineData(71)]
    [InlineData(111)]
    [InlineData(303)]
    [InlineData(405)]
    // bitmap-coverage: the Secondary's disk failed holding acknowledged, unflushed writes; after its crash they were
    // gone and the Primary had not marked them (they were in its transfer log, not yet BarrierAcked).
    [InlineData(879)]
    [InlineData(1927)]
    [InlineData(3136)]
    [InlineData(3826)]
    [InlineData(5088)]
    [InlineData(5127)]
    [InlineData(7724)]
    [InlineData(8451)]
    [InlineData(9715)]
    // byte-identical (same cause): the lost, unmarked blocks survived the resync.
    [InlineData(3255)]
    [InlineData(4361)]
    [InlineData(8249)]
    // bitmap-coverage: a promotion's superblock write failed (disk write errors) and the node went on as
    // Primary without the primary indicator on disk; after its crash the activity log was not applied.
    // A failed metadata write now fails the disk (on-io-error), in the simulated host as in DRBD.
    [InlineData(2333)]
    [InlineData(5603)]
    // convergence: both disks attached at once while connected; each handshake saw the other Negotiating,
    // and the late upgrade only followed an UpToDate peer: both stayed Consistent on the same generation.
    [InlineData(5819)]
    // state-transition (sync-source-without-disk): the disk failed between this node's state
    // going out and the handshake's decision, which then started a resync as SyncSource on it.
    [InlineData(8)]
    [InlineData(1309)]
    [InlineData(2213)]
    [InlineData(2574)]
    // byte-identical: the same disk failure during the handshake; the peer never heard of it (the state
    // change came before the connection counted as established) and did not record the writes it got.
    [InlineData(4230)]
    // acknowledged-write, convergence: `invalidate` discarded the disk at once, while the peer's copy was
    // already gone unseen (its disk had failed across a partition, or it had invalidated itself too).
    [InlineData(7265)]
    [InlineData(8674)]
    // byte-identical: the source cleared bits on RsWriteAcks of resync writes still in the target's disk
    // cache; the target crashed, and the bits its bitmap exchange had set were never written out.
    [InlineData(7399)]
    // convergence (unrelated data after an interrupted sync): the source's disk failed as it wrote
    // its sync UUID; the target had taken that UUID as current, so the next handshake found unrelated data.
    [InlineData(114)]
    [InlineData(132)]
    [InlineData(235)]
    [InlineData(383)]
    [InlineData(394)]
    [InlineData(1368)]
    [InlineData(1375)]
    [InlineData(1445)]
    [InlineData(2427)]
    // (the same, after a split brain resolved by rule 90: only the sync UUID relates the two, it must stay)
    [InlineData(1840)]
    // convergence: a SyncSource missed the end of its resync and kept the sync UUID as bitmap UUID (its
    // next new current UUID went to the history); the target rotated it into its history; both then
    // wrote apart. The only shared generation was one side's bitmap UUID in the other's history, which
    // rule 100 did not look at: "unrelated data" (StandAlone for good) instead of a split brain.
    [InlineData(669)]
    [InlineData(1602)]
    [InlineData(2336)]
    [InlineData(2452)]
    [InlineData(2861)]
    [InlineData(3158)]
    [InlineData(3725)]
    [InlineData(4086)]
    [InlineData(4328)]
    [InlineData(4959)]
    [InlineData(5724)]
    [InlineData(7130)]
    [InlineData(7509)]
    [InlineData(7751)]
    [InlineData(8364)]
    // convergence: a split brain resolved by rule 90, then the source's disk failed under its sync-UUID
    // write; the target kept the sync UUID, which the source never persisted: unrelated data. The target
    // now goes back to its own UUIDs here too (rule 90 or, with the bitmap UUID as ancestor, rule 100).
    [InlineData(10892)]
    // convergence: a diskless Primary attached a disk older than the data it served (DRBD refuses:
    // ERR_DATA_NOT_CURRENT), or kept such a disk Consistent after the peer went away mid-negotiation, and
    // then refused as Primary (rr-conflict) to be SyncTarget of the newer data; a Consistent disk with
    // the generation a diskless Primary serves was not taken as UpToDate (DRBD 9 does).
    [InlineData(18971)]
    [InlineData(19945)]
    [InlineData(29297)]
    // acknowledged-write: the Primary granted the Secondary's invalidate (WFBitMapS) and lost its disk before
    // the Secondary heard of it; still counting that copy UpToDate, it acknowledged writes and a flush that
    // only the now Inconsistent peer had, and its returning disk became sync source over them.
    [InlineData(10524)]
    [InlineData(18820)]
    // byte-identical: a Primary promoted while Diskless attached its disk without the primary indicator
    // on it; it crashed with unflushed writes and came back without "crashed primary": rule 40 found
    // nothing to resync, and the write its peer held stayed on one side only.
    [InlineData(13460)]
    // bitmap-coverage: the Secondary's disk failed under the last write of an epoch and was detached; the
    // barrier's flush then reached no disk, yet the epoch was BarrierAcked before the Primary heard of the
    // failure, so it forgot writes that were only in the failed disk's cache (they now get NegAcks first).
    [InlineData(19269)]
    // bitmap-coverage, byte-identical: the Primary demoted before the Secondary had BarrierAcked its last write
    // (a partition held the barrier, or the Secondary had crashed unnoticed), then crashed: a clean demotion,
    // so no activity log was applied, and the transfer log that marked the write was gone; the Secondary's
    // crash took the write from its disk cache. The primary indicator now stays until the peer confirms.
    [InlineData(17561)]
    [InlineData(28546)]
    [InlineData(12719)]
    [InlineData(17541)]
    // convergence: the source's disk failed under the write of its sync UUID during a full sync (rule 60/80,
    // so going back to the target's old UUIDs would not help); the target had taken it as current: unrelated
    // data. Rules 52/72 relate the two (target current = source bitmap + offset): a full sync again.
    [InlineData(51387)]
    [InlineData(59427)]
    // acknowledged-write: the same demotion with an unacknowledged barrier, but the Secondary crashed, losing the
    // write; the demoted node marked it in the bitmap when the connection went, yet equal generations (a Secondary
    // starts none) made rule 40 drop that bit against the restarted, Consistent peer: the bit holder is now SyncSource.
    [InlineData(53883)]
    // convergence: a Diskless Primary attached its disk after its P_STATE (Diskless) had gone out but before the
    // handshake's decision: not yet connected, the attach negotiated with nobody, the peer kept taking it for
    // Diskless and neither resynced. The decision now runs the attach-while-connected negotiation for such a disk.
    [InlineData(56912)]
    // acknowledged-write: the Secondary lost the Primary across a partition, then crashed, losing a write that
    // was acknowledged but not flushed on its side (the Primary's flush completed there alone); restarted, it
    // connected to the Primary while that one was Diskless. When the Primary attached its disk again (crashed
    // primary), the Secondary counted that data-less connection as having survived the Primary (rule 42) and
    // became sync source over the write. Only a connection that compared data on both sides counts now.
    [InlineData(31022)]
    public void Seed_that_found_an_engine_bug_passes(int seed)
    {
        var result = ScaleRun.Run(seed);
        Assert.True(result.Failure is null, $"seed {seed}: {result.Failure}\n{result.Logs}");
        Assert.True(result.WritesAcknowledged > 0, $"seed {seed} acknowledged no write");
    }

    /// <summary>
    /// Seeds where a checker demanded more than DRBD promises (a double fault): each failed before
    /// the checker was corrected (the comment says where DRBD gives no guarantee) and must pass.
    /// </summary>
    [Theory]
    // acknowledged-write: the Primary's disk failed (and was attached again) while a write whose local
    // copy had landed was in flight to a partitioned peer; the connection dropped and the write
    // completed (DRBD: local OK or net OK), its only copy on the failed disk.
    [InlineData(1330)]
    [InlineData(2930)]
    [InlineData(9346)]
    // acknowledged-write: the Primary's disk failed, it was demoted while Diskless (its metadata kept
    // "crashed primary"), then crashed; the unflushed write it held went with the crash, and rule 40
    // resynced from that disk over the peer's copy, as DRBD does for a crashed primary.
    [InlineData(6024)]
    // (the same, where no restart had yet turned the disk's primary indicator into "crashed primary":
    // the metadata still said MDF_PRIMARY_IND, which attach turns into crashed-primary all the same)
    [InlineData(10129)]
    [InlineData(16818)]
    [InlineData(17436)]
    [InlineData(24152)]
    public void Seed_of_a_double_fault_passes(int seed)
    {
        var result = ScaleRun.Run(seed);
        Assert.True(result.Failure is null, $"seed {seed}: {result.Failure}\n{result.Logs}");
        Assert.True(result.WritesForgiven > 0, $"seed {seed} forgave no write: the double fault is gone from it");
    }

    /// <summary>
    /// Seeds that lost an acknowledged write the way DRBD 8.4 does (the checker forgave it as a double
    /// fault) and keep it since DRBD 9's "reconnected" rule (42) makes the survivor the sync source.
    /// 3799: the Primary's disk failed under a write that only its peer then had, and the returning
    /// disk, crashed-primary, was the sync source over it.
    /// </summary>
    [Theory]
    [InlineData(3799)]
    public void Seed_where_the_reconnected_survivor_keeps_a_write_passes_and_loses_nothing(int seed)
    {
        var result = ScaleRun.Run(seed);
        Assert.True(result.Failure is null, $"seed {seed}: {result.Failure}\n{result.Logs}");
        Assert.True(result.WritesAcknowledged > 0, $"seed {seed} acknowledged no write");
        Assert.Equal(0, result.WritesForgiven);
    }

    /// <summary>
    /// Seeds where the acknowledged-write checker's model of a generation's start was too narrow: a
    /// write the peer had sent before the generation started (received, not yet on the disk) landed
    /// after it. Each failed before the model allowed that, and must pass.
    /// </summary>
    [Theory]
    [InlineData(3717)]
    [InlineData(5794)]
    [InlineData(5995)]
    [InlineData(7533)]
    [InlineData(9150)]
    [InlineData(9963)]
    public void Seed_of_a_late_write_into_a_new_generation_passes(int seed)
    {
        var result = ScaleRun.Run(seed);
        Assert.True(result.Failure is null, $"seed {seed}: {result.Failure}\n{result.Logs}");
        Assert.True(result.AcknowledgedChecks > 0, $"seed {seed} checked no acknowledged write");
    }

    /// <summary>
    /// acknowledged-write (scripts/sim --seed 27148 --protocol A): the same late write, onto a block a
    /// crash had left torn (some sectors of a write, the rest zeroes) when the generation started. The
    /// model took a torn block for one that no later write may land on; it now holds the newest write
    /// any of its sectors comes from, so the Primary's write still on its way (acknowledged under
    /// protocol A before the Secondary had it) may land after it.
    /// </summary>
    [Fact]
    public void Protocol_A_seed_of_a_late_write_onto_a_torn_block_passes()
    {
        var result = ScaleRun.Run(27148, protocol: ReplicationProtocol.A);
        Assert.True(result.Failure is null, $"seed 27148: {result.Failure}\n{result.Logs}");
        Assert.True(result.AcknowledgedChecks > 0, "seed 27148 checked no acknowledged write");
    }

    /// <summary>
    /// Seeds where a Diskless Primary's write was acknowledged by a WriteAck its peer sent before
    /// crashing (after an operator disconnect; the ack was still in flight): the checker looked only
    /// at a running peer's disk and missed that the crash had taken the write from the peer's disk
    /// cache (a WriteAck means written, not flushed). Each failed before the checker saw that.
    /// </summary>
    [Theory]
    // acknowledged-write: the crashed peer's disk held the write (the checker ignored a crashed peer's disk).
    [InlineData(40286)]
    [InlineData(44991)]
    // acknowledged-write: the crash took it, unflushed, from the peer's disk cache (with a later write to its block).
    [InlineData(35746)]
    public void Seed_of_an_acknowledgement_arriving_after_the_peer_crashed_passes(int seed)
    {
        var result = ScaleRun.Run(seed);
        Assert.True(result.Failure is null, $"seed {seed}: {result.Failure}\n{result.Logs}");
        Assert.True(result.AcknowledgedChecks > 0, $"seed {seed} checked no acknowledged write");
    }

    /// <summary>
    /// Dual-primary seeds (scripts/sim --dual-primary: allow-two-primaries, both nodes Primary) that
    /// found engine bugs, replayed exactly.
    /// </summary>
    [Theory]
    // convergence: both nodes had discard-my-data set (connect --discard-my-data while connected) when a
    // disk attached while connected found a split brain; the renegotiation's P_STATE carried no flags, so
    // each decided with its own flag and the other's taken as clear: both SyncTarget, waiting for good.
    [InlineData(424)]
    // acknowledged-write: the resolve-conflicts node had lost its disk and answered Superseded for the peer's write
    // (its own write to the block was in flight, through the peer); the peer's disk failed under both: an
    // acknowledged write with no copy anywhere (4946: "without a disk, and neither disk holds it"; 2921: the
    // write was missing from the peer once its disk was attached again and resynced).
    [InlineData(2921)]
    [InlineData(4946)]
    // acknowledged-write: a resync stopped (its source's disk failed) with a resync write still on its way to
    // the target's disk; a write from the peer to the same block raced it and the older resync data landed last.
    [InlineData(35294)]
    // acknowledged-write: the peer's write, held behind a barrier whose flush had not finished, was written
    // after the connection ended, over this Primary's own write to the block acknowledged in its new
    // generation (25267: the two were concurrent, DRBD drops the peer's; 30464, 39478: issued after the end).
    [InlineData(25267)]
    [InlineData(30464)]
    [InlineData(39478)]
    // acknowledged-write: the resolve-conflicts node answered Superseded while its covering write was still on
    // its way to its disk; that write failed, and the peer (Diskless) had its write acknowledged on no disk.
    [InlineData(46475)]
    public void Dual_primary_seed_passes(int seed)
    {
        var result = ScaleRun.Run(seed, dualPrimary: true);
        Assert.True(result.Failure is null, $"seed {seed} (replay: scripts/sim --seed {seed} --dual-primary): {result.Failure}\n{result.Logs}");
        Assert.True(result.AcknowledgedChecks > 0, $"seed {seed} checked no acknowledged write");
    }

    /// <summary>
    /// Slow-disk seeds (scripts/sim --slow-disks: a node's disk takes up to 500 ms a request for a
    /// while) that found engine bugs, replayed exactly.
    /// </summary>
    [Theory]
    // acknowledged-write: the old Primary's write, held on the Secondary behind a barrier whose flush was
    // slow, reached the disk after the connection ended and the Secondary was promoted, over a write the
    // new Primary had acknowledged to the same block (2433; 1670 the same with two Primaries).
    [InlineData(2433, false)]
    [InlineData(1670, true)]
    // acknowledged-write: the resolve-conflicts node answered Superseded on the strength of its covering write,
    // which had no local part (the node was Diskless when it began) and then failed on the peer's failing disk.
    [InlineData(29229, true)]
    // acknowledged-write: the Primary's disk failed under a write the peer acknowledged; the peer restarted
    // before it heard so. The old disk came back with crashed-primary and equal UUIDs, and rule 40 made it
    // the sync source over the peer's only copy. A disk that missed writes is now the target there.
    [InlineData(35679, false)]
    public void Slow_disk_seed_passes(int seed, bool dualPrimary)
    {
        var result = ScaleRun.Run(seed, dualPrimary: dualPrimary, slowDisks: true);
        Assert.True(result.Failure is null, $"seed {seed} (replay: scripts/sim --seed {seed} --slow-disks{(dualPrimary ? " --dual-primary" : string.Empty)}): {result.Failure}\n{result.Logs}");
        Assert.True(result.AcknowledgedChecks > 0, $"seed {seed} checked no acknowledged write");
        Assert.True(result.Faults.ContainsKey("slow disk"), $"seed {seed} had no slow disk");
    }

    /// <summary>
    /// acknowledged-write (scripts/sim --seed S --dual-primary [--slow-disks]): a Diskless Primary's
    /// write, sent to its peer alone, was acknowledged after the Primary had attached its old disk
    /// again, and the checker counted it in that disk's generation. The disk met the peer in a split
    /// brain and never held the write; it is the peer's data, which the operator's `connect
    /// --discard-my-data` on the peer then discarded (24110: after the split brain; 47026: set before
    /// the attach, so the old disk became sync source at once). A write issued without a disk now
    /// belongs to the peer's generation. That holds only because the engine no longer lets an
    /// Inconsistent disk alone complete a write (4904, 31892: such a write, acknowledged by its
    /// attached SyncTarget disk when the connection ended, was overwritten by the next resync).
    /// </summary>
    [Theory]
    [InlineData(24110, true)]
    [InlineData(47026, false)]
    [InlineData(4904, false)]
    [InlineData(31892, true)]
    public void A_write_issued_without_a_disk_belongs_to_the_peers_data(int seed, bool slowDisks)
    {
        var result = ScaleRun.Run(seed, dualPrimary: true, slowDisks: slowDisks);
        Assert.True(result.Failure is null, $"seed {seed}: {result.Failure}\n{result.Logs}");
        Assert.True(result.AcknowledgedChecks > 0, $"seed {seed} checked no acknowledged write");
    }

    /// <summary>
    /// convergence (scripts/sim --seed 48914 --dual-primary): both Primaries' disks failed, both attached
    /// again Outdated, connected with equal UUIDs and out-of-sync bits: no UpToDate disk, so nothing
    /// may be a sync source, and `invalidate` is refused (DRBD 8.4 stays so too). The healing operator
    /// now does what DRBD's guide says: demote, then `primary --force` on the node whose data is kept,
    /// which overwrites its peer with a full sync.
    /// </summary>
    [Fact]
    public void Two_Outdated_disks_are_healed_by_forcing_the_kept_one_primary()
    {
        var result = ScaleRun.Run(48914, dualPrimary: true);
        Assert.True(result.Failure is null, $"seed 48914: {result.Failure}\n{result.Logs}");
        Assert.Equal(1L, result.Operator.GetValueOrDefault("heal: primary --force Success"));
        Assert.True(result.AcknowledgedChecks > 0, "seed 48914 checked no acknowledged write");
    }

    /// <summary>
    /// convergence (scripts/sim --seed 7360 --dual-primary --slow-disks): the sync source's disk failed
    /// as it sent its sync UUID, a partition kept the target from hearing of it, and the source crashed;
    /// it came back without the sync UUID, which the Inconsistent target had taken as its current UUID:
    /// unrelated data, as DRBD 8.4 ends too, and no --discard-my-data gets past that. The healing
    /// operator now does what DRBD's guide says: down, create-md and up on the node with no data to
    /// keep (the Inconsistent one), and the full sync that follows brings the pair together.
    /// </summary>
    [Fact]
    public void Unrelated_data_after_a_lost_sync_UUID_is_healed_by_recreating_the_Inconsistent_nodes_metadata()
    {
        var result = ScaleRun.Run(7360, dualPrimary: true, slowDisks: true);
        Assert.True(result.Failure is null, $"seed 7360: {result.Failure}\n{result.Logs}");
        Assert.Equal(1L, result.Operator.GetValueOrDefault("down, create-md, up Success"));
        Assert.True(result.AcknowledgedChecks > 0, "seed 7360 checked no acknowledged write");
    }
}

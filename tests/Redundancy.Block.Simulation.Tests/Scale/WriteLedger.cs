namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// The model the acknowledged-write checker compares disks against: every application write
/// (block, data, outcome, the data generation UUID it was acknowledged in, whether a later flush
/// made it durable) and, for every data generation, what the disk that started it held then (its
/// base). A node whose current generation is g must hold, per block, the newest write acknowledged
/// in g, or else g's base, or a write issued after that. A generation started on a stale copy (a
/// Consistent node promoted alone) inherits its staleness: DRBD allows that, and the UUIDs make
/// the later handshake detect the split brain. An acknowledged write that was never flushed and
/// whose every copy was lost in crashes is forgiven (a block device promises nothing more).
/// With two writers (<see cref="ConcurrentWriters"/>: allow-two-primaries, both nodes Primary) the
/// order of issue is not the order of effect: two overlapping writes from different Primaries in
/// flight at once (neither completed before the other was issued) may land in either order, and
/// DRBD's conflict resolution only makes both replicas agree on one (8.4 handle_write_conflicts:
/// the resolve-conflicts node answers P_SUPERSEDED or P_RETRY_WRITE, the other defers the peer's
/// write until its own completes). A write acknowledged before another was issued is still never
/// overwritten by that one's predecessors: see <see cref="Precedes"/>.
/// Under protocol A or B (<see cref="Asynchronous"/>) an acknowledgement says the write is on the
/// writer's disk, not on the peer's: see <see cref="OwedBy"/>.
/// </summary>
public sealed class WriteLedger
{
    public const int BlockBytes = 4096;
    public const int SectorBytes = 512;
    private readonly Dictionary<long, List<WriteRecord>> byBlock = [];
    private readonly Dictionary<ulong, GenerationBase> bases = [];
    private long nextSequence;

    /// <summary>Two nodes may write at once (allow-two-primaries): concurrent writes of different writers may land in either order.</summary>
    public bool ConcurrentWriters { get; init; }

    /// <summary>Protocol A or B: a write is acknowledged once on the writer's disk and sent (A) or received (B), not once on the peer's disk.</summary>
    public bool Asynchronous { get; init; }

    /// <summary>
    /// Whether <paramref name="node"/>'s disk must hold acknowledged write <paramref name="record"/>
    /// (when it is the newest of its block and generation). Under protocol C every copy must: the
    /// peer wrote it before the acknowledgement. Under A or B only the writer's must: the peer may
    /// still lack it, or lose it with the connection, and DRBD's protocol A loses it with the Primary
    /// (a flush does not change that: it reaches the peer only while connected). What the peer lacks
    /// the writer's bitmap must mark (the bitmap checker), and at the end the resync must bring it.
    /// </summary>
    public bool OwedBy(WriteRecord record, string node) => !Asynchronous || record.Writer == node;

    public long Issued { get; private set; }

    public long Acknowledged { get; private set; }

    public long Failed { get; private set; }

    public long Forgiven { get; private set; }

    /// <summary>Writes issued while another writer's write to the same block was in flight (two writers only).</summary>
    public long Concurrent { get; private set; }

    public IEnumerable<long> Blocks => byBlock.Keys;

    public int Generations => bases.Count;

    /// <summary>The UUID without its Primary bit: a generation's identity.</summary>
    public static ulong Generation(ulong uuid) => uuid & ~1UL;

    /// <summary>The generation every node starts from: all zeroes.</summary>
    public void Root(ulong uuid) => bases[Generation(uuid)] = new GenerationBase(0, [], []);

    /// <summary>
    /// A disk holds <paramref name="uuid"/> now; the first time a generation is seen, what that disk
    /// holds (<paramref name="contentOf"/> per written block) becomes the generation's base.
    /// </summary>
    public void ObserveGeneration(ulong uuid, Func<long, byte[]> contentOf)
    {
        ulong generation = Generation(uuid);
        if (bases.ContainsKey(generation))
        {
            return;
        }
        long firstOpen = byBlock.Values.SelectMany(l => l).Where(r => !r.Done).Select(r => r.Sequence).DefaultIfEmpty(nextSequence).Min();
        var blocks = byBlock.Keys.ToDictionary(b => b, contentOf);
        bases[generation] = new GenerationBase(firstOpen, blocks, blocks.ToDictionary(b => b.Key, b => SequenceOf(b.Key, b.Value)));
    }

    /// <summary>
    /// The newest write to <paramref name="block"/> whose data <paramref name="content"/> holds: -1 for
    /// a block never written (all zeroes). A torn mix (a crash left some sectors of a write and some
    /// of what was there before) holds the newest write any of its sectors comes from: the peer sends
    /// writes in order, so one issued after that can still land on it, one issued before cannot.
    /// long.MaxValue when a sector matches no write and is not zeroes.
    /// </summary>
    private long SequenceOf(long block, byte[] content)
    {
        long newest = -1;
        for (int sector = 0; sector < BlockBytes; sector += SectorBytes)
        {
            var have = content.AsSpan(sector, SectorBytes);
            var match = NewestHolding(block, sector, have);
            if (match is null && have.IndexOfAnyExcept((byte)0) >= 0)
            {
                return long.MaxValue;
            }
            newest = Math.Max(newest, match?.Sequence ?? -1);
        }
        return newest;
    }

    /// <summary>The newest write to <paramref name="block"/> whose sector at <paramref name="sectorOffset"/> is <paramref name="have"/>, if any.</summary>
    private WriteRecord? NewestHolding(long block, int sectorOffset, ReadOnlySpan<byte> have)
    {
        var records = byBlock.GetValueOrDefault(block) ?? [];
        for (int i = records.Count - 1; i >= 0; i--)
        {
            if (have.SequenceEqual(records[i].Data.AsSpan(sectorOffset, SectorBytes)))
            {
                return records[i];
            }
        }
        return null;
    }

    /// <summary>The write issued last, if any.</summary>
    public WriteRecord? LastIssued { get; private set; }

    public WriteRecord Issue(string writer, long block, byte[] data)
    {
        Issued++;
        var record = new WriteRecord(nextSequence++, writer, block, data);
        LastIssued = record;
        if (!byBlock.TryGetValue(block, out var list))
        {
            byBlock[block] = list = [];
        }
        if (ConcurrentWriters && list.Any(r => r.InFlight && r.Writer != writer))
        {
            Concurrent++;
        }
        list.Add(record);
        return record;
    }

    public void Complete(WriteRecord record, bool succeeded, ulong generation)
    {
        record.Done = true;
        record.EndSequence = Math.Min(record.EndSequence, nextSequence);
        record.Acknowledged = succeeded;
        record.Generation = Generation(generation);
        if (succeeded)
        {
            Acknowledged++;
        }
        else
        {
            Failed++;
        }
    }

    /// <summary>Acknowledged writes of <paramref name="writer"/> not yet durable: a flush issued now covers these.</summary>
    public List<WriteRecord> FlushCovers(string writer) =>
        [.. byBlock.Values.SelectMany(l => l).Where(r => r.Acknowledged && !r.Durable && r.Writer == writer)];

    /// <summary>
    /// <paramref name="node"/> lost its disk's contents: a crash (<paramref name="flushedSurvive"/>:
    /// what was flushed stays) or a failed disk (all of it is gone). An acknowledged write is then
    /// gone legitimately when no other live node with good data (UpToDate or Consistent) still holds
    /// it, or (crash) when its writer crashed as Primary and the crash took it from that disk
    /// (<paramref name="stillOnDisk"/> false): DRBD then resyncs the activity log's extents from the
    /// crashed Primary's disk (uuid_compare rule 40). With two writers that resync takes back the
    /// other Primary's writes too: the crashed node wrote them to its disk as the peer's (P_DATA, a
    /// WriteAck means written, not flushed) and its activity log covers their extents, so an unflushed
    /// one of <paramref name="crashedGeneration"/> (the crashed disk's, which rule 40 finds equal) the
    /// crash took from that disk is gone as well, once the crashed Primary's disk is the sync source.
    /// </summary>
    public void Lost(string node, bool flushedSurvive, bool crashedPrimary, Func<string, long, byte[], bool> heldElsewhere, Func<long, byte[], bool> stillOnDisk,
        ulong crashedGeneration = 0)
    {
        // Per block and data generation, newest first: an older write only matters once every newer
        // one of the same generation is gone (another generation's copy, after a split brain, says
        // nothing about this one's).
        foreach (var records in byBlock.Values)
        {
            foreach (var generation in records.Where(r => r.Acknowledged && !r.IsForgiven).GroupBy(r => r.Generation))
            {
                bool rolledBackToo = ConcurrentWriters && crashedGeneration != 0 && generation.Key == Generation(crashedGeneration);
                ForgiveLost(generation, node, flushedSurvive, crashedPrimary, rolledBackToo, heldElsewhere, stillOnDisk);
            }
        }
    }

    private void ForgiveLost(IEnumerable<WriteRecord> generation, string node, bool flushedSurvive, bool crashedPrimary, bool othersRolledBack,
        Func<string, long, byte[], bool> heldElsewhere, Func<long, byte[], bool> stillOnDisk)
    {
        foreach (var record in generation.Reverse())
        {
            bool lost = !(flushedSurvive && record.Durable)
                && ((crashedPrimary && (record.Writer == node || othersRolledBack) && !stillOnDisk(record.Block, record.Data)) || !heldElsewhere(node, record.Block, record.Data));
            if (!lost)
            {
                break;
            }
            Forgive(record);
        }
    }

    /// <summary>An acknowledged write whose every copy is gone (crash, failed disk) is no longer required.</summary>
    public void Forgive(WriteRecord record)
    {
        if (!record.IsForgiven)
        {
            record.IsForgiven = true;
            Forgiven++;
        }
    }

    /// <summary>Writes of <paramref name="writer"/> issued and not yet completed.</summary>
    public List<WriteRecord> InFlight(string writer) => [.. byBlock.Values.SelectMany(l => l).Where(r => !r.Done && r.Writer == writer)];

    /// <summary>
    /// The data of <paramref name="record"/> and of every write to its block that may replace it: issued
    /// after it, or (with <see cref="ConcurrentWriters"/>) another writer's write still in flight when it was issued.
    /// </summary>
    public List<byte[]> SameOrLater(WriteRecord record) => [.. byBlock[record.Block].Where(r => r == record || !Precedes(r, record)).Select(r => r.Data)];

    /// <summary>
    /// <paramref name="earlier"/> is older than <paramref name="later"/> for good: it may never land over
    /// it. With one writer, a write issued before (a Primary's overlapping writes reach the peer, and
    /// its disk, in the order it issued them). With two writers, a write of the same writer issued
    /// before, or another writer's write that ended (completed, or its writer crashed and the peer's
    /// connection to it was gone) before <paramref name="later"/> was issued: DRBD guarantees nothing
    /// between writes in flight on two Primaries at once but that both replicas settle on one of them,
    /// while a write issued after another completed depends on it and lands after it (its peer got the
    /// older one first, and wrote it before acknowledging it under protocol C).
    /// </summary>
    public bool Precedes(WriteRecord earlier, WriteRecord later) => earlier.Sequence < later.Sequence
        && (!ConcurrentWriters || earlier.Writer == later.Writer || earlier.EndSequence <= later.Sequence);

    /// <summary>Other writes to <paramref name="record"/>'s block neither preceding nor following it: in flight at the same time from another writer.</summary>
    public List<WriteRecord> ConcurrentWith(WriteRecord record) =>
        [.. byBlock[record.Block].Where(r => r != record && !Precedes(r, record) && !Precedes(record, r) && r.Writer != record.Writer)];

    /// <summary>
    /// Writes that will never complete (their writer crashed with them in flight) end once no copy of
    /// them can still arrive at the peer (its connection to the writer is gone): writes issued later
    /// do not overlap them.
    /// </summary>
    public void End(IEnumerable<WriteRecord> records)
    {
        foreach (var record in records)
        {
            record.EndSequence = Math.Min(record.EndSequence, nextSequence);
        }
    }

    /// <summary>
    /// What <paramref name="block"/> must hold on a disk at generation <paramref name="uuid"/>: the
    /// newest write acknowledged in it (and not forgiven), or else the generation's base; also what
    /// it may hold instead: any write issued after that (in flight, failed or acknowledged later).
    /// Required is null when the generation was never seen (nothing is known of it). A write
    /// <paramref name="node"/> (the disk's node) does not owe (<see cref="OwedBy"/>) is allowed but not required.
    /// </summary>
    public (byte[]? Required, string What, List<byte[]> Allowed) Expectation(long block, ulong uuid, string node)
    {
        ulong generation = Generation(uuid);
        var records = byBlock.GetValueOrDefault(block) ?? [];
        if (ConcurrentWriters && records.Where(r => r.Acknowledged && !r.IsForgiven && r.Generation == generation && !Covered(r, records)).ToList() is { Count: > 0 } required)
        {
            return ConcurrentExpectation(records, required, generation);
        }
        var acknowledged = ConcurrentWriters ? null : records.LastOrDefault(r => r.Acknowledged && !r.IsForgiven && r.Generation == generation && OwedBy(r, node));
        if (acknowledged is not null)
        {
            return (acknowledged.Data, $"write #{acknowledged.Sequence} by {acknowledged.Writer} acknowledged in generation {generation:X16}{(acknowledged.Durable ? " (flushed)" : string.Empty)}",
                [.. records.Where(r => r.Sequence >= acknowledged.Sequence).Select(r => r.Data)]);
        }
        if (!bases.TryGetValue(generation, out var start))
        {
            return (null, string.Empty, []);
        }
        var held = start.Blocks.GetValueOrDefault(block) ?? new byte[BlockBytes];
        long heldSequence = start.HeldSequence.GetValueOrDefault(block, -1);
        return (held, $"what generation {generation:X16} started from",
            [held, .. records.Where(r => r.Sequence >= start.FirstOpenSequence || r.Sequence > heldSequence || ConcurrentWithHeld(r, records, heldSequence)).Select(r => r.Data)]);
    }

    /// <summary>
    /// An acknowledged write another writer's concurrent write, still in flight, may cover: the
    /// resolve-conflicts node answers P_SUPERSEDED at once when its own write in flight covers the
    /// peer's (DRBD 8.4 handle_write_conflicts, e_send_superseded), so the superseded write completes
    /// while neither disk holds it nor the covering write yet. Until that one ends the block may still
    /// hold what it held before; from then on it must hold one of the two (or a later write).
    /// </summary>
    private bool Covered(WriteRecord acknowledged, List<WriteRecord> records) =>
        records.Any(r => r.InFlight && r.Writer != acknowledged.Writer && r.Sequence < acknowledged.EndSequence);

    /// <summary>
    /// With two writers, a peer's write on its way to the disk that started a generation may be older
    /// than what that disk held then (the peer's write waited for this node's conflicting one and was
    /// submitted just before the connection ended; DRBD writes such a peer request after the new
    /// current UUID too, drbd_disconnected waiting for active_ee): one concurrent with the held write.
    /// </summary>
    private bool ConcurrentWithHeld(WriteRecord candidate, List<WriteRecord> records, long heldSequence) =>
        ConcurrentWriters && records.FirstOrDefault(r => r.Sequence == heldSequence) is { } heldRecord && !Precedes(candidate, heldRecord);

    /// <summary>
    /// With two writers: the block must hold a write that every write acknowledged in the generation
    /// (and not forgiven) either is or does not precede — the newest of them, or one concurrent with it,
    /// or one issued later. The one reported as required is the last issued of those no other replaced.
    /// </summary>
    private (byte[]? Required, string What, List<byte[]> Allowed) ConcurrentExpectation(List<WriteRecord> records, List<WriteRecord> required, ulong generation)
    {
        var newest = required.Where(a => !required.Any(b => Precedes(a, b))).ToList();
        var allowed = records.Where(w => required.All(a => w == a || !Precedes(w, a))).Select(r => r.Data).ToList();
        var shown = newest[^1];
        string what = $"write #{shown.Sequence} by {shown.Writer} acknowledged in generation {generation:X16}{(shown.Durable ? " (flushed)" : string.Empty)}"
            + (newest.Count > 1 ? $" (or concurrent #{string.Join(", #", newest.Take(newest.Count - 1).Select(r => r.Sequence))})" : string.Empty);
        return (shown.Data, what, allowed);
    }

    /// <summary>
    /// Null when <paramref name="actual"/> (one block of <paramref name="node"/>'s disk) meets the expectation: every
    /// 512-byte sector equals that sector of the required content or of a later write (a torn write
    /// leaves a mix); otherwise what is wrong.
    /// </summary>
    public string? Check(long block, ulong uuid, string node, ReadOnlySpan<byte> actual, out bool hadRequirement)
    {
        var (required, what, allowed) = Expectation(block, uuid, node);
        hadRequirement = required is not null;
        if (required is null)
        {
            return null;
        }
        for (int sector = 0; sector < BlockBytes; sector += SectorBytes)
        {
            var have = actual.Slice(sector, SectorBytes);
            bool ok = false;
            foreach (var data in allowed)
            {
                if (have.SequenceEqual(data.AsSpan(sector, SectorBytes)))
                {
                    ok = true;
                    break;
                }
            }
            if (!ok)
            {
                var holder = NewestHolding(block, sector, have);
                return $"block {block} sector {sector / SectorBytes} lacks {what} and holds none of the {allowed.Count - 1} writes issued after it"
                    + (holder is null ? string.Empty : $" (it holds write #{holder.Sequence} by {holder.Writer})");
            }
        }
        return null;
    }
}

/// <summary>
/// What the disk that started a generation held then (per written block), and the first write still
/// open at that moment. A block may also hold a write newer than what it held (<see cref="HeldSequence"/>:
/// the newest write it held, in any sector), issued before the generation started: one already on its
/// way to this disk (received from the peer, not yet written) lands after the generation started — in
/// the order the peer sent it, so never an older one.
/// </summary>
public sealed record GenerationBase(long FirstOpenSequence, Dictionary<long, byte[]> Blocks, Dictionary<long, long> HeldSequence);

/// <summary>One application write as the ledger tracks it.</summary>
public sealed class WriteRecord(long sequence, string writer, long block, byte[] data)
{
    public long Sequence { get; } = sequence;

    public string Writer { get; } = writer;

    public long Block { get; } = block;

    public byte[] Data { get; } = data;

    public bool Done { get; set; }

    /// <summary>The sequence the next write issued got when this one ended (long.MaxValue while it may still land).</summary>
    public long EndSequence { get; set; } = long.MaxValue;

    /// <summary>Not completed, and not ended by its writer's crash: it may still land.</summary>
    public bool InFlight => EndSequence == long.MaxValue;

    public bool Acknowledged { get; set; }

    public ulong Generation { get; set; }

    /// <summary>A flush issued after its acknowledgement completed.</summary>
    public bool Durable { get; set; }

    /// <summary>Unflushed and lost with every copy in crashes: no longer required.</summary>
    public bool IsForgiven { get; set; }

    /// <summary>
    /// Still in flight when the peer crashed, with it (or a later write to its block) in that peer's
    /// disk cache then: an acknowledgement the peer sent before the crash may still arrive.
    /// </summary>
    public bool OnPeerAtCrash { get; set; }
}

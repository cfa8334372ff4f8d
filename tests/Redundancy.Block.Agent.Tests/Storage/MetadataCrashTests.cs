// Metadata crash safety, checked the way a node starts: for every point at which power can fail
// during a superblock, activity-log or bitmap write (every byte of every write, every order of
// unflushed writes; see CrashRecordingDevice), the disk file is put in that state and the agent's
// own start path runs on it: VolumeRuntime.OpenAsync (attach: find and validate the metadata),
// ResourceStateMachine.Attach (the disk state from the flags) and VolumeMetadataIo.LoadAsync (bitmaps,
// AL replay, apply-al). The node must start, and start with the old or the new metadata, never a mix;
// no out-of-sync bit may be lost; and the next write after the restart must land correctly.
using Redundancy.Block.Agent.Resources;
using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine.ActivityLog;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using Xunit.Abstractions;

namespace Redundancy.Block.Agent.Tests.Storage;

/// <summary>
/// Runs alone: the tests flock the disk file thousands of times (attach opens it exclusively), and a
/// process another test forks meanwhile inherits the lock until it execs, failing the next open.
/// </summary>
[CollectionDefinition(nameof(MetadataCrashTests), DisableParallelization = true)]
public sealed class MetadataCrashCollection;

[Collection(nameof(MetadataCrashTests))]
public class MetadataCrashTests(ITestOutputHelper output)
{
    private const long MiB = 1L << 20;
    private const long ExtentBytes = ActivityLogTransaction.ExtentSizeBytes;

    /// <summary>A started node: the superblock it read, the disk state it derived, what replication starts with.</summary>
    private sealed record Started(Superblock Metadata, DiskState Disk, VolumeStartState Start);

    /// <summary>A disk file with fresh metadata (node 0, peer node 1), opened for recording writes.</summary>
    private sealed class Fixture : IDisposable
    {
        private readonly TempDiskFile disk;
        private readonly TempDiskFile? meta;

        public Fixture(long diskBytes, bool internalMetadata, MetadataFlags flags, int alExtents = Superblock.DefaultAlExtents)
        {
            // Only metadata is read and written here: tmpfs keeps the thousands of restarts fast.
            string? directory = Directory.Exists("/dev/shm") ? "/dev/shm" : null;
            disk = new TempDiskFile(diskBytes, directory);
            meta = internalMetadata ? null : new TempDiskFile(MiB, directory);
            Definition = new VolumeDefinition { Number = 0, Disk = disk.Path, MetaDisk = meta?.Path ?? "internal" };
            string metaPath = meta?.Path ?? disk.Path;
            var device = FileBlockDevice.Open(metaPath, new FileBlockDeviceOptions { Exclusive = false });
            Recorder = new CrashRecordingDevice(device);
            Assert.True(internalMetadata
                ? MetadataLayout.TryCreateInternal(diskBytes, 2, out var layout, out string error)
                : MetadataLayout.TryCreateExternal(diskBytes, device.SizeBytes, 2, out layout, out error), error);
            var options = new MetadataFormatOptions { NodeId = 0, PeerNodeIds = [1], DeviceUuid = 0xD0D0, CreationTime = 1_700_000_000, AlExtents = alExtents };
            Assert.True(Superblock.TryCreateFresh(layout, options, out var fresh, out error), error);
            Store = new MetadataStore(Recorder, layout);
            var formatted = Store.FormatAsync(fresh).AsTask().GetAwaiter().GetResult();
            Current = Store.WriteAsync(formatted with { Flags = flags }).AsTask().GetAwaiter().GetResult();
            MetaPath = metaPath;
            BaseOffsetBytes = layout.MetadataOffsetBytes;
            Snapshot();
        }

        public VolumeDefinition Definition { get; }
        public CrashRecordingDevice Recorder { get; }
        public MetadataStore Store { get; }
        public Superblock Current { get; set; }
        public string MetaPath { get; }
        public long BaseOffsetBytes { get; }
        /// <summary>The metadata area before the recorded writes.</summary>
        public byte[] BaseImage { get; private set; } = [];

        /// <summary>Takes the metadata area as it is now as the base state and forgets recorded writes.</summary>
        public void Snapshot()
        {
            Store.FlushAsync().AsTask().GetAwaiter().GetResult();
            BaseImage = new byte[Store.Layout.MetadataSizeBytes];
            using var handle = File.OpenHandle(MetaPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            RandomAccess.Read(handle, BaseImage, BaseOffsetBytes);
            Recorder.Clear();
        }

        /// <summary>Closes the recording device: from now on only crash points and restarts touch the file.</summary>
        public void CloseWriter() => Recorder.Dispose();

        public void Apply(CrashPoint point) => CrashRecordingDevice.Apply(MetaPath, BaseOffsetBytes, BaseImage, Recorder.Writes, point);

        public bool TornWriteLanded(CrashPoint point) => CrashRecordingDevice.TornWriteLanded(MetaPath, Recorder.Writes, point);

        public void Dispose()
        {
            Recorder.Dispose();
            meta?.Dispose();
            disk.Dispose();
        }
    }

    /// <summary>The agent's start path on the file as it is; fails the test (naming the crash point) when the node cannot start.</summary>
    private static async Task<Started> StartAsync(VolumeDefinition definition, object point, Func<VolumeRuntime, Task>? whileOpen = null)
    {
        var (volume, error) = await VolumeRuntime.OpenAsync(definition, nodeId: 0, directIo: false, CancellationToken.None);
        Assert.True(volume is not null, $"{point}: the node cannot attach its disk: {error}");
        await using (volume)
        {
            var machine = new ResourceStateMachine("r0", 0, [0], [new PeerState("beta", 1)], CryptoRandom.Instance);
            Assert.True(machine.Attach(0, volume.Metadata) == StateChangeResult.Success, $"{point}: attach refused");
            var attached = machine.Volume(0).Metadata!;
            var start = await VolumeMetadataIo.LoadAsync(volume.Store, attached, alUpdates: true, CancellationToken.None);
            if (whileOpen is not null)
            {
                await whileOpen(volume);
            }
            return new Started(volume.Metadata, machine.Volume(0).Disk, start);
        }
    }

    /// <summary>
    /// The superblock updates of a node's life (up to date, promotion with a new current UUID while the
    /// peer is away, peer outdated, demotion, another new current UUID), each written as the agent does
    /// (MetadataStore.WriteAsync: alternate copy, flush). Power fails at every byte of each.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_torn_superblock_write_at_every_byte_starts_with_the_old_or_the_new_generation_identifiers(bool internalMetadata)
    {
        using var fixture = new Fixture(16 * MiB, internalMetadata, MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.AlClean);
        var states = new List<Superblock> { fixture.Current };
        Superblock next = fixture.Current with { CurrentUuid = 0x0ABC_DEF0_1234_5670 };
        states.Add(await fixture.Store.WriteAsync(next));
        next = states[^1].WithGenerationIds(states[^1].GenerationIds.NewCurrentUuid(0x5555_6666_7777_8888, primary: true, [true, false])) with
        {
            Flags = (states[^1].Flags & ~MetadataFlags.AlClean) | MetadataFlags.PrimaryInd,
        };
        states.Add(await fixture.Store.WriteAsync(next));
        next = states[^1] with { Peers = [states[^1].Peers[0] with { Flags = PeerSlotFlags.Outdated }, states[^1].Peers[1]] };
        states.Add(await fixture.Store.WriteAsync(next));
        next = states[^1].WithGenerationIds(states[^1].GenerationIds.WithPrimaryBit(false)) with
        {
            Flags = (states[^1].Flags & ~MetadataFlags.PrimaryInd) | MetadataFlags.AlClean,
        };
        states.Add(await fixture.Store.WriteAsync(next));
        next = states[^1].WithGenerationIds(states[^1].GenerationIds.NewCurrentUuid(0x1234_0000_0000_4320, primary: true, [true, false])) with
        {
            Flags = (states[^1].Flags & ~MetadataFlags.AlClean) | MetadataFlags.PrimaryInd,
        };
        states.Add(await fixture.Store.WriteAsync(next));
        fixture.CloseWriter();
        var writes = fixture.Recorder.Writes;
        Assert.Equal(states.Count - 1, writes.Count); // one 4 KiB write per update
        Assert.Equal(2, writes.Select(w => w.OffsetBytes).Distinct().Count()); // alternating between the copies
        Assert.NotEqual(states[2].GenerationIds, states[1].GenerationIds);
        Assert.NotEqual(states[5].HistoryUuids, states[4].HistoryUuids);

        int points = 0, sawNew = 0;
        foreach (var point in CrashRecordingDevice.CrashPoints(writes))
        {
            fixture.Apply(point);
            bool landed = fixture.TornWriteLanded(point);
            var expected = states[point.TornWrite + (landed ? 1 : 0)];
            var started = await StartAsync(fixture.Definition, point);
            Assert.True(expected == started.Metadata, $"{point}: started with sequence {started.Metadata.Sequence}, current UUID {started.Metadata.CurrentUuid:X16}; expected sequence {expected.Sequence}");
            Assert.Equal(ExpectedDisk(expected), started.Disk);
            points++;
            sawNew += landed ? 1 : 0;
        }
        Assert.Equal(5 * 4097, points);
        output.WriteLine($"metadata-crash superblock ({(internalMetadata ? "internal" : "external")}): {points} crash points, {points} starts with the old or new superblock, {sawNew} with the new");
        Assert.True(sawNew > 5 * 1000, $"only {sawNew} crash points had the new superblock");
    }

    /// <summary>
    /// After a restart from a torn superblock write the next update goes over the torn (or older) copy,
    /// never over the one the node started from: afterwards both copies are valid and the update wins.
    /// </summary>
    [Fact]
    public async Task After_a_torn_superblock_write_the_next_update_keeps_the_good_copy()
    {
        using var fixture = new Fixture(16 * MiB, internalMetadata: true, MetadataFlags.Consistent | MetadataFlags.WasUpToDate);
        var old = fixture.Current;
        var updated = await fixture.Store.WriteAsync(old.WithGenerationIds(old.GenerationIds.NewCurrentUuid(0x4242_0000_1111_2220, primary: true, [true, false])) with
        {
            Flags = old.Flags | MetadataFlags.PrimaryInd,
        });
        fixture.CloseWriter();
        int checkedPoints = 0;
        foreach (var point in CrashRecordingDevice.CrashPoints(fixture.Recorder.Writes, tornStepBytes: 64))
        {
            fixture.Apply(point);
            Superblock? rewritten = null;
            var started = await StartAsync(fixture.Definition, point, async volume =>
            {
                var md = volume.Metadata;
                rewritten = await volume.Store.WriteAsync(md.WithGenerationIds(md.GenerationIds.NewCurrentUuid(0x7777_0000_0000_0010, primary: true, [true, false])));
            });
            Assert.True(started.Metadata == old || started.Metadata == updated, $"{point}: a superblock that was never written");
            using (var device = FileBlockDevice.Open(fixture.MetaPath, new FileBlockDeviceOptions()))
            {
                var probe = await MetadataStore.ProbeAsync(device, isInternal: true);
                Assert.True(probe.CopyErrors.All(e => e is null), $"{point}: after the next update a copy is invalid: {string.Join("; ", probe.CopyErrors)}");
                Assert.True(rewritten == probe.Superblock, $"{point}: the next update is not what the node reads");
                Assert.Equal(started.Metadata.Sequence + 1, probe.Superblock!.Sequence);
            }
            checkedPoints++;
        }
        Assert.Equal(4096 / 64 + 1, checkedPoints);
        output.WriteLine($"metadata-crash superblock rewrite after a torn write: {checkedPoints} crash points, both copies valid afterwards at all");
    }

    /// <summary>
    /// AL transactions going round an 8-block ring and on on a node that crashed as Primary: at every
    /// byte of every transaction the node starts with the slot table before or after it, continues the
    /// numbering from there, resyncs exactly the AL's extents, and its next transaction replays.
    /// </summary>
    [Fact]
    public async Task A_torn_activity_log_transaction_at_every_byte_replays_the_old_or_the_new_table()
    {
        using var fixture = new Fixture(64 * MiB, internalMetadata: true, MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.PrimaryInd);
        var sb = fixture.Current;
        long extentCount = fixture.Store.Layout.UsableSizeBytes / ExtentBytes;
        var random = new Random(4);
        uint[] slots = [.. Enumerable.Repeat(ActivityLogTransaction.FreeExtent, sb.AlExtents)];
        var tables = new List<uint[]> { slots.ToArray() };
        const int transactions = 10; // once round the 8-block ring and two blocks into the second round
        for (int t = 0; t < transactions; t++)
        {
            var updates = new List<ActivityLogUpdate>();
            foreach (int slot in Enumerable.Range(0, random.Next(1, 4)).Select(_ => random.Next(8)).Distinct())
            {
                uint extent = (uint)random.NextInt64(extentCount);
                // As the activity log does: an extent is in one slot at most.
                slots[slot] = random.Next(6) == 0 || slots.Contains(extent) ? ActivityLogTransaction.FreeExtent : extent;
                updates.Add(new ActivityLogUpdate(slot, slots[slot]));
            }
            await VolumeMetadataIo.WriteAsync(fixture.Store, [], ActivityLogTransaction.Create((ulong)t, updates, slots));
            tables.Add(slots.ToArray());
        }
        fixture.CloseWriter();
        Assert.Equal(8, fixture.Recorder.Writes.Select(w => w.OffsetBytes).Distinct().Count());
        Assert.Equal(fixture.Recorder.Writes[0].OffsetBytes, fixture.Recorder.Writes[8].OffsetBytes); // the ring wrapped

        int points = 0;
        foreach (var point in CrashRecordingDevice.CrashPoints(fixture.Recorder.Writes))
        {
            fixture.Apply(point);
            bool landed = fixture.TornWriteLanded(point);
            int done = point.TornWrite + (landed ? 1 : 0); // transactions durable
            var started = await StartAsync(fixture.Definition, point);
            Assert.True(tables[done].AsSpan().SequenceEqual(started.Start.Recovered.Slots.AsSpan()), $"{point}: the replayed slot table is neither before nor after the transaction");
            Assert.Equal((ulong)done, started.Start.ActivityLog.NextTransactionNumber);
            Assert.True(started.Metadata.Flags.HasFlag(MetadataFlags.PrimaryInd));
            uint[] hot = [.. tables[done].Where(e => e != ActivityLogTransaction.FreeExtent).Distinct()];
            Assert.Equal(hot.Length * (ExtentBytes / MetadataLayout.BytesPerBit) * 2, started.Start.CrashResyncBits); // apply-al, both slots
            foreach (uint extent in hot)
            {
                Assert.True(started.Start.Bitmaps.Bitmap(0).IsSet(extent * (ExtentBytes / MetadataLayout.BytesPerBit)), $"{point}: extent {extent} of the AL not marked for resync");
            }
            points++;
        }
        Assert.Equal(transactions * 4097, points);
        output.WriteLine($"metadata-crash activity log: {points} crash points over {transactions} transactions, all replayed the old or new table");

        // The restarted node's next transaction lands where the torn one was and replays.
        foreach (int tornBytes in new[] { 0, 1, 2000, 4095 })
        {
            var point = new CrashPoint(9, tornBytes, [.. Enumerable.Range(0, 9)]); // over transaction 1
            fixture.Apply(point);
            ulong next = fixture.TornWriteLanded(point) ? 10UL : 9UL; // a tail equal to the old block's counts as landed
            uint[] expected = [];
            await StartAsync(fixture.Definition, point, async volume =>
            {
                var al = (await VolumeMetadataIo.LoadAsync(volume.Store, volume.Metadata, alUpdates: true, CancellationToken.None)).ActivityLog;
                uint cold = Enumerable.Range(0, (int)extentCount).Select(e => (uint)e).First(e => !al.IsHot(e));
                var begin = al.BeginWrite(cold * ExtentBytes, 4096);
                Assert.Equal(AlBeginOutcome.NeedsTransaction, begin.Outcome);
                Assert.True(begin.Transaction!.TransactionNumber == next, $"{point}: the next transaction is number {begin.Transaction.TransactionNumber}");
                await VolumeMetadataIo.WriteAsync(volume.Store, [], begin.Transaction);
                al.CommitTransaction(begin.Transaction);
                expected = [.. al.Slots];
            });
            var restarted = await StartAsync(fixture.Definition, point);
            Assert.Equal(expected, restarted.Start.Recovered.Slots.ToArray());
            Assert.Equal(next + 1, restarted.Start.ActivityLog.NextTransactionNumber);
        }
    }

    /// <summary>
    /// A Primary with a disconnected peer fills all 67 AL slots, marking bits out of sync as it writes;
    /// then a write needs two cold extents, evicting two whose bits lie on two bitmap pages. The agent
    /// writes those pages, flushes, then the AL transaction. At every byte of each write, with the pages
    /// landing in either order, the restarted node's bitmap (after apply-al) holds every bit that was set.
    /// </summary>
    [Fact]
    public async Task A_crash_during_the_bitmap_write_before_an_al_eviction_loses_no_out_of_sync_bit()
    {
        var (points, lost) = await EvictionCrashAsync(pagesFirst: true);
        Assert.Empty(lost);
        output.WriteLine($"metadata-crash bitmap before AL eviction: {points} crash points, {lost.Count} lost out-of-sync bits");
        Assert.True(points > 3 * 4097, $"only {points} crash points");
    }

    /// <summary>The checker of the test above finds the loss when the AL transaction is written before the bitmap pages.</summary>
    [Fact]
    public async Task The_eviction_check_detects_an_al_transaction_written_before_its_bitmap_pages()
    {
        var (_, lost) = await EvictionCrashAsync(pagesFirst: false);
        Assert.NotEmpty(lost);
        output.WriteLine($"metadata-crash negative control (AL transaction before bitmap pages): {lost.Count} crash points lose bits, e.g. {lost[0]}");
    }

    private static async Task<(int Points, List<string> Lost)> EvictionCrashAsync(bool pagesFirst)
    {
        const int alExtents = Superblock.MinAlExtents;
        using var fixture = new Fixture(300 * MiB, internalMetadata: true, MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.PrimaryInd, alExtents);
        var (volume, error) = await VolumeRuntime.OpenAsync(fixture.Definition, 0, false, CancellationToken.None);
        Assert.True(volume is not null, error);
        VolumeStartState start;
        await using (volume)
        {
            start = await VolumeMetadataIo.LoadAsync(fixture.Store, fixture.Current, alUpdates: true, CancellationToken.None);
        }
        var al = start.ActivityLog;
        var bitmaps = start.Bitmaps;
        int slot = fixture.Current.FindPeerSlot(1);
        // Extents 0 and 65 (bitmap pages 0 and 2: two separate writes) become the least recently used.
        uint[] order = [0, 65, .. Enumerable.Range(1, alExtents).Where(e => e != 65).Select(e => (uint)e).Take(alExtents - 2)];
        foreach (uint extent in order)
        {
            long offset = (extent * ExtentBytes) + 8192;
            var begin = al.BeginWrite(offset, 4096);
            Assert.Equal(AlBeginOutcome.NeedsTransaction, begin.Outcome);
            Assert.Empty(begin.EvictedExtents);
            await VolumeMetadataIo.WriteAsync(fixture.Store, [], begin.Transaction);
            al.CommitTransaction(begin.Transaction!);
            bitmaps.MarkOutOfSync(slot, offset, 4096);
            al.EndWrite(offset, 4096);
        }
        fixture.Snapshot();

        long newOffset = (alExtents + 1L) * ExtentBytes;
        var eviction = al.BeginWrite(newOffset, 2 * ExtentBytes);
        Assert.Equal(AlBeginOutcome.NeedsTransaction, eviction.Outcome);
        Assert.Equal(new uint[] { 0, 65 }, eviction.EvictedExtents.Order().ToArray());
        var pages = bitmaps.Images(bitmaps.TakeDirtyPagesForExtents(eviction.EvictedExtents)); // as ReplicaHost.WriteActivityLog
        Assert.Equal(2, pages.Count);
        if (pagesFirst)
        {
            await VolumeMetadataIo.WriteAsync(fixture.Store, pages, eviction.Transaction);
        }
        else
        {
            await VolumeMetadataIo.WriteAsync(fixture.Store, [], eviction.Transaction);
            await VolumeMetadataIo.WriteAsync(fixture.Store, pages, null);
        }
        fixture.CloseWriter();
        Assert.Equal(3, fixture.Recorder.Writes.Count);
        long[] required = [.. Enumerable.Range(0, (int)bitmaps.BitCount).Where(b => bitmaps.Bitmap(slot).IsSet(b)).Select(b => (long)b)];
        Assert.Equal(alExtents, required.Length);

        int points = 0;
        var lost = new List<string>();
        foreach (var point in CrashRecordingDevice.CrashPoints(fixture.Recorder.Writes))
        {
            fixture.Apply(point);
            var started = await StartAsync(fixture.Definition, point);
            long[] missing = [.. required.Where(b => !started.Start.Bitmaps.Bitmap(slot).IsSet(b))];
            if (missing.Length > 0)
            {
                lost.Add($"{point}: out-of-sync bits lost: {string.Join(',', missing)}");
            }
            points++;
        }
        return (points, lost);
    }

    private static DiskState ExpectedDisk(Superblock metadata) =>
        new ResourceStateMachine("r0", 0, [0], [new PeerState("beta", 1)], CryptoRandom.Instance).DiskStateFromMetadata(metadata);
}

using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;
using Xunit.Abstractions;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Dual-primary (allow-two-primaries, protocol C): both nodes Primary, both writing, many writes
/// overlapping concurrently. The replicas must end byte-identical, and each sector must hold the data
/// of a write no other write to it followed in real time (an acknowledged write survives unless a
/// later or concurrent overlapping write replaced it). Replica.WriteConflicts.cs resolves conflicts.
/// </summary>
public class ReplicaDualPrimaryTests(ITestOutputHelper output)
{
    private const int SectorBytes = 512;
    private const int Seeds = 30;
    private const long ExtentBytes = 4 << 20;

    /// <param name="hotSpots">
    /// 1: one 64 KiB region, nearly every write conflicts. 4: one per 4 MiB activity-log extent, so
    /// the two AL slots keep evicting and writes also start from the AL's wait paths.
    /// </param>
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void Concurrent_overlapping_writes_from_both_Primaries_leave_identical_replicas(int hotSpots)
    {
        int superseded = 0, retried = 0;
        for (int seed = 1; seed <= Seeds; seed++)
        {
            var pair = new SimReplicaPair(seed, options: new NetworkOptions { MaxDelayMs = 1 + seed % 4 }, netOptions: "allow-two-primaries yes;");
            ConnectBothPrimary(pair);
            var writes = new List<WriteRecord>();
            var random = pair.Random.Fork();
            // 64 KiB hot spots, writes of 1..32 sectors: many overlap one in flight on the other node.
            foreach (var node in new[] { pair.Alpha, pair.Beta })
            {
                StartWrites(pair, node, writes, random, count: 120, regionSectors: 128, windowMs: 300, hotSpots);
            }
            Assert.True(pair.Scheduler.RunUntil(() => writes.All(w => w.CompletedAtMs is not null), 60_000), $"seed {seed}: every write completes\n{pair.Logs}");
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 1_000);

            Assert.True(writes.All(w => w.Succeeded), $"seed {seed}: every write succeeded");
            Assert.True(pair.InSync(), $"seed {seed}: still connected, nothing out of sync\n{pair.Logs}");
            Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents), $"seed {seed}: the replicas are byte-identical\n{pair.Logs}");
            CheckEverySectorHoldsALatestWrite(seed, pair.Alpha.Disks[0].Contents.ToArray(), writes);
            superseded += pair.Alpha.Log.Concat(pair.Beta.Log).Count(l => l.Contains("answered Superseded", StringComparison.Ordinal));
            retried += pair.Alpha.Log.Concat(pair.Beta.Log).Count(l => l.Contains("answered RetryWrite", StringComparison.Ordinal));
            Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("answered", StringComparison.Ordinal)); // only beta (node-id 1) resolves
        }
        output.WriteLine($"dual-primary ({hotSpots} hot spots): {Seeds} seeds, {Seeds * 240} writes, {superseded} answered Superseded, {retried} answered RetryWrite, replicas byte-identical");
        Assert.True(superseded > 0 && retried > 0, $"the workload exercised both answers: {superseded} Superseded, {retried} RetryWrite");
    }

    [Fact]
    public void Connection_lost_while_writes_conflict_every_write_completes_and_the_reconnect_is_a_split_brain()
    {
        for (int seed = 1; seed <= 15; seed++)
        {
            var pair = new SimReplicaPair(seed, options: new NetworkOptions { MaxDelayMs = 3 }, netOptions: "allow-two-primaries yes;");
            ConnectBothPrimary(pair);
            var writes = new List<WriteRecord>();
            var random = pair.Random.Fork();
            StartWrites(pair, pair.Alpha, writes, random, count: 60, regionSectors: 128, windowMs: 100);
            StartWrites(pair, pair.Beta, writes, random, count: 60, regionSectors: 128, windowMs: 100);
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + random.NextInt64(10, 90));
            pair.Network.Partition("alpha", "beta");
            Assert.True(pair.Scheduler.RunUntil(() => writes.All(w => w.CompletedAtMs is not null), 60_000), $"seed {seed}: every write completes without the peer\n{pair.Logs}");
            Assert.True(writes.All(w => w.Succeeded), $"seed {seed}: every write succeeded (each Primary has its disk)");
            // Both wrote while apart: on reconnect it is a split brain with two Primaries (after-sb-2pri disconnect).
            pair.Network.HealAll();
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State == ConnectionState.StandAlone
                && pair.Beta.Replica.Links[0].State == ConnectionState.StandAlone, 60_000), $"seed {seed}\n{pair.Logs}");
        }
    }

    [Fact]
    public void Each_Primary_reads_its_own_UpToDate_disk()
    {
        var pair = new SimReplicaPair(3, netOptions: "allow-two-primaries yes;");
        ConnectBothPrimary(pair);
        var data = new byte[4096];
        pair.Random.Fill(data);
        bool written = false;
        pair.Alpha.Write(0, 8192, data, ok => written = ok);
        Assert.True(pair.Scheduler.RunUntil(() => written, 5_000));
        byte[]? read = null;
        pair.Beta.Read(0, 8192, data.Length, (ok, bytes) => read = ok ? bytes : null);
        Assert.True(pair.Scheduler.RunUntil(() => read is not null, 5_000));
        Assert.Equal(data, read);
        Assert.False(pair.Beta.Sent.ContainsKey(MessageType.DataRequest), "the read was served from beta's own disk");
    }

    [Fact]
    public void Without_allow_two_primaries_Data_sent_to_a_Primary_is_a_protocol_error()
    {
        var pair = new SimReplicaPair(4);
        pair.ConnectWithAlphaPrimary();
        pair.Beta.Replica.SetRole(Role.Primary); // as only a broken peer would: the promotion request is refused
        bool done = false;
        pair.Alpha.Write(0, 0, new byte[4096], _ => done = true);
        Assert.True(pair.Scheduler.RunUntil(() => done, 5_000));
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 100);
        Assert.Contains(pair.Beta.Log, l => l.Contains("two primaries are not allowed", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(AckKind.Superseded)]
    [InlineData(AckKind.RetryWrite)]
    public void A_conflict_answer_without_allow_two_primaries_is_a_protocol_error(AckKind kind)
    {
        var pair = new SimReplicaPair(6);
        pair.ConnectWithAlphaPrimary();
        bool done = false;
        pair.Alpha.Write(0, 0, new byte[4096], _ => done = true);
        // Beta answers alpha's first write (request id 1) as only a resolving Primary may.
        var ack = new AckMessage(kind, 0, 4096, 1, 0);
        var frame = new byte[FrameWriter.FrameLength(ack)];
        FrameWriter.Write(frame, 0, ack);
        var buffer = new System.Buffers.ReadOnlySequence<byte>(frame);
        Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out var header, out var payload, out string? error), error);
        pair.Alpha.Replica.Receive(1, header, payload, pair.Scheduler.NowMs);
        Assert.True(pair.Alpha.Log.Any(l => l.Contains($"a {kind} for request 1 without allow-two-primaries", StringComparison.Ordinal)), pair.Logs);
        Assert.True(pair.Scheduler.RunUntil(() => done, 5_000), "the write completes (locally) all the same");
    }

    [Fact]
    public void Two_Primaries_cut_apart_write_alone_and_meet_as_a_split_brain_after_sb_2pri_decides()
    {
        var pair = new SimReplicaPair(9, netOptions: "allow-two-primaries yes; after-sb-2pri disconnect;");
        ConnectBothPrimary(pair);
        ulong before = pair.Alpha.Replica.Volume(0).Ids.Current & ~Engine.Metadata.GenerationIds.PrimaryBit;
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => !pair.BothConnected() && pair.Alpha.Replica.Links[1].State != ConnectionState.Connected
            && pair.Beta.Replica.Links[0].State != ConnectionState.Connected, 30_000), pair.Logs);
        var writes = new List<WriteRecord>();
        var random = pair.Random.Fork();
        StartWrites(pair, pair.Alpha, writes, random, count: 20, regionSectors: 256, windowMs: 50);
        StartWrites(pair, pair.Beta, writes, random, count: 20, regionSectors: 256, windowMs: 50);
        Assert.True(pair.Scheduler.RunUntil(() => writes.All(w => w.CompletedAtMs is not null), 30_000), "both Primaries go on alone");
        Assert.True(writes.All(w => w.Succeeded));
        foreach (var (node, peer) in new[] { (pair.Alpha, 1), (pair.Beta, 0) })
        {
            Assert.NotEqual(before, node.Replica.Volume(0).Ids.Current & ~Engine.Metadata.GenerationIds.PrimaryBit); // a new data generation each
            Assert.True(node.Replica.Volume(0).OutOfSyncBytes(peer) > 0, $"{node.Name}: what the peer missed is in the bitmap");
        }
        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State == ConnectionState.StandAlone
            && pair.Beta.Replica.Links[0].State == ConnectionState.StandAlone, 60_000), pair.Logs);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("Split-Brain", StringComparison.OrdinalIgnoreCase));
        Assert.Equal((Role.Primary, Role.Primary), (pair.Alpha.Replica.Role, pair.Beta.Replica.Role));
    }

    [Fact]
    public void A_Diskless_Primary_resolves_no_conflicts_it_could_not_store()
    {
        // Dual-primary seed 4946: beta (resolve-conflicts) had lost its disk; it answered Superseded for
        // alpha's write because its own write to the block was in flight — through alpha, its only data.
        // Alpha's disk then failed under its write and beta's write failed with it: alpha's write was
        // acknowledged with no copy anywhere. DRBD sends no writes to a diskless peer (drbd_should_do_remote),
        // so a diskless node never resolves one: alpha's write stands or falls by alpha's own disk.
        for (int seed = 1; seed <= 10; seed++)
        {
            var pair = new SimReplicaPair(700 + seed, options: new NetworkOptions { MaxDelayMs = 1 + seed % 4 }, netOptions: "allow-two-primaries yes;");
            ConnectBothPrimary(pair);
            pair.Beta.DetachOnIoError = true;
            pair.Beta.Disks[0].FailWrites = true;
            pair.Beta.Write(0, 1 << 20, new byte[4096], _ => { });
            Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Volume(0).Disk == DiskState.Diskless
                && pair.Alpha.Replica.Links[1].PeerDisks[0] == DiskState.Diskless, 10_000), pair.Logs);

            var writes = new List<WriteRecord>();
            var random = pair.Random.Fork();
            StartWrites(pair, pair.Alpha, writes, random, count: 60, regionSectors: 64, windowMs: 200);
            StartWrites(pair, pair.Beta, writes, random, count: 60, regionSectors: 64, windowMs: 200);
            Assert.True(pair.Scheduler.RunUntil(() => writes.All(w => w.CompletedAtMs is not null), 60_000), $"seed {seed}: every write completes\n{pair.Logs}");
            Assert.True(writes.All(w => w.Succeeded), $"seed {seed}: every write succeeded (alpha's disk holds them)");
            Assert.DoesNotContain(pair.Beta.Log, l => l.Contains("answered", StringComparison.Ordinal));
            CheckEverySectorHoldsALatestWrite(seed, pair.Alpha.Disks[0].Contents.ToArray(), writes);
        }
    }

    [Fact]
    public void A_superseded_write_is_retried_when_the_covering_write_fails_on_the_resolving_disk()
    {
        // Dual-primary seed 46475: beta (resolve-conflicts) answered Superseded for alpha's write at
        // once, its own covering write still on its way to its disk; that write failed, and alpha,
        // Diskless, had its write acknowledged with no copy anywhere. The answer now waits for the
        // covering write's local result: landed, Superseded; failed, RetryWrite.
        int answered = 0;
        for (int seed = 1; seed <= 10; seed++)
        {
            var pair = new SimReplicaPair(800 + seed, options: new NetworkOptions { MaxDelayMs = 1 }, netOptions: "allow-two-primaries yes;");
            ConnectBothPrimary(pair);
            pair.Alpha.DetachOnIoError = true;
            pair.Alpha.Disks[0].FailWrites = true;
            pair.Alpha.Write(0, 1 << 20, new byte[4096], _ => { });
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Volume(0).Disk == DiskState.Diskless
                && pair.Beta.Replica.Links[0].PeerDisks[0] == DiskState.Diskless, 10_000), pair.Logs);

            bool warmed = false;
            pair.Beta.Write(0, 0, new byte[4096], ok => warmed = ok); // the extent is in beta's activity log: no wait for it
            Assert.True(pair.Scheduler.RunUntil(() => warmed, 10_000), pair.Logs);
            pair.Beta.DetachOnIoError = true;
            pair.Beta.Disks[0].FailWrites = true;
            pair.Beta.DiskLatencyMaxMs = 40; // alpha's write arrives while beta's is on its way to the disk
            bool? alphaWrote = null, betaWrote = null;
            pair.Beta.Write(0, 8192, Enumerable.Repeat((byte)0xBB, 4096).ToArray(), ok => betaWrote = ok);
            pair.Alpha.Write(0, 8192, Enumerable.Repeat((byte)0xAA, 4096).ToArray(), ok => alphaWrote = ok);
            Assert.True(pair.Scheduler.RunUntil(() => alphaWrote is not null && betaWrote is not null, 30_000), $"seed {seed}: both writes complete\n{pair.Logs}");
            Assert.False(betaWrote, $"seed {seed}: beta's write failed on beta's disk, and alpha has none");
            Assert.False(alphaWrote, $"seed {seed}: alpha's write is on no disk, so it fails\n{pair.Logs}");
            answered += pair.Beta.Log.Count(l => l.Contains("answered RetryWrite", StringComparison.Ordinal));
            Assert.DoesNotContain(pair.Beta.Log, l => l.Contains("answered Superseded", StringComparison.Ordinal));
        }
        Assert.True(answered > 0, "some seeds had the two writes conflict");
    }

    /// <summary>Both connected Secondaries, then each asks the other and is promoted (as `primary` does).</summary>
    internal static void ConnectBothPrimary(SimReplicaPair pair)
    {
        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 10_000), pair.Logs);
        foreach (var node in new[] { pair.Alpha, pair.Beta })
        {
            Assert.Equal(StateChangeResult.Success, node.Replica.RequestPromotion(pair.Scheduler.NowMs, 30_000, out long token));
            Assert.True(token == 0 || pair.Scheduler.RunUntil(() => node.Replica.PromotionAnswer(token) is not null, 5_000), pair.Logs);
            Assert.True(token == 0 || node.Replica.PromotionAnswer(token) == StateChangeResult.Success, "the Primary peer grants it: allow-two-primaries");
            node.Replica.SetRole(Role.Primary);
        }
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].PeerRole == Role.Primary && pair.Beta.Replica.Links[0].PeerRole == Role.Primary, 5_000), pair.Logs);
    }

    /// <summary>
    /// Schedules <paramref name="count"/> writes of random data over <paramref name="windowMs"/>, each into
    /// the first <paramref name="regionSectors"/> sectors of one of the first <paramref name="hotSpots"/> AL extents.
    /// </summary>
    private static void StartWrites(SimReplicaPair pair, SimReplicaNode node, List<WriteRecord> writes, SimRandom random, int count, int regionSectors, int windowMs, int hotSpots = 1)
    {
        for (int i = 0; i < count; i++)
        {
            int sectors = (int)random.NextInt64(1, 33);
            long hotSpotBytes = random.NextInt64(0, hotSpots) * ExtentBytes;
            long offsetBytes = hotSpotBytes + random.NextInt64(0, regionSectors - sectors + 1) * SectorBytes;
            var data = new byte[sectors * SectorBytes];
            random.Fill(data);
            var record = new WriteRecord(node.Name, offsetBytes, data);
            writes.Add(record);
            pair.Scheduler.After(random.NextInt64(0, windowMs), () =>
            {
                record.IssuedAtMs = pair.Scheduler.NowMs;
                node.Write(0, offsetBytes, data, ok =>
                {
                    record.Succeeded = ok;
                    record.CompletedAtMs = pair.Scheduler.NowMs;
                });
            });
        }
    }

    /// <summary>
    /// Each sector written holds the data of one write to it that no other write to it followed in real
    /// time (none was issued after it completed): so an acknowledged write is there unless a write
    /// issued later, or concurrent with it, overwrote it.
    /// </summary>
    private static void CheckEverySectorHoldsALatestWrite(int seed, byte[] disk, List<WriteRecord> writes)
    {
        var sectors = writes.SelectMany(w => Enumerable.Range(0, w.Data.Length / SectorBytes).Select(i => w.OffsetBytes / SectorBytes + i)).Distinct();
        foreach (long sector in sectors)
        {
            var covering = writes.Where(w => w.OffsetBytes / SectorBytes <= sector && sector < (w.OffsetBytes + w.Data.Length) / SectorBytes).ToList();
            var onDisk = disk.AsMemory((int)(sector * SectorBytes), SectorBytes);
            var holder = covering.Where(w => w.Data.AsSpan((int)(sector * SectorBytes - w.OffsetBytes), SectorBytes).SequenceEqual(onDisk.Span)).ToList();
            Assert.True(holder.Count == 1, $"seed {seed}: sector {sector} holds the data of exactly one of its {covering.Count} writes ({holder.Count})");
            if (covering.FirstOrDefault(w => w.IssuedAtMs > holder[0].CompletedAtMs) is { } later)
            {
                Assert.Fail($"seed {seed}: sector {sector} holds {holder[0].Node}'s write completed at {holder[0].CompletedAtMs} ms, "
                    + $"but {later.Node}'s write issued at {later.IssuedAtMs} ms came after it");
            }
        }
    }

    private sealed class WriteRecord(string node, long offsetBytes, byte[] data)
    {
        public string Node { get; } = node;
        public long OffsetBytes { get; } = offsetBytes;
        public byte[] Data { get; } = data;
        public long IssuedAtMs { get; set; }
        public long? CompletedAtMs { get; set; }
        public bool Succeeded { get; set; }
    }
}

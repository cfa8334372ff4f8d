using System.Collections.Immutable;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>Checksum-based resync (csums-alg) under simulation: only blocks whose digests differ cross the wire.</summary>
public class ReplicaCsumsResyncTests
{
    private const int BlockBytes = 4096;
    private const long Blocks = SimReplicaPair.DiskBytes / BlockBytes;
    private static readonly ResyncRateSettings Fast = new() { CPlanAheadMs = 0, ResyncRateKibPerSec = 400 * 1024 };

    [Fact]
    public void A_full_sync_of_mostly_identical_disks_transfers_only_the_differing_blocks()
    {
        var pair = ForcedPrimaryPair(81, "csums-alg sha256;");
        long[] differing = [0, 7, 8, 1234, Blocks - 1];
        FillAlphaAndAlmostCopyToBeta(pair, differing);

        pair.ConnectWithAlphaPrimary();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 120_000), pair.Logs);
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents), "identical after the resync");
        Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("full resync", StringComparison.Ordinal));

        var replies = pair.Alpha.Sent[MessageType.RsDataReply];
        Assert.Equal(differing.Length, replies.Frames);
        Assert.Equal(differing.Length * (RsDataReplyMessage.Size + BlockBytes), replies.PayloadBytes);
        Assert.Equal(Blocks - differing.Length, pair.Alpha.Sent[MessageType.RsIsInSync].Frames);
        Assert.Equal(Blocks, pair.Beta.Sent[MessageType.CsumRsRequest].Frames);
        Assert.False(pair.Beta.Sent.ContainsKey(MessageType.RsDataRequest));
        string summary = $"99 % had equal checksums, eliminated: {(Blocks - differing.Length) * 4}K; transferred {differing.Length * 4}K total {Blocks * 4}K";
        Assert.Contains(pair.Beta.Log, l => l.EndsWith(summary, StringComparison.Ordinal));
        Assert.Contains(pair.Alpha.Log, l => l.EndsWith(summary, StringComparison.Ordinal));
    }

    [Fact]
    public void Without_csums_alg_the_same_full_sync_transfers_every_block()
    {
        var pair = ForcedPrimaryPair(82, "");
        FillAlphaAndAlmostCopyToBeta(pair, [3]);
        pair.ConnectWithAlphaPrimary();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 120_000), pair.Logs);
        Assert.Equal(SimReplicaPair.DiskBytes, pair.Alpha.Sent[MessageType.RsDataReply].PayloadBytes - (pair.Alpha.Sent[MessageType.RsDataReply].Frames * RsDataReplyMessage.Size));
        Assert.False(pair.Alpha.Sent.ContainsKey(MessageType.RsIsInSync));
        Assert.DoesNotContain(pair.Beta.Log, l => l.Contains("had equal checksums", StringComparison.Ordinal));
    }

    [Fact]
    public void A_csums_resync_with_application_writes_and_a_read_error_ends_identical()
    {
        for (int seed = 1; seed <= 6; seed++)
        {
            var pair = ForcedPrimaryPair(820 + seed, "csums-alg crc32c;");
            FillAlphaAndAlmostCopyToBeta(pair, [.. Enumerable.Range(0, 40).Select(i => (long)(i * 97))]);
            // The target cannot read one of its blocks: it asks for the data instead of sending a digest.
            pair.Beta.Disks[0].AddLatentReadError(500 * BlockBytes);
            pair.ConnectWithAlphaPrimary();
            int done = 0;
            var random = pair.Random.Fork();
            for (int i = 0; i < 200; i++)
            {
                long block = random.NextInt64(0, Blocks - 1);
                block = block is 499 or 500 ? 600 : block; // a write would heal the unreadable block before the resync reaches it
                var data = new byte[BlockBytes * 2];
                random.Fill(data);
                pair.Scheduler.After(i, () => pair.Alpha.Write(0, block * BlockBytes, data, ok =>
                {
                    Assert.True(ok);
                    done++;
                }));
            }
            Assert.True(pair.Scheduler.RunUntil(() => done == 200 && pair.InSync(), 120_000), $"seed {seed}: {pair.Logs}");
            Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents), $"seed {seed}: identical after the resync");
            Assert.True(pair.Beta.Sent[MessageType.RsDataRequest].Frames >= 1, "the unreadable block was asked for as data");
            Assert.True(pair.Alpha.Sent[MessageType.RsIsInSync].Frames > Blocks / 2, $"seed {seed}: most blocks were equal");
        }
    }

    /// <summary>
    /// csums-after-crash-only (DRBD's use_checksum_based_resync): the SyncTarget compares checksums
    /// only when its own Primary had crashed (its metadata says crashed-primary); another resync of
    /// the same blocks transfers them. Beta missed writes alpha made alone; beta's disk holds most of
    /// them already, as a crashed Primary's disk holds what it wrote just before the crash.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void With_csums_after_crash_only_checksums_are_compared_only_after_the_targets_primary_crash(bool crashedPrimary)
    {
        const ulong shared = 0x7400_0000_0000_0000, alone = 0x7500_0000_0000_0001;
        var flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate;
        // Alpha was promoted without beta (a new current UUID, the old one as beta's bitmap UUID), as
        // after beta, Primary until then, crashed.
        var pair = new SimReplicaPair(83, "C", new NetworkOptions { MaxDelayMs = 3 }, resyncRate: Fast, netOptions: "csums-alg sha256; csums-after-crash-only;",
            initial: node => node == "alpha"
                ? (new GenerationIds(alone, ImmutableArray.Create(shared), ImmutableArray<ulong>.Empty), flags, DiskState.UpToDate)
                : (new GenerationIds(shared, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), crashedPrimary ? flags | MetadataFlags.CrashedPrimary : flags, DiskState.UpToDate));
        pair.Alpha.Replica.SetRole(Role.Primary);
        var random = pair.Random.Fork();
        int done = 0;
        for (int block = 0; block < 64; block++)
        {
            var data = new byte[BlockBytes];
            random.Fill(data);
            long offset = block * 61L * BlockBytes;
            if (block % 8 != 0)
            {
                pair.Beta.Disks[0].WriteAsync(offset, data, fua: true); // beta has it already: equal checksums
            }
            pair.Alpha.Write(0, offset, data, ok => done += ok ? 1 : 0);
        }
        Assert.True(pair.Scheduler.RunUntil(() => done == 64, 10_000), pair.Logs);
        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents), "identical after the resync");
        Assert.Contains(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal));
        if (crashedPrimary)
        {
            Assert.Equal(64, pair.Beta.Sent[MessageType.CsumRsRequest].Frames);
            Assert.Equal(8, pair.Alpha.Sent[MessageType.RsDataReply].Frames);
            Assert.Contains(pair.Beta.Log, l => l.Contains("checksum-based resync after a primary crash (csums-after-crash-only)", StringComparison.Ordinal));
            Assert.Contains(pair.Beta.Log, l => l.Contains("87 % had equal checksums", StringComparison.Ordinal));
            Assert.False(pair.Beta.Replica.Volume(0).Flags.HasFlag(MetadataFlags.CrashedPrimary), "the flag has served");
        }
        else
        {
            Assert.False(pair.Beta.Sent.ContainsKey(MessageType.CsumRsRequest));
            Assert.Equal(64, pair.Alpha.Sent[MessageType.RsDataReply].Frames);
            Assert.DoesNotContain(pair.Alpha.Log.Concat(pair.Beta.Log), l => l.Contains("had equal checksums", StringComparison.Ordinal));
        }
    }

    private static SimReplicaPair ForcedPrimaryPair(int seed, string netOptions) =>
        new(seed, "C", new NetworkOptions { MaxDelayMs = 3 }, resyncRate: Fast, netOptions: netOptions, initial: node => node == "alpha"
            ? (new GenerationIds(0x7300_0000_0000_0001, ImmutableArray.Create(GenerationIds.JustCreated), ImmutableArray<ulong>.Empty), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate)
            : (new GenerationIds(GenerationIds.JustCreated, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), MetadataFlags.None, DiskState.Inconsistent));

    /// <summary>Random data on alpha; beta holds the same except in <paramref name="differing"/> (as after cloning a disk).</summary>
    private static void FillAlphaAndAlmostCopyToBeta(SimReplicaPair pair, long[] differing)
    {
        var bytes = new byte[SimReplicaPair.DiskBytes];
        pair.Random.Fill(bytes);
        pair.Alpha.Disks[0].WriteAsync(0, bytes, fua: true);
        foreach (long block in differing)
        {
            bytes[(block * BlockBytes) + 17] ^= 0x5A;
        }
        pair.Beta.Disks[0].WriteAsync(0, bytes, fua: true);
    }
}

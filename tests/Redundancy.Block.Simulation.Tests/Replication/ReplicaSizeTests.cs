using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Disks of different sizes under simulation (drbd.md §8 item 21): the smaller size wins and is
/// the only range synced and written; a disk with data does not shrink for a smaller peer; when
/// both grew — at a handshake or by an online resize — the new area is resynced.
/// </summary>
public class ReplicaSizeTests
{
    private const int BlockBytes = 4096;
    private const long Small = 12L << 20;
    private const long Large = SimReplicaPair.DiskBytes;

    private const ulong ForcedUuid = 0x7300_0000_0000_0001;

    [Fact]
    public void Different_disks_connect_and_the_initial_sync_covers_the_smaller_size()
    {
        for (int seed = 1; seed <= 5; seed++)
        {
            // alpha (the smaller disk) was forced Primary; beta is fresh and bigger.
            var pair = new SimReplicaPair(300 + seed, options: new NetworkOptions { MaxDelayMs = 3 }, initial: ForcedAlphaFreshBeta,
                sizes: node => new SimVolumeSize(node == "alpha" ? Small : Large));
            Fill(pair.Alpha, 0, Small, pair.Random);
            pair.ConnectWithAlphaPrimary();
            Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), $"seed {seed}: {pair.Logs}");

            Assert.Equal(Small, pair.Alpha.Replica.Volume(0).AgreedSizeBytes);
            Assert.Equal(Small, pair.Beta.Replica.Volume(0).AgreedSizeBytes);
            Assert.Equal(Large, pair.Beta.Replica.Volume(0).UsableSizeBytes);
            Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
            AssertSame(pair, 0, Small, $"seed {seed}");
            // The full sync copied exactly the agreed size; beta's disk past it was not touched.
            var (frames, payload) = pair.Alpha.Sent[MessageType.RsDataReply];
            Assert.Equal(Small, payload - (frames * RsDataReplyMessage.Size));
            Assert.True(pair.Beta.Disks[0].Contents[(int)Small..].IndexOfAnyExcept((byte)0) < 0, "beta's disk past the agreed size is untouched");
            Assert.Contains(pair.Beta.Log, l => l.Contains($"device size {Large / 1024} KiB -> {Small / 1024} KiB", StringComparison.Ordinal));
            Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("protocol error", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Writes_end_at_the_agreed_size_on_the_bigger_node()
    {
        // A fresh pair connects (beta's bigger disk takes alpha's size), then beta is forced Primary
        // and fully syncs alpha, as `primary --force` does in the agent.
        var pair = new SimReplicaPair(311, initial: _ => Fresh(), sizes: node => new SimVolumeSize(node == "alpha" ? Small : Large));
        Fill(pair.Beta, 0, Large, pair.Random);
        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(pair.BothConnected, 10_000), pair.Logs);
        Assert.Equal(Small, pair.Beta.Replica.Volume(0).AgreedSizeBytes);
        pair.Beta.Replica.AdoptLocal(0, ForcedIds, MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate);
        pair.Beta.Replica.SetRole(Role.Primary);
        Assert.Equal(StateChangeResult.Success, pair.Beta.Replica.StartFullSyncAsSource(0, 0));
        Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && pair.Alpha.Replica.Volume(0).Disk == DiskState.UpToDate, 60_000), pair.Logs);
        var (frames, payload) = pair.Beta.Sent[MessageType.RsDataReply];
        Assert.Equal(Small, payload - (frames * RsDataReplyMessage.Size));

        byte[] tail = pair.Beta.Disks[0].Contents[(int)Small..].ToArray();
        var outcomes = new Dictionary<long, bool>();
        foreach (long offset in new[] { Small - BlockBytes, Small, Large - BlockBytes })
        {
            var data = new byte[BlockBytes];
            pair.Random.Fill(data);
            pair.Beta.Write(0, offset, data, ok => outcomes[offset] = ok);
        }
        Assert.True(pair.Scheduler.RunUntil(() => outcomes.Count == 3, 10_000), pair.Logs);
        Assert.True(outcomes[Small - BlockBytes], "the last block of the agreed size is writable");
        Assert.False(outcomes[Small], "a write past the agreed size fails");
        Assert.False(outcomes[Large - BlockBytes], "a write near the end of the bigger disk fails");
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 10_000), pair.Logs);
        AssertSame(pair, 0, Small, "after the writes");
        Assert.True(pair.Beta.Disks[0].Contents[(int)Small..].SequenceEqual(tail), "nothing landed past the agreed size");
    }

    [Fact]
    public void A_disk_with_data_refuses_to_shrink_for_a_smaller_peer()
    {
        // alpha's UpToDate data spans the big disk; a fresh, smaller beta must not make it shrink.
        var pair = new SimReplicaPair(321, initial: ForcedAlphaFreshBeta, sizes: node => new SimVolumeSize(node == "alpha" ? Large : Small));
        pair.Alpha.Replica.SetRole(Role.Primary);
        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        pair.Scheduler.RunUntil(5_000);

        Assert.False(pair.BothConnected(), pair.Logs);
        Assert.Equal(Large, pair.Alpha.Replica.Volume(0).AgreedSizeBytes);
        Assert.Contains(pair.Alpha.Log, l => l.Contains($"The peer's disk size is too small! ({Small / 1024} < {Large / 1024} KiB)", StringComparison.Ordinal));
        Assert.Contains(pair.Beta.Log, l => l.Contains("peer disconnected: volume 0: The peer's disk size is too small!", StringComparison.Ordinal));
        Assert.Equal(DiskState.Inconsistent, pair.Beta.Replica.Volume(0).Disk);
        Assert.False(pair.Alpha.Sent.ContainsKey(MessageType.BitmapChunk), "no resync started");
    }

    [Fact]
    public void The_agreed_size_holds_after_a_restart_and_needs_no_resync()
    {
        // As read back from the metadata: alpha's disk is bigger, but the pair agreed on beta's size.
        var pair = new SimReplicaPair(331, sizes: node => node == "alpha" ? new SimVolumeSize(Large, AgreedBytes: Small) : new SimVolumeSize(Small));
        pair.ConnectWithAlphaPrimary();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 10_000), pair.Logs);
        Assert.Equal(Small, pair.Alpha.Replica.Volume(0).AgreedSizeBytes);
        Assert.False(pair.Alpha.Sent.ContainsKey(MessageType.BitmapChunk), "same data, same size: no resync");
        Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("device size", StringComparison.Ordinal));
    }

    [Fact]
    public void Both_disks_bigger_at_the_handshake_grow_the_device_and_the_Primary_syncs_the_new_area()
    {
        // Both agreed on Small before, both disks hold Large now (the small disk was replaced, say).
        var pair = new SimReplicaPair(341, options: new NetworkOptions { MaxDelayMs = 3 }, sizes: _ => new SimVolumeSize(Large, AgreedBytes: Small));
        Fill(pair.Alpha, 0, Large, pair.Random);
        Fill(pair.Beta, 0, Small, pair.Alpha.Disks[0]);
        pair.ConnectWithAlphaPrimary();
        Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && pair.Beta.Replica.Volume(0).Disk == DiskState.UpToDate, 60_000), pair.Logs);

        Assert.Equal(Large, pair.Alpha.Replica.Volume(0).AgreedSizeBytes);
        Assert.Equal(Large, pair.Beta.Replica.Volume(0).AgreedSizeBytes);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("Resync of new storage after online grow", StringComparison.Ordinal));
        var (frames, payload) = pair.Alpha.Sent[MessageType.RsDataReply];
        Assert.Equal(Large - Small, payload - (frames * RsDataReplyMessage.Size));
        AssertSame(pair, 0, Large, "after the growth resync");
        Assert.DoesNotContain(pair.Beta.Log, l => l.Contains("protocol error", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_online_resize_grows_both_and_syncs_the_new_area_from_the_Primary(bool alphaPrimary)
    {
        var pair = new SimReplicaPair(351, options: new NetworkOptions { MaxDelayMs = 3 }, sizes: _ => new SimVolumeSize(Small, DiskBytes: Large));
        Fill(pair.Alpha, 0, Large, pair.Random);
        Fill(pair.Beta, 0, Small, pair.Alpha.Disks[0]);
        var primary = alphaPrimary ? pair.Alpha : pair.Beta;
        primary.Replica.SetRole(Role.Primary);
        pair.Alpha.Replica.Connect(pair.Scheduler.NowMs);
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 10_000), pair.Logs);
        if (!alphaPrimary)
        {
            // What beta's disk holds past the old end is what the growth resync must copy to alpha.
            Fill(pair.Beta, Small, Large - Small, pair.Random);
        }

        // Both disks grew; `resize` runs on alpha whichever node is Primary.
        pair.Alpha.GrownUsableBytes[0] = Large;
        pair.Beta.GrownUsableBytes[0] = Large;
        Assert.Equal(StateChangeResult.Success, pair.Alpha.Resize(0));
        Assert.True(pair.Scheduler.RunUntil(() => !pair.Alpha.Replica.ResizePending(0) && pair.InSync()
            && pair.Alpha.Replica.Volume(0).Disk == DiskState.UpToDate && pair.Beta.Replica.Volume(0).Disk == DiskState.UpToDate, 60_000), pair.Logs);

        Assert.Equal(Large, pair.Alpha.Replica.Volume(0).AgreedSizeBytes);
        Assert.Equal(Large, pair.Beta.Replica.Volume(0).AgreedSizeBytes);
        Assert.Contains(primary.Log, l => l.Contains("Resync of new storage after online grow", StringComparison.Ordinal));
        AssertSame(pair, 0, Large, "after the online resize");

        // The new area is written and replicated like the rest.
        var data = new byte[BlockBytes];
        pair.Random.Fill(data);
        bool? written = null;
        primary.Write(0, Large - BlockBytes, data, ok => written = ok);
        Assert.True(pair.Scheduler.RunUntil(() => written is not null && pair.InSync(), 10_000), pair.Logs);
        Assert.True(written);
        AssertSame(pair, Large - BlockBytes, BlockBytes, "the last block after the resize");
    }

    [Fact]
    public void A_Diskless_Primary_takes_the_size_its_peer_grew_to_and_writes_the_new_area_through_it()
    {
        var pair = new SimReplicaPair(371, options: new NetworkOptions { MaxDelayMs = 3 }, sizes: _ => new SimVolumeSize(Small, DiskBytes: Large));
        Fill(pair.Alpha, 0, Small, pair.Random);
        Fill(pair.Beta, 0, Small, pair.Alpha.Disks[0]);
        pair.ConnectWithAlphaPrimary();
        pair.Alpha.DetachOnIoError = true;
        pair.Alpha.Disks[0].FailWrites = true;
        var first = new byte[BlockBytes];
        pair.Random.Fill(first);
        bool? failedLocally = null;
        pair.Alpha.Write(0, 0, first, ok => failedLocally = ok);
        Assert.True(pair.Scheduler.RunUntil(() => failedLocally is not null && pair.Alpha.Replica.Volume(0).Disk == DiskState.Diskless, 10_000), pair.Logs);

        // Only beta has a disk now; it grows, and the Diskless Primary serves the bigger device.
        pair.Beta.GrownUsableBytes[0] = Large;
        Assert.Equal(StateChangeResult.Success, pair.Beta.Resize(0));
        Assert.True(pair.Scheduler.RunUntil(() => !pair.Beta.Replica.ResizePending(0), 10_000), pair.Logs);
        Assert.Equal(Large, pair.Beta.Replica.Volume(0).AgreedSizeBytes);
        Assert.Equal(Large, pair.Alpha.Replica.Volume(0).AgreedSizeBytes);
        Assert.Contains(pair.Alpha.Log, l => l.Contains("(Diskless: the peer's device size)", StringComparison.Ordinal));

        var last = new byte[BlockBytes];
        pair.Random.Fill(last);
        bool? written = null;
        pair.Alpha.Write(0, Large - BlockBytes, last, ok => written = ok);
        Assert.True(pair.Scheduler.RunUntil(() => written is not null, 10_000), pair.Logs);
        Assert.True(written);
        Assert.True(pair.Beta.Disks[0].Contents.Slice((int)(Large - BlockBytes), BlockBytes).SequenceEqual(last), "the new area's write is on beta");
        byte[]? read = null;
        pair.Alpha.Read(0, Large - BlockBytes, BlockBytes, (ok, data) => read = ok ? data : []);
        Assert.True(pair.Scheduler.RunUntil(() => read is not null, 10_000), pair.Logs);
        Assert.Equal(last, read);
        // Beta still records the whole new area (and the write) for alpha's absent disk.
        Assert.True(pair.Beta.Replica.Volume(0).OutOfSyncBytes(0) >= Large - Small);
    }

    [Fact]
    public void A_resize_when_only_one_disk_grew_keeps_the_size()
    {
        var pair = new SimReplicaPair(361, sizes: _ => new SimVolumeSize(Small, DiskBytes: Large));
        pair.ConnectWithAlphaPrimary();
        pair.Alpha.GrownUsableBytes[0] = Large;
        Assert.Equal(StateChangeResult.Success, pair.Alpha.Resize(0));
        Assert.True(pair.Scheduler.RunUntil(() => !pair.Alpha.Replica.ResizePending(0), 10_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 1_000);

        Assert.Equal(Large, pair.Alpha.Replica.Volume(0).UsableSizeBytes);
        Assert.Equal(Small, pair.Alpha.Replica.Volume(0).AgreedSizeBytes);
        Assert.Equal(Small, pair.Beta.Replica.Volume(0).AgreedSizeBytes);
        Assert.True(pair.InSync(), pair.Logs);
        Assert.False(pair.Alpha.Sent.ContainsKey(MessageType.BitmapChunk), "nothing grew: nothing to sync");
    }

    [Fact]
    public void A_resize_with_assume_clean_grows_without_a_resync_and_a_disconnected_peer_blocks_it()
    {
        var pair = new SimReplicaPair(371, sizes: _ => new SimVolumeSize(Small, DiskBytes: Large));
        pair.ConnectWithAlphaPrimary();
        pair.Alpha.GrownUsableBytes[0] = Large;
        pair.Beta.GrownUsableBytes[0] = Large;
        Assert.Equal(StateChangeResult.Success, pair.Alpha.Resize(0, assumeClean: true));
        Assert.True(pair.Scheduler.RunUntil(() => !pair.Alpha.Replica.ResizePending(0), 10_000), pair.Logs);
        Assert.Equal(Large, pair.Alpha.Replica.Volume(0).AgreedSizeBytes);
        Assert.Equal(Large, pair.Beta.Replica.Volume(0).AgreedSizeBytes);
        Assert.True(pair.InSync(), "--assume-clean: the new area is not out of sync");
        Assert.False(pair.Alpha.Sent.ContainsKey(MessageType.BitmapChunk));

        pair.Beta.Replica.Disconnect(0);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected, 10_000));
        Assert.Equal(StateChangeResult.NoConnection, pair.Alpha.Resize(0));
    }

    private static (GenerationIds, MetadataFlags, DiskState) ForcedAlphaFreshBeta(string node) =>
        node == "alpha" ? Forced() : Fresh();

    private static (GenerationIds, MetadataFlags, DiskState) Forced() =>
        (ForcedIds, MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate);

    private static GenerationIds ForcedIds => new(ForcedUuid, ImmutableArray.Create(GenerationIds.JustCreated), ImmutableArray<ulong>.Empty);

    private static (GenerationIds, MetadataFlags, DiskState) Fresh() =>
        (new GenerationIds(GenerationIds.JustCreated, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), MetadataFlags.None, DiskState.Inconsistent);

    /// <summary>Random bytes on a node's disk, durably, as data written before the test.</summary>
    private static void Fill(SimReplicaNode node, long offset, long length, SimRandom random)
    {
        var bytes = new byte[length];
        random.Fill(bytes);
        node.Disks[0].WriteAsync(offset, bytes, fua: true);
    }

    /// <summary>A copy of another disk's first <paramref name="length"/> bytes (the same data generation).</summary>
    private static void Fill(SimReplicaNode node, long offset, long length, SimulatedDisk from) =>
        node.Disks[0].WriteAsync(offset, from.Contents.Slice((int)offset, (int)length).ToArray(), fua: true);

    private static void AssertSame(SimReplicaPair pair, long offset, long length, string when)
    {
        var alpha = pair.Alpha.Disks[0].Contents;
        var beta = pair.Beta.Disks[0].Contents;
        for (long at = offset; at < offset + length; at += BlockBytes)
        {
            Assert.True(alpha.Slice((int)at, BlockBytes).SequenceEqual(beta.Slice((int)at, BlockBytes)), $"{when}: block at {at} differs");
        }
    }
}

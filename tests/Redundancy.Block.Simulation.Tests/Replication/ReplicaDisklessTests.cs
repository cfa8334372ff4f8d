using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// drbd.md §8 scenario 13 (io-errors) under simulation: an injected write error makes the Primary's
/// disk Diskless (on-io-error detach); it keeps serving reads and writes through its peer; `attach`
/// brings the disk back and a bitmap resync of exactly what it missed makes the replicas identical.
/// </summary>
public class ReplicaDisklessTests
{
    private const int BlockBytes = 4096;
    private const int Blocks = (int)(SimReplicaPair.DiskBytes / BlockBytes);

    [Fact]
    public void A_Diskless_Primary_serves_through_its_peer_and_a_reattach_resyncs_exactly_what_it_missed()
    {
        for (int seed = 1; seed <= 10; seed++)
        {
            var pair = new SimReplicaPair(600 + seed, options: new NetworkOptions { MaxDelayMs = 3 });
            var model = FillBoth(pair);
            pair.ConnectWithAlphaPrimary();
            pair.Alpha.DetachOnIoError = true;
            var random = pair.Random.Fork();
            WriteAll(pair, model, [.. Enumerable.Range(0, 20).Select(_ => random.NextInt64(0, Blocks))], random, seed);
            ulong before = pair.Beta.Replica.Volume(0).Ids.Current;

            // The write that fails locally still succeeds: beta has it (DRBD completes it "net OK").
            pair.Alpha.Disks[0].FailWrites = true;
            long failedBlock = random.NextInt64(0, Blocks);
            WriteAll(pair, model, [failedBlock], random, seed);
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Volume(0).Disk == DiskState.Diskless
                && pair.Beta.Replica.Links[0].PeerDisks[0] == DiskState.Diskless, 10_000), pair.Logs);
            Assert.NotEqual(before, pair.Beta.Replica.Volume(0).Ids.Current); // beta moved on, alone with the data
            Assert.Equal(before & ~1UL, pair.Beta.Replica.Volume(0).Ids.Bitmap[0] & ~1UL);
            // Alpha remembers that its disk missed a write of that generation (told to peers as UUID flag MissedWrites).
            Assert.Equal(before & ~1UL, pair.Alpha.Replica.Volume(0).MissedWritesGeneration & ~1UL);

            var whileDiskless = Enumerable.Range(0, 30).Select(_ => random.NextInt64(0, Blocks)).Where(b => b != failedBlock).Distinct().ToArray();
            WriteAll(pair, model, whileDiskless, random, seed);
            Assert.Equal(whileDiskless.Length * (long)BlockBytes, pair.Beta.Replica.Volume(0).OutOfSyncBytes(0));
            AssertReads(pair, model, [.. whileDiskless, failedBlock, .. Enumerable.Range(0, 10).Select(_ => random.NextInt64(0, Blocks))], seed);
            Assert.False(pair.Alpha.Disks[0].Contents.Slice((int)(failedBlock * BlockBytes), BlockBytes).SequenceEqual(model.AsSpan((int)(failedBlock * BlockBytes), BlockBytes)),
                $"seed {seed}: the failed write is not on alpha's disk");

            pair.Alpha.Disks[0].FailWrites = false;
            pair.Alpha.AttachDisk(0);
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.ReplicationOf(1, 0) == ReplicationState.SyncTarget, 10_000), pair.Logs);
            Assert.Equal((whileDiskless.Length + 1) * (long)BlockBytes, pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1));
            Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && pair.Alpha.Replica.Volume(0).Disk == DiskState.UpToDate, 30_000), $"seed {seed}: {pair.Logs}");
            Assert.Contains(pair.Alpha.Log, l => l.Contains("bitmap resync", StringComparison.Ordinal));
            Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("full resync", StringComparison.Ordinal));
            Assert.Equal(pair.Alpha.Replica.Volume(0).Ids.Current & ~1UL, pair.Beta.Replica.Volume(0).Ids.Current & ~1UL);
            Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(model), $"seed {seed}: alpha's disk is the model after the resync");
            Assert.True(pair.Beta.Disks[0].Contents.SequenceEqual(model), $"seed {seed}: beta's disk is the model");
            Assert.Equal(0UL, pair.Alpha.Replica.Volume(0).MissedWritesGeneration); // the resync rewrote what it missed
            AssertReads(pair, model, [failedBlock, whileDiskless[0]], seed);
        }
    }

    [Fact]
    public void A_Diskless_Primary_attaches_only_the_data_it_serves_unless_a_peer_is_UpToDate()
    {
        var pair = new SimReplicaPair(650, options: new NetworkOptions { MaxDelayMs = 3 });
        var model = FillBoth(pair);
        pair.ConnectWithAlphaPrimary();
        pair.Alpha.DetachOnIoError = true;
        var random = pair.Random.Fork();
        pair.Alpha.Disks[0].FailWrites = true;
        WriteAll(pair, model, [random.NextInt64(0, Blocks)], random, 1);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Volume(0).Disk == DiskState.Diskless
            && pair.Beta.Replica.Links[0].PeerDisks[0] == DiskState.Diskless, 10_000), pair.Logs);
        ulong served = pair.Beta.Replica.Volume(0).Ids.Current;
        var oldDisk = pair.Alpha.PersistedIds(0);
        Assert.False(GenerationIds.SameGeneration(served, oldDisk.Current));

        // Beta has the data alpha serves, UpToDate: the old disk may come back (as SyncTarget).
        Assert.Null(pair.Alpha.Replica.AttachRefusal(0, oldDisk));

        // Without beta, nothing has it: DRBD's ERR_DATA_NOT_CURRENT, naming the generation served.
        pair.Beta.Replica.Disconnect(0);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected, 10_000), pair.Logs);
        Assert.Equal(served & ~1UL, pair.Alpha.Replica.Volume(0).ExposedDataUuid & ~1UL);
        Assert.Equal($"(150) Can only attach to the data we lost last: this Primary serves data with current UUID={pair.Alpha.Replica.Volume(0).ExposedDataUuid:X16}, which no connected peer has UpToDate",
            pair.Alpha.Replica.AttachRefusal(0, oldDisk));
        Assert.Null(pair.Alpha.Replica.AttachRefusal(0, new GenerationIds(served, oldDisk.Bitmap, oldDisk.History)));
    }

    [Theory]
    [InlineData("C")]
    [InlineData("A")]
    public void Reads_and_writes_keep_going_through_failure_detach_reattach_and_resync(string protocol)
    {
        for (int seed = 1; seed <= 6; seed++)
        {
            var pair = new SimReplicaPair(700 + seed, protocol, new NetworkOptions { MaxDelayMs = 4 });
            var model = FillBoth(pair);
            pair.ConnectWithAlphaPrimary();
            pair.Alpha.DetachOnIoError = true;
            var workload = new Workload(pair, model, pair.Random.Fork(), seed);
            workload.Run(untilMs: pair.Scheduler.NowMs + 3_000);
            pair.Scheduler.After(pair.Random.NextInt64(100, 400), () => pair.Alpha.Disks[0].FailWrites = true);
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Volume(0).Disk == DiskState.Diskless, 10_000), pair.Logs);
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + pair.Random.NextInt64(100, 500));
            pair.Alpha.Disks[0].FailWrites = false;
            pair.Alpha.AttachDisk(0);
            Assert.True(pair.Scheduler.RunUntil(() => workload.Finished && pair.InSync() && pair.Alpha.Replica.Volume(0).Disk == DiskState.UpToDate, 60_000),
                $"seed {seed}: {pair.Logs}");
            bool flushed = false;
            pair.Alpha.Flush(ok => flushed = ok); // protocol A acknowledges before the peer has it
            Assert.True(pair.Scheduler.RunUntil(() => flushed, 10_000), pair.Logs);
            Assert.Equal(0, workload.Failed);
            Assert.True(workload.Reads > 50 && workload.Writes > 100, $"seed {seed}: {workload.Reads} reads, {workload.Writes} writes");
            AssertHolds(pair.Alpha, model, seed);
            AssertHolds(pair.Beta, model, seed);
        }
    }

    /// <summary>The node's disk holds every acknowledged write (the model), else the first block that differs.</summary>
    private static void AssertHolds(SimReplicaNode node, byte[] model, int seed)
    {
        var disk = node.Disks[0].Contents;
        for (int block = 0; block < Blocks; block++)
        {
            if (!disk.Slice(block * BlockBytes, BlockBytes).SequenceEqual(model.AsSpan(block * BlockBytes, BlockBytes)))
            {
                Assert.Fail($"seed {seed}: block {block} on {node.Name} is not what was acknowledged");
            }
        }
    }

    [Fact]
    public void A_disk_that_fails_again_during_its_resync_is_resynced_after_the_next_attach()
    {
        for (int seed = 1; seed <= 6; seed++)
        {
            var pair = new SimReplicaPair(900 + seed, options: new NetworkOptions { MaxDelayMs = 3 },
                resyncRate: new Engine.Bitmap.Resync.ResyncRateSettings { CPlanAheadMs = 0, ResyncRateKibPerSec = 2048 });
            var model = FillBoth(pair);
            pair.ConnectWithAlphaPrimary();
            var random = pair.Random.Fork();
            FailAndReattach(pair, model, random, seed, writes: 600);
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + random.NextInt64(50, 300));
            pair.Alpha.Disks[0].FailWrites = true; // the resync's own writes fail now
            WriteAll(pair, model, [.. Enumerable.Range(0, 20).Select(_ => random.NextInt64(0, Blocks))], random, seed);
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Volume(0).Disk == DiskState.Diskless
                && pair.Beta.Replica.ReplicationOf(0, 0) == ReplicationState.Established, 10_000), $"seed {seed}: {pair.Logs}");
            Assert.True(pair.BothConnected(), $"seed {seed}: the aborted resync keeps the connection");
            Assert.Contains(pair.Alpha.Log, l => l.Contains("resync stopped: the local disk is gone", StringComparison.Ordinal));
            Assert.Contains(pair.Beta.Log, l => l.Contains("resync stopped: the peer has no disk", StringComparison.Ordinal));

            pair.Alpha.Disks[0].FailWrites = false;
            pair.Alpha.AttachDisk(0);
            Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && pair.Alpha.Replica.Volume(0).Disk == DiskState.UpToDate, 60_000), $"seed {seed}: {pair.Logs}");
            Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(model), $"seed {seed}: alpha's disk is the model after the second resync");
            Assert.True(pair.Beta.Disks[0].Contents.SequenceEqual(model), $"seed {seed}: beta's disk is the model");
        }
    }

    [Fact]
    public void A_write_only_the_SyncTarget_Primarys_Inconsistent_disk_holds_fails_when_the_connection_drops()
    {
        // Seeds 4904 and 31892 --dual-primary: such a write was acknowledged on the strength of the
        // Inconsistent disk alone ("local OK"), and the next resync from the peer overwrote it.
        for (int seed = 1; seed <= 6; seed++)
        {
            var pair = new SimReplicaPair(950 + seed, options: new NetworkOptions { MinDelayMs = 1, MaxDelayMs = 3 },
                resyncRate: new Engine.Bitmap.Resync.ResyncRateSettings { CPlanAheadMs = 0, ResyncRateKibPerSec = 1024 });
            var model = FillBoth(pair);
            pair.ConnectWithAlphaPrimary();
            FailAndReattach(pair, model, pair.Random.Fork(), seed, writes: 400);

            bool? acknowledged = null;
            pair.Alpha.Write(0, 0, new byte[BlockBytes], ok => acknowledged = ok);
            pair.Network.Partition("alpha", "beta"); // the write reaches alpha's disk, never beta's acknowledgement
            Assert.True(pair.Scheduler.RunUntil(() => acknowledged is not null, 30_000), $"seed {seed}: {pair.Logs}");
            Assert.Equal(DiskState.Inconsistent, pair.Alpha.Replica.Volume(0).Disk);
            Assert.False(acknowledged, $"seed {seed}: only the Inconsistent disk holds it, and the next resync overwrites it");
        }
    }

    [Fact]
    public void A_Diskless_Primary_that_reconnects_still_gets_a_bitmap_resync_when_its_disk_returns()
    {
        for (int seed = 1; seed <= 4; seed++)
        {
            var (pair, model, random) = DisklessPrimaryCutOff(950 + seed, seed);
            pair.Network.HealAll();
            Assert.True(pair.Scheduler.RunUntil(pair.BothConnected, 60_000), pair.Logs);
            WriteAll(pair, model, [.. Enumerable.Range(0, 10).Select(_ => random.NextInt64(0, Blocks))], random, seed);
            AssertReads(pair, model, [.. Enumerable.Range(0, 10).Select(_ => random.NextInt64(0, Blocks))], seed);

            pair.Alpha.Disks[0].FailWrites = false;
            pair.Alpha.AttachDisk(0);
            Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && pair.Alpha.Replica.Volume(0).Disk == DiskState.UpToDate, 30_000), $"seed {seed}: {pair.Logs}");
            Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("full resync", StringComparison.Ordinal));
            Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(model), $"seed {seed}: alpha's disk is the model");
            Assert.True(pair.Beta.Disks[0].Contents.SequenceEqual(model), $"seed {seed}: beta's disk is the model");
        }
    }

    [Fact]
    public void A_disk_attached_after_the_Diskless_state_went_out_is_negotiated_once_connected()
    {
        // Seed 56912: the attach came between this node's P_STATE (Diskless) and the handshake's decision;
        // the peer kept taking it for Diskless, nobody compared the disk's UUIDs, and nothing resynced.
        for (int seed = 1; seed <= 4; seed++)
        {
            var (pair, model, random) = DisklessPrimaryCutOff(970 + seed, seed);
            long uuidsSent = pair.Alpha.Sent.GetValueOrDefault(Engine.Peers.Protocol.MessageType.Uuids).Frames;
            pair.Network.HealAll();
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Sent.GetValueOrDefault(Engine.Peers.Protocol.MessageType.Uuids).Frames > uuidsSent, 60_000), pair.Logs);
            Assert.NotEqual(ConnectionState.Connected, pair.Alpha.Replica.Links[1].State);

            pair.Alpha.Disks[0].FailWrites = false;
            pair.Alpha.AttachDisk(0);
            Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && pair.Alpha.Replica.Volume(0).Disk == DiskState.UpToDate, 30_000), $"seed {seed}: {pair.Logs}");
            Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Links[0].PeerDisks[0]);
            Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(model), $"seed {seed}: alpha's disk is the model");
            Assert.True(pair.Beta.Disks[0].Contents.SequenceEqual(model), $"seed {seed}: beta's disk is the model");
        }
    }

    [Fact]
    public void A_disk_attached_while_connected_tells_the_peer_its_discard_my_data_flag()
    {
        // Dual-primary seed 424: both nodes had discard-my-data set when a disk attached while connected
        // found a split brain; each decided with its own flag but was told the other's was clear (the
        // renegotiation's P_STATE carried no flags), so both became SyncTarget and waited for good.
        var pair = new SimReplicaPair(991, options: new NetworkOptions { MaxDelayMs = 3 });
        var model = FillBoth(pair);
        pair.ConnectWithAlphaPrimary();
        pair.Alpha.DetachOnIoError = true;
        var random = pair.Random.Fork();
        pair.Alpha.Disks[0].FailWrites = true;
        WriteAll(pair, model, [random.NextInt64(0, Blocks)], random, seed: 1);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Volume(0).Disk == DiskState.Diskless
            && pair.Beta.Replica.Links[0].PeerDisks[0] == DiskState.Diskless, 10_000), pair.Logs);

        pair.Alpha.Replica.SetDiscardMyData(1, true);
        var states = new List<Engine.Peers.Protocol.StateMessage>();
        pair.Alpha.Tamper = (type, frame) =>
        {
            if (type == Engine.Peers.Protocol.MessageType.State
                && Engine.Peers.Protocol.StateMessage.TryRead(frame.AsSpan(Engine.Peers.Protocol.FrameHeader.Size), out var state, out _))
            {
                states.Add(state);
            }
            return frame;
        };
        pair.Alpha.Disks[0].FailWrites = false;
        pair.Alpha.AttachDisk(0);
        Assert.True(pair.Scheduler.RunUntil(() => states.Any(s => s.Disk == DiskState.Negotiating), 10_000), pair.Logs);
        Assert.Contains(states, s => s.Disk == DiskState.Negotiating && s.Flags.HasFlag(Engine.Peers.Protocol.StateFlags.DiscardMyData));
        Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && pair.Alpha.Replica.Volume(0).Disk == DiskState.UpToDate, 30_000), pair.Logs);
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(model), "alpha's disk is the model after the resync");
    }

    [Fact]
    public void Without_a_disk_or_a_peer_reads_and_writes_fail_and_a_read_in_flight_fails_when_the_connection_drops()
    {
        var (pair, model) = DisklessAlphaPrimary(801);

        pair.Network.Partition("alpha", "beta");
        bool? read = null;
        pair.Alpha.Read(0, 0, BlockBytes, (ok, _) => read = ok);
        Assert.True(pair.Scheduler.RunUntil(() => read is not null, 30_000), "the read in flight completes when the connection drops");
        Assert.False(read);
        Assert.NotEqual(ConnectionState.Connected, pair.Alpha.Replica.Links[1].State);
        bool? write = null;
        pair.Alpha.Write(0, 0, new byte[BlockBytes], ok => write = ok);
        bool? again = null;
        pair.Alpha.Read(0, 0, BlockBytes, (ok, _) => again = ok);
        Assert.True(pair.Scheduler.RunUntil(() => write is not null && again is not null, 1_000));
        Assert.False(write);
        Assert.False(again);
    }

    /// <summary>
    /// `allow-remote-read no` (DRBD's option for a far site): a Diskless Primary's reads are not served
    /// by that peer and fail, while its writes still go there and succeed; adjust to yes serves them.
    /// </summary>
    [Fact]
    public void With_allow_remote_read_no_a_Diskless_Primary_writes_through_its_peer_but_does_not_read_from_it()
    {
        var (pair, model) = DisklessAlphaPrimary(802, "allow-remote-read no;");

        WriteAll(pair, model, [9], pair.Random.Fork(), 802); // written through beta
        Assert.True(pair.Beta.Disks[0].Contents.Slice(9 * BlockBytes, BlockBytes).SequenceEqual(model.AsSpan(9 * BlockBytes, BlockBytes)));
        bool? read = null;
        pair.Alpha.Read(0, 9 * BlockBytes, BlockBytes, (ok, _) => read = ok);
        Assert.True(pair.Scheduler.RunUntil(() => read is not null, 1_000));
        Assert.False(read);
        Assert.False(pair.Alpha.Sent.ContainsKey(MessageType.DataRequest), "nothing was asked of beta");
        Assert.Equal(ConnectionState.Connected, pair.Alpha.Replica.Links[1].State);

        var settings = pair.Alpha.Replica.Links[1].Settings with { AllowRemoteRead = true };
        Assert.True(pair.Alpha.Replica.CanReconfigure([settings]));
        pair.Alpha.Replica.Reconfigure([settings], new Dictionary<int, Engine.Bitmap.Resync.ResyncRateSettings>(), pair.Scheduler.NowMs);
        AssertReads(pair, model, [9, 5], 802);
        Assert.Equal(ConnectionState.Connected, pair.Alpha.Replica.Links[1].State); // applied live
    }

    /// <summary>
    /// The peer asked to be overwritten (invalidate) and this Primary agreed (WFBitMapS), but the peer
    /// has not heard the answer yet when this node's disk fails: the peer's copy is no longer current
    /// (DRBD: at most Consistent in WFBitMapS), so writes, flushes and reads fail instead of being
    /// acknowledged by a disk that is about to go Inconsistent, and stay failing once it has.
    /// </summary>
    [Fact]
    public void A_Primary_whose_disk_fails_does_not_write_through_a_peer_it_agreed_to_overwrite()
    {
        var pair = new SimReplicaPair(990, options: new NetworkOptions { MaxDelayMs = 3 });
        FillBoth(pair);
        pair.ConnectWithAlphaPrimary();
        pair.Alpha.DetachOnIoError = true;
        pair.Network.Partition("alpha", "beta", oneWay: true); // beta's request gets through, alpha's answer waits
        Assert.Equal(StateChangeResult.Success, pair.Beta.Replica.Invalidate(0, 0));
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.ReplicationOf(1, 0) == ReplicationState.WFBitMapS, 1_000), pair.Logs);
        Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
        Assert.Equal(DiskState.Consistent, pair.Alpha.Replica.Links[1].PeerDisks[0]);

        pair.Alpha.HostIoError(0);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Volume(0).Disk == DiskState.Diskless, 1_000), pair.Logs);
        bool? write = null, flush = null, read = null;
        pair.Alpha.Write(0, 0, new byte[BlockBytes], ok => write = ok);
        pair.Alpha.Flush(ok => flush = ok);
        pair.Alpha.Read(0, 0, BlockBytes, (ok, _) => read = ok);
        Assert.True(pair.Scheduler.RunUntil(() => write is not null && flush is not null && read is not null, 1_000), pair.Logs);
        Assert.False(write);
        Assert.False(flush);
        Assert.False(read);

        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].PeerDisks[0] == DiskState.Inconsistent, 10_000), pair.Logs);
        Assert.Equal(DiskState.Inconsistent, pair.Beta.Replica.Volume(0).Disk);
        write = null;
        pair.Alpha.Write(0, 0, new byte[BlockBytes], ok => write = ok);
        Assert.True(pair.Scheduler.RunUntil(() => write is not null, 1_000), pair.Logs);
        Assert.False(write);
    }

    /// <summary>Both disks hold the same random data (as after the initial sync); returns it as the model.</summary>
    /// <summary>Alpha Primary whose disk failed under ten writes (Diskless, writing through beta), then cut off from beta.</summary>
    private static (SimReplicaPair Pair, byte[] Model, SimRandom Random) DisklessPrimaryCutOff(int pairSeed, int seed)
    {
        var pair = new SimReplicaPair(pairSeed, options: new NetworkOptions { MaxDelayMs = 3 });
        var model = FillBoth(pair);
        pair.ConnectWithAlphaPrimary();
        pair.Alpha.DetachOnIoError = true;
        var random = pair.Random.Fork();
        pair.Alpha.Disks[0].FailWrites = true;
        WriteAll(pair, model, [.. Enumerable.Range(0, 10).Select(_ => random.NextInt64(0, Blocks))], random, seed);
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => !pair.BothConnected(), 30_000), pair.Logs);
        return (pair, model, random);
    }

    /// <summary>
    /// Connected, alpha Primary with `on-io-error detach`; its disk fails under a write to block 5
    /// (which beta takes): alpha is Diskless. Returns the pair and the model of the data.
    /// </summary>
    private static (SimReplicaPair Pair, byte[] Model) DisklessAlphaPrimary(int seed, string netOptions = "")
    {
        var pair = new SimReplicaPair(seed, options: new NetworkOptions { MaxDelayMs = 3 }, netOptions: netOptions);
        var model = FillBoth(pair);
        pair.ConnectWithAlphaPrimary();
        pair.Alpha.DetachOnIoError = true;
        pair.Alpha.Disks[0].FailWrites = true;
        WriteAll(pair, model, [5], pair.Random.Fork(), seed);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Volume(0).Disk == DiskState.Diskless, 10_000), pair.Logs);
        return (pair, model);
    }

    /// <summary>
    /// Alpha's disk fails under <paramref name="writes"/> random writes (`on-io-error detach`: Diskless
    /// after the first; beta has them all), then is attached again and becomes beta's SyncTarget.
    /// </summary>
    private static void FailAndReattach(SimReplicaPair pair, byte[] model, SimRandom random, int seed, int writes)
    {
        pair.Alpha.DetachOnIoError = true;
        pair.Alpha.Disks[0].FailWrites = true;
        WriteAll(pair, model, [.. Enumerable.Range(0, writes).Select(_ => random.NextInt64(0, Blocks))], random, seed);
        Assert.Equal(DiskState.Diskless, pair.Alpha.Replica.Volume(0).Disk);
        pair.Alpha.Disks[0].FailWrites = false;
        pair.Alpha.AttachDisk(0);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.ReplicationOf(1, 0) == ReplicationState.SyncTarget, 10_000), pair.Logs);
    }

    private static byte[] FillBoth(SimReplicaPair pair)
    {
        var bytes = new byte[SimReplicaPair.DiskBytes];
        pair.Random.Fill(bytes);
        pair.Alpha.Disks[0].WriteAsync(0, bytes, fua: true);
        pair.Beta.Disks[0].WriteAsync(0, bytes, fua: true);
        return bytes;
    }

    private static void WriteAll(SimReplicaPair pair, byte[] model, long[] blocks, SimRandom random, int seed)
    {
        for (int i = 0; i < blocks.Length; i++)
        {
            long block = blocks[i];
            var data = new byte[BlockBytes];
            random.Fill(data);
            bool done = false;
            pair.Alpha.Write(0, block * BlockBytes, data, ok =>
            {
                Assert.True(ok, $"seed {seed}: write of block {block}");
                data.CopyTo(model, block * BlockBytes);
                done = true;
            });
            Assert.True(pair.Scheduler.RunUntil(() => done, 10_000), pair.Logs);
        }
    }

    private static void AssertReads(SimReplicaPair pair, byte[] model, long[] blocks, int seed)
    {
        int done = 0;
        foreach (long block in blocks)
        {
            // Two blocks at once where possible, to read across block boundaries too.
            int length = block + 1 < Blocks ? 2 * BlockBytes : BlockBytes;
            var expected = model.AsSpan((int)(block * BlockBytes), length).ToArray();
            pair.Alpha.Read(0, block * BlockBytes, length, (ok, data) =>
            {
                Assert.True(ok, $"seed {seed}: read of block {block}");
                Assert.True(data.AsSpan().SequenceEqual(expected), $"seed {seed}: block {block} reads what was written");
                done++;
            });
        }
        Assert.True(pair.Scheduler.RunUntil(() => done == blocks.Length, 10_000), pair.Logs);
    }

    /// <summary>
    /// Writes and reads of random blocks on alpha, never two at once on the same block, so every
    /// read must return the last write acknowledged before it was issued (the model).
    /// </summary>
    private sealed class Workload(SimReplicaPair pair, byte[] model, SimRandom random, int seed)
    {
        private readonly HashSet<long> busy = [];
        private long untilMs;

        public int Reads { get; private set; }


        public int Writes { get; private set; }

        public int Failed { get; private set; }

        public bool Finished => pair.Scheduler.NowMs >= untilMs && busy.Count == 0;

        public void Run(long untilMs)
        {
            this.untilMs = untilMs;
            Next();
        }

        private void Next()
        {
            if (pair.Scheduler.NowMs >= untilMs)
            {
                return;
            }
            pair.Scheduler.After(random.NextInt64(0, 3), Next);
            long block = random.NextInt64(0, Blocks - 1);
            if (busy.Contains(block) || busy.Contains(block + 1))
            {
                return;
            }
            busy.Add(block);
            busy.Add(block + 1);
            long offset = block * BlockBytes + random.NextInt64(0, 8) * 512;
            int length = (int)random.NextInt64(1, 9) * 512;
            if (random.Chance(0.6))
            {
                var data = new byte[length];
                random.Fill(data);
                pair.Alpha.Write(0, offset, data, ok => Done(block, ok, () => { data.CopyTo(model, offset); Writes++; }));
            }
            else
            {
                var expected = model.AsSpan((int)offset, length).ToArray();
                long issued = pair.Scheduler.NowMs;
                var disk = pair.Alpha.Replica.Volume(0).Disk;
                pair.Alpha.Read(0, offset, length, (ok, data) => Done(block, ok, () =>
                {
                    Assert.True(data.AsSpan().SequenceEqual(expected), $"seed {seed}: read at {offset}+{length} issued at {issued} ({disk}) returned other data than was written");
                    Reads++;
                }));
            }
        }

        private void Done(long block, bool ok, Action onSuccess)
        {
            busy.Remove(block);
            busy.Remove(block + 1);
            if (ok)
            {
                onSuccess();
            }
            else
            {
                Failed++;
            }
        }
    }
}

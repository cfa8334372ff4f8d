using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// The replicated write path under simulation: what the Primary acknowledged is on the peer, what
/// the peer missed is in the bitmap, and the next handshake knows who must sync from whom.
/// </summary>
public class ReplicaDataPathTests
{
    private const int BlockBytes = 4096;

    [Fact]
    public void Protocol_C_every_acknowledged_write_is_on_the_peer_when_the_primary_dies()
    {
        for (int seed = 1; seed <= 40; seed++)
        {
            var pair = new SimReplicaPair(seed, options: new NetworkOptions { MaxDelayMs = 3 });
            pair.ConnectWithAlphaPrimary();
            var acked = new Dictionary<long, byte[]>();
            var writer = new Writer(pair, acked, pair.Random.Fork());
            writer.Start(count: 200);
            long crashAt = pair.Scheduler.NowMs + pair.Random.NextInt64(5, 200);
            pair.Scheduler.RunUntil(crashAt);
            pair.Alpha.Crash(tear: true);
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);

            Assert.True(acked.Count > 0 || crashAt < 20, $"seed {seed}: some writes were acknowledged");
            var survivor = pair.Beta.Disks[0].Contents;
            foreach (var (offset, data) in acked)
            {
                Assert.True(survivor.Slice((int)offset, data.Length).SequenceEqual(data), $"seed {seed}: acknowledged write at {offset} missing on beta");
            }
        }
    }

    [Fact]
    public void Protocol_C_replicas_are_identical_after_a_flush_and_FLUSH_is_durable_on_the_peer()
    {
        var pair = new SimReplicaPair(7);
        pair.ConnectWithAlphaPrimary();
        var acked = new Dictionary<long, byte[]>();
        new Writer(pair, acked, pair.Random.Fork()).Start(count: 300);
        pair.Scheduler.RunUntil(() => acked.Count == 300, 60_000);
        bool flushed = false;
        pair.Alpha.Flush(ok => flushed = ok);
        Assert.True(pair.Scheduler.RunUntil(() => flushed, 10_000));
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents));
        Assert.True(pair.Beta.Disks[0].DurableContents.SequenceEqual(pair.Alpha.Disks[0].Contents), "after FLUSH the peer's data is durable");
        Assert.Equal(0, pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1));
    }

    [Fact]
    public void Protocol_A_after_a_clean_disconnect_every_acknowledged_write_is_on_the_peer()
    {
        var pair = new SimReplicaPair(11, protocol: "A");
        pair.ConnectWithAlphaPrimary();
        var acked = new Dictionary<long, byte[]>();
        new Writer(pair, acked, pair.Random.Fork()).Start(count: 200);
        pair.Scheduler.RunUntil(() => acked.Count == 200, 60_000);
        pair.Alpha.Replica.Disconnect(1);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);
        foreach (var (offset, data) in acked)
        {
            Assert.True(pair.Beta.Disks[0].Contents.Slice((int)offset, data.Length).SequenceEqual(data), $"write at {offset} missing on beta");
        }
    }

    [Fact]
    public void After_a_partition_in_the_middle_of_writing_every_block_that_differs_is_in_the_bitmap()
    {
        for (int seed = 1; seed <= 30; seed++)
        {
            var pair = new SimReplicaPair(100 + seed, options: new NetworkOptions { MaxDelayMs = 5 });
            pair.ConnectWithAlphaPrimary();
            var acked = new Dictionary<long, byte[]>();
            new Writer(pair, acked, pair.Random.Fork()).Start(count: 300);
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + pair.Random.NextInt64(1, 60));
            pair.Network.Partition("alpha", "beta");
            Assert.True(pair.Scheduler.RunUntil(() => acked.Count == 300, 120_000), $"seed {seed}: the Primary finishes its writes without the peer");
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 5_000);

            var bitmap = pair.Alpha.Replica.Volume(0).Bitmaps.Bitmap(0);
            var alpha = pair.Alpha.Disks[0].Contents;
            var beta = pair.Beta.Disks[0].Contents;
            int differing = 0;
            for (long block = 0; block < SimReplicaPair.DiskBytes / BlockBytes; block++)
            {
                if (!alpha.Slice((int)(block * BlockBytes), BlockBytes).SequenceEqual(beta.Slice((int)(block * BlockBytes), BlockBytes)))
                {
                    differing++;
                    Assert.True(bitmap.IsSet(block), $"seed {seed}: block {block} differs between the replicas but is not in the bitmap");
                }
            }
            Assert.True(differing > 0, $"seed {seed}: the partition left the peer behind");
        }
    }

    [Fact]
    public void Writes_while_disconnected_are_exactly_the_bitmap_and_the_reconnect_syncs_from_the_primary()
    {
        var pair = new SimReplicaPair(13);
        pair.ConnectWithAlphaPrimary();
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected, 30_000));
        var acked = new Dictionary<long, byte[]>();
        new Writer(pair, acked, pair.Random.Fork()).Start(count: 50);
        Assert.True(pair.Scheduler.RunUntil(() => acked.Count == 50, 60_000), "a Primary keeps serving without its peer");
        long expected = acked.Keys.Select(o => o / BlockBytes).Distinct().Count() * (long)BlockBytes;
        Assert.True(pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1) >= expected, "every write the peer missed is in the bitmap");

        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.BothConnected, 60_000), string.Join(" | ", pair.Alpha.Log));
        Assert.Equal(ReplicationState.WFBitMapS, pair.Alpha.Replica.ReplicationOf(1, 0));
        Assert.Equal(ReplicationState.WFBitMapT, pair.Beta.Replica.ReplicationOf(0, 0));
    }

    /// <summary>Writes distinct 4 KiB blocks with random data, one after another with small gaps, recording acks.</summary>
    private sealed class Writer(SimReplicaPair pair, Dictionary<long, byte[]> acked, SimRandom random)
    {
        private readonly HashSet<long> used = [];

        public void Start(int count)
        {
            for (int i = 0; i < count; i++)
            {
                long offset;
                do
                {
                    offset = random.NextInt64(0, SimReplicaPair.DiskBytes / BlockBytes) * BlockBytes;
                }
                while (!used.Add(offset));
                var data = new byte[BlockBytes];
                random.Fill(data);
                pair.Scheduler.After(i / 4, () =>
                {
                    if (!pair.Alpha.Crashed)
                    {
                        pair.Alpha.Write(0, offset, data, ok =>
                        {
                            if (ok)
                            {
                                acked[offset] = data;
                            }
                        });
                    }
                });
            }
        }
    }
}

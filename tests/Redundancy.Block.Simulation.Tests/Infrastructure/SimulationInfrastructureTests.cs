namespace Redundancy.Block.Simulation.Infrastructure;

public class SimulationInfrastructureTests
{
    [Fact]
    public void Scheduler_runs_events_in_time_then_insertion_order()
    {
        var scheduler = new EventScheduler();
        var seen = new List<string>();
        scheduler.After(5, () => seen.Add("b"));
        scheduler.After(1, () => seen.Add("a"));
        scheduler.After(5, () => seen.Add("c"));
        scheduler.RunUntil(10);
        Assert.Equal(["a", "b", "c"], seen);
        Assert.Equal(10, scheduler.NowMs);
    }

    [Fact]
    public void Disk_loses_unflushed_writes_on_crash_but_keeps_flushed_and_fua_ones()
    {
        var disk = new SimulatedDisk("d", 64 * 1024);
        disk.WriteAsync(0, Fill(4096, 1), fua: false);
        disk.FlushAsync();
        disk.WriteAsync(4096, Fill(4096, 2), fua: false);
        disk.WriteAsync(8192, Fill(4096, 3), fua: true);
        Assert.Equal(2, disk.Contents[4096]);
        disk.Crash(new SimRandom(1), tear: false);
        Assert.Equal(1, disk.Contents[0]);
        Assert.Equal(0, disk.Contents[4096]);
        Assert.Equal(3, disk.Contents[8192]);
    }

    [Fact]
    public void A_torn_crash_keeps_fua_data_over_older_cached_writes()
    {
        for (int seed = 0; seed < 50; seed++)
        {
            var disk = new SimulatedDisk("d", 16 * 1024);
            disk.WriteAsync(0, Fill(4096, 7), fua: false);
            disk.WriteAsync(0, Fill(4096, 9), fua: true);
            disk.Crash(new SimRandom(seed), tear: true);
            Assert.All(disk.Contents[..4096].ToArray(), b => Assert.Equal(9, b));
        }
    }

    [Fact]
    public void A_torn_crash_lands_whole_sectors_of_unflushed_writes_or_nothing()
    {
        var disk = new SimulatedDisk("d", 64 * 1024);
        disk.WriteAsync(0, Fill(8192, 5), fua: false);
        disk.Crash(new SimRandom(3), tear: true);
        for (int sector = 0; sector < 8192; sector += SimulatedDisk.SectorBytes)
        {
            var bytes = disk.Contents.Slice(sector, SimulatedDisk.SectorBytes).ToArray();
            Assert.True(bytes.All(b => b == 5) || bytes.All(b => b == 0), $"sector at {sector} is torn inside");
        }
    }

    [Fact]
    public void Latent_read_errors_fail_reads_until_the_block_is_rewritten()
    {
        var disk = new SimulatedDisk("d", 64 * 1024);
        disk.AddLatentReadError(4096);
        Assert.True(disk.ReadAsync(4096, new byte[512]).IsFaulted);
        Assert.False(disk.ReadAsync(0, new byte[4096]).IsFaulted);
        disk.WriteAsync(4096, Fill(4096, 1), fua: false);
        Assert.False(disk.ReadAsync(4096, new byte[512]).IsFaulted);
    }

    [Fact]
    public void Connections_deliver_in_order_through_delays_losses_and_a_healed_partition()
    {
        var scheduler = new EventScheduler();
        var network = new SimulatedNetwork(scheduler, new SimRandom(42), new NetworkOptions { MaxDelayMs = 20, LossProbability = 0.3 });
        var received = new List<int>();
        network.Listen("b", c => c.OnReceive = m => received.Add(m[0]));
        SimConnection? client = null;
        network.Dial("a", "b", c => client = c, () => Assert.Fail("dial failed"));
        scheduler.RunUntil(100);
        Assert.NotNull(client);
        for (int i = 0; i < 50; i++)
        {
            client!.Send([(byte)i]);
            if (i == 20)
            {
                network.Partition("a", "b");
            }
        }
        scheduler.RunUntil(scheduler.NowMs + 2000);
        Assert.True(received.Count <= 21, "nothing crosses the partition");
        network.HealAll();
        scheduler.RunUntil(scheduler.NowMs + 2000);
        Assert.Equal(Enumerable.Range(0, 50).ToList(), received);
    }

    [Fact]
    public void A_bandwidth_limit_queues_messages_behind_each_other_and_unset_changes_nothing()
    {
        static List<long> Arrivals(long bandwidthBytesPerSecond)
        {
            var scheduler = new EventScheduler();
            var network = new SimulatedNetwork(scheduler, new SimRandom(5),
                new NetworkOptions { MinDelayMs = 10, MaxDelayMs = 10, BandwidthBytesPerSecond = bandwidthBytesPerSecond });
            var arrivals = new List<long>();
            network.Listen("b", c => c.OnReceive = _ => arrivals.Add(scheduler.NowMs));
            SimConnection? client = null;
            network.Dial("a", "b", c => client = c, () => Assert.Fail("dial failed"));
            scheduler.RunUntil(100);
            for (int i = 0; i < 4; i++)
            {
                client!.Send(new byte[100_000]); // 100 ms each at 1 MB/s
            }
            scheduler.RunUntil(scheduler.NowMs + 2000);
            return arrivals;
        }
        // Sent at 100 ms: the first leaves the wire at 200 and arrives 10 ms later, the rest queue behind it.
        Assert.Equal([210, 310, 410, 510], Arrivals(1_000_000));
        Assert.Equal([110, 110, 110, 110], Arrivals(0));
    }

    [Fact]
    public void Dialling_an_unreachable_node_fails_after_the_timeout()
    {
        var scheduler = new EventScheduler();
        var network = new SimulatedNetwork(scheduler, new SimRandom(1), new NetworkOptions());
        network.Listen("b", _ => { });
        network.Partition("a", "b");
        bool failed = false;
        network.Dial("a", "b", _ => Assert.Fail("connected across a partition"), () => failed = true);
        scheduler.RunUntil(2000);
        Assert.True(failed);
    }

    [Fact]
    public void The_same_seed_replays_the_same_run()
    {
        static List<(long, int)> Run(int seed)
        {
            var scheduler = new EventScheduler();
            var network = new SimulatedNetwork(scheduler, new SimRandom(seed), new NetworkOptions { MaxDelayMs = 50, LossProbability = 0.2 });
            var log = new List<(long, int)>();
            network.Listen("b", c => c.OnReceive = m => log.Add((scheduler.NowMs, m[0])));
            network.Dial("a", "b", c =>
            {
                for (int i = 0; i < 20; i++)
                {
                    c.Send([(byte)i]);
                }
            }, () => { });
            scheduler.RunUntil(5000);
            return log;
        }
        Assert.Equal(Run(7), Run(7));
        Assert.NotEqual(Run(7), Run(8));
    }

    private static byte[] Fill(int length, byte value) => Enumerable.Repeat(value, length).ToArray();
}

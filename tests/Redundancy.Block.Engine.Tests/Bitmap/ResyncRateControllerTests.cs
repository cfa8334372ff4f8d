using Redundancy.Block.Engine.Bitmap.Resync;

namespace Redundancy.Block.Engine.Tests.Bitmap;

public class ResyncRateControllerTests
{
    private const long KiB = 1024, MiB = 1024 * 1024;

    /// <summary>
    /// A peer serving resync requests FIFO at <paramref name="bandwidthBytesPerSec"/> after a fixed
    /// latency; drives the controller every step and records in-flight bytes and requested totals.
    /// </summary>
    private static (long Requested, List<long> InFlight) Simulate(ResyncRateController c, long seconds, long bandwidthBytesPerSec,
        long latencyMs, long stepMs = ResyncRateController.StepMs)
    {
        var queue = new LinkedList<(long IssuedMs, long Bytes)>();
        long now = 0, completed = 0, inFlight = 0, requested = 0;
        var samples = new List<long>();
        while (now < seconds * 1000)
        {
            long got = c.NextTurn(stepMs, completed, inFlight);
            Assert.Equal(0, got % 4096);
            Assert.True(got >= 0);
            requested += got;
            inFlight += got;
            queue.AddLast((now, got));
            now += stepMs;
            completed = 0;
            long capacity = bandwidthBytesPerSec * stepMs / 1000;
            while (capacity > 0 && queue.First is { } head && head.Value.IssuedMs + latencyMs <= now)
            {
                long take = Math.Min(capacity, head.Value.Bytes);
                capacity -= take;
                completed += take;
                if (take == head.Value.Bytes)
                {
                    queue.RemoveFirst();
                }
                else
                {
                    head.Value = (head.Value.IssuedMs, head.Value.Bytes - take);
                }
            }

            inFlight -= completed;
            samples.Add(inFlight);
        }

        return (requested, samples);
    }

    [Theory]
    [InlineData(250, 100)]
    [InlineData(250, 37)]
    [InlineData(40_000, 100)]
    [InlineData(3, 100)]
    public void Fixed_resync_rate_is_honoured(long rateKib, long stepMs)
    {
        var c = new ResyncRateController(new ResyncRateSettings { CPlanAheadMs = 0, ResyncRateKibPerSec = rateKib });
        Assert.False(c.IsDynamic);
        (long requested, _) = Simulate(c, 30, 1L << 40, 5, stepMs);
        long expected = rateKib * KiB * (((30_000 + stepMs - 1) / stepMs) * stepMs) / 1000;
        Assert.InRange(requested, expected - 4096, expected);
    }

    [Fact]
    public void The_dynamic_controller_starts_from_resync_rate()
    {
        var c = new ResyncRateController(new ResyncRateSettings { ResyncRateKibPerSec = 2000, CPlanAheadMs = 2000 });
        Assert.True(c.IsDynamic);
        Assert.Equal(200 * KiB, c.NextTurn(100, 0, 0)); // resync-rate × one step
    }

    [Theory]
    [InlineData(1 * MiB, 20 * MiB, 50)]
    [InlineData(4 * MiB, 200 * MiB, 5)]
    [InlineData(256 * KiB, 5 * MiB, 200)]
    public void The_dynamic_controller_converges_to_the_fill_target(long fillBytes, long bandwidth, long latencyMs)
    {
        var c = new ResyncRateController(new ResyncRateSettings { CFillTargetBytes = fillBytes, CMaxRateKibPerSec = 1024 * 1024 });
        (long requested, List<long> inFlight) = Simulate(c, 40, bandwidth, latencyMs);
        double settled = inFlight.Skip(inFlight.Count - 100).Average(); // the last 10 s
        Assert.InRange(settled, fillBytes * 0.85, fillBytes * 1.15);
        double throughput = requested / 40.0;
        Assert.True(throughput <= bandwidth * 1.05 + (fillBytes / 40.0), $"no more than the link carries: {throughput}");
    }

    [Fact]
    public void The_delay_target_keeps_that_much_time_in_flight()
    {
        var c = new ResyncRateController(new ResyncRateSettings { CFillTargetBytes = 0, CDelayTargetMs = 500, CMaxRateKibPerSec = 0 });
        (_, List<long> inFlight) = Simulate(c, 60, 8 * MiB, 10);
        double settled = inFlight.Skip(inFlight.Count - 100).Average();
        Assert.InRange(settled, 4 * MiB * 0.8, 4 * MiB * 1.2); // 0.5 s at 8 MiB/s
    }

    [Theory]
    [InlineData(100)]
    [InlineData(250)]
    [InlineData(1000)]
    public void The_dynamic_controller_never_exceeds_c_max_rate(long stepMs)
    {
        const long maxKib = 10 * 1024;
        var c = new ResyncRateController(new ResyncRateSettings { CFillTargetBytes = 512 * MiB, CMaxRateKibPerSec = maxKib });
        long seconds = 20;
        (long requested, _) = Simulate(c, seconds, 1L << 40, 1, stepMs);
        Assert.True(requested <= maxKib * KiB * seconds, $"requested {requested}");
        Assert.True(requested >= maxKib * KiB * seconds * 0.9, $"requested {requested}");
    }

    [Fact]
    public void Application_io_throttles_resync_down_to_c_min_rate()
    {
        var c = new ResyncRateController(new ResyncRateSettings { CPlanAheadMs = 0, ResyncRateKibPerSec = 4096, CMinRateKibPerSec = 1024 });
        for (int i = 0; i < 30; i++)
        {
            c.NextTurn(100, 400 * KiB, 0); // 4 MiB/s coming back
        }

        Assert.Equal(4000 * KiB, c.RecentRateBytesPerSec);
        Assert.Equal(0, c.NextTurn(100, 400 * KiB, 0, applicationIoActive: true)); // above c-min-rate: throttled
        Assert.True(c.NextTurn(100, 400 * KiB, 0) > 0);
        for (int i = 0; i < 40; i++)
        {
            c.NextTurn(100, 50 * KiB, 0); // 500 KiB/s: below c-min-rate
        }

        Assert.True(c.NextTurn(100, 50 * KiB, 0, applicationIoActive: true) > 0);
    }

    [Fact]
    public void In_flight_data_is_bounded_when_asked()
    {
        var c = new ResyncRateController(new ResyncRateSettings { CPlanAheadMs = 0, ResyncRateKibPerSec = 100 * 1024, MaxInFlightBytes = 1 * MiB });
        Assert.Equal(1 * MiB, c.NextTurn(100, 0, 0));
        Assert.Equal(256 * KiB, c.NextTurn(100, 0, 768 * KiB));
        Assert.Equal(0, c.NextTurn(100, 0, 1 * MiB));
    }
}

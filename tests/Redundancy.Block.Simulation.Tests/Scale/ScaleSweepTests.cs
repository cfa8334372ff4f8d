using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// A small sweep of the simulation at scale inside `dotnet test` (scripts/sim runs thousands):
/// every seed passes every checker, and the run really
/// wrote, acknowledged, checked and injected faults.
/// </summary>
public class ScaleSweepTests
{
    /// <summary>Runs seeds 1..<paramref name="count"/> and fails with the first failing seed's replay command (scripts/sim --seed S <paramref name="replayFlags"/>) and logs.</summary>
    private static List<ScaleResult> PassingSeeds(int count, Func<int, ScaleResult> run, string replayFlags)
    {
        var results = Enumerable.Range(1, count).Select(run).ToList();
        foreach (var result in results.Where(r => r.Failure is not null))
        {
            Assert.Fail($"seed {result.Seed} (replay: scripts/sim --seed {result.Seed}{replayFlags}): {result.Failure}\n{result.Logs}");
        }
        return results;
    }

    [Fact]
    public void Forty_seeds_pass_every_checker()
    {
        var results = PassingSeeds(40, seed => ScaleRun.Run(seed), string.Empty);
        Assert.True(results.Sum(r => r.WritesAcknowledged) > 500, "the workload wrote");
        Assert.True(results.Sum(r => r.AcknowledgedChecks) > 10_000, "the acknowledged-write checker compared");
        Assert.True(results.Sum(r => r.BitmapChecks) > 100, "the bitmap checker ran");
        Assert.True(results.SelectMany(r => r.Faults.Keys).Distinct().Count() >= 12, "faults of many kinds were injected");
        Assert.Contains(results, r => r.Faults.Keys.Any(k => k.StartsWith("crash", StringComparison.Ordinal)));
        Assert.Contains(results, r => r.Operator.Keys.Any(k => k.StartsWith("connect --discard-my-data", StringComparison.Ordinal)));
    }

    /// <summary>
    /// Dual-primary (allow-two-primaries, both nodes Primary, writing the same blocks at once) through
    /// the same faults: every seed passes every checker, and the run really had two Primaries writing,
    /// concurrent writes resolved, and split brains with two Primaries resolved at the end.
    /// </summary>
    [Fact]
    public void Three_hundred_dual_primary_seeds_pass_every_checker()
    {
        var results = PassingSeeds(300, seed => ScaleRun.Run(seed, dualPrimary: true), " --dual-primary");
        Assert.True(results.Sum(r => r.WritesAcknowledged) > 10_000, "the workload wrote");
        Assert.True(results.Sum(r => r.AcknowledgedChecks) > 300_000, "the acknowledged-write checker compared");
        Assert.True(results.Sum(r => r.ConcurrentWrites) > 1_000, "both Primaries wrote the same blocks at once");
        Assert.True(results.Sum(r => r.Operator.GetValueOrDefault("primary Success")) > 600, "both nodes were promoted, again and again");
        Assert.Contains(results, r => r.Faults.Keys.Any(k => k.StartsWith("crash", StringComparison.Ordinal)));
        Assert.Contains(results, r => r.Operator.Keys.Any(k => k.StartsWith("connect --discard-my-data", StringComparison.Ordinal)));
    }

    /// <summary>
    /// Protocols A and B through the same faults: the writer owes what it acknowledged, the peer gets it
    /// by replication or resync (bitmap coverage, convergence); every seed passes every checker.
    /// </summary>
    [Theory]
    [InlineData(ReplicationProtocol.A)]
    [InlineData(ReplicationProtocol.B)]
    public void Asynchronous_protocol_seeds_pass_every_checker(ReplicationProtocol protocol)
    {
        var results = PassingSeeds(100, seed => ScaleRun.Run(seed, protocol: protocol), $" --protocol {protocol}");
        Assert.True(results.Sum(r => r.WritesAcknowledged) > 1_500, "the workload wrote");
        Assert.True(results.Sum(r => r.AcknowledgedChecks) > 50_000, "the acknowledged-write checker compared");
        Assert.True(results.Sum(r => r.BitmapChecks) > 1_000, "the bitmap checker ran");
        Assert.Contains(results, r => r.Faults.Keys.Any(k => k.StartsWith("crash", StringComparison.Ordinal)));
    }

    /// <summary>
    /// Slow disks (a node's disk takes up to 500 ms a request for a while) on top of the same faults,
    /// with one Primary and with two: writes, flushes and barriers are still in flight when
    /// connections end and nodes are promoted.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Slow_disk_seeds_pass_every_checker(bool dualPrimary)
    {
        var results = PassingSeeds(150, seed => ScaleRun.Run(seed, dualPrimary: dualPrimary, slowDisks: true), $" --slow-disks{(dualPrimary ? " --dual-primary" : string.Empty)}");
        Assert.True(results.Sum(r => r.Faults.GetValueOrDefault("slow disk")) > 150, "disks were slowed down");
        Assert.True(results.Sum(r => r.AcknowledgedChecks) > 100_000, "the acknowledged-write checker compared");
    }
}

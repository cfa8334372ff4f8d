using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Simulation.Infrastructure;

/// <summary>
/// The simulator's only source of randomness: seeded, so a run replays exactly from its seed.
/// Everything random in a simulation (faults, delays, UUIDs, workload) draws from one of these.
/// </summary>
public sealed class SimRandom(int seed) : IRandom
{
    private readonly Random random = new(seed);

    public int Seed { get; } = seed;

    public ulong NextUInt64()
    {
        Span<byte> bytes = stackalloc byte[8];
        random.NextBytes(bytes);
        return BitConverter.ToUInt64(bytes);
    }

    /// <summary>An integer in [minInclusive, maxExclusive).</summary>
    public int Next(int minInclusive, int maxExclusive) => random.Next(minInclusive, maxExclusive);

    public long NextInt64(long minInclusive, long maxExclusive) => random.NextInt64(minInclusive, maxExclusive);

    /// <summary>True with probability <paramref name="p"/>.</summary>
    public bool Chance(double p) => p > 0 && random.NextDouble() < p;

    public void Fill(Span<byte> bytes) => random.NextBytes(bytes);

    /// <summary>A child generator for an independent stream (e.g. one per node), still determined by the seed.</summary>
    public SimRandom Fork() => new(random.Next());
}

namespace Redundancy.Block.Simulation.Scale;

/// <summary>What one seed did (steps, writes, faults by kind, operator outcomes) and, if a checker fired, why.</summary>
public sealed class ScaleResult(int seed)
{
    public int Seed { get; } = seed;

    public long Steps { get; set; }

    public long WritesIssued { get; set; }

    public long WritesAcknowledged { get; set; }

    public long WritesForgiven { get; set; }

    /// <summary>Dual-primary: writes issued while the other Primary's write to the same block was in flight.</summary>
    public long ConcurrentWrites { get; set; }

    /// <summary>(node, block) comparisons against a required acknowledged write, over all checks.</summary>
    public long AcknowledgedChecks { get; set; }

    public long BitmapChecks { get; set; }

    public long TransitionsObserved { get; set; }

    public Dictionary<string, long> Faults { get; } = [];

    public Dictionary<string, long> Operator { get; } = [];

    /// <summary>The checker that fired (or the exception the engine threw), null when the seed passed.</summary>
    public string? Failure { get; set; }

    /// <summary>The nodes' logs, kept only for a failing seed.</summary>
    public string? Logs { get; set; }

    public void Fault(string kind, long count = 1)
    {
        if (count > 0)
        {
            Faults[kind] = Faults.GetValueOrDefault(kind) + count;
        }
    }
}

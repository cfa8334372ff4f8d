namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// A checker found the replication core breaking one of its promises: the run stops here and the
/// failing seed is reported with the checker's name and what it saw.
/// </summary>
public sealed class SimulationViolation(string checker, string detail) : Exception($"{checker}: {detail}")
{
    public string Checker { get; } = checker;

    public string Detail { get; } = detail;
}

// The registry of fuzz targets, in the order a pass runs them.
using Redundancy.Block.Fuzz.Targets;

namespace Redundancy.Block.Fuzz;

public static class FuzzTargets
{
    public static IReadOnlyList<IFuzzTarget> All() =>
        [new NbdParsersTarget(), new NbdSessionTarget(), new PeerFramesTarget(), new ReplicaFramesTarget(), new MetadataTarget(), new ConfigTarget()];

    /// <summary>The targets named in a comma list (all when null); ArgumentException for an unknown name.</summary>
    public static IReadOnlyList<IFuzzTarget> Select(string? names)
    {
        var all = All();
        if (string.IsNullOrEmpty(names))
        {
            return all;
        }

        return [.. names.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(name =>
            all.FirstOrDefault(target => target.Name == name)
            ?? throw new ArgumentException($"unknown target '{name}', expected one of: {string.Join(", ", all.Select(t => t.Name))}"))];
    }
}

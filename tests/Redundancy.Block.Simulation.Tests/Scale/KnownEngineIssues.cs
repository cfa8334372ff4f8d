namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// Engine bugs the simulation found that are not fixed yet, each matched by its checker and the
/// words of its report. A seed that hits one still fails its check and is printed with its replay
/// command; the runner counts it apart ("known engine issue") so that CI fails only on new ones,
/// as an integration case marked KNOWN-FAILING does. `scripts/sim --strict` counts them as
/// failures. Delete an entry once its fix lands: the seeds then must pass.
/// </summary>
public static class KnownEngineIssues
{
    public static readonly IReadOnlyList<KnownEngineIssue> All =
    [
        new("unrelated-data-after-interrupted-sync", "convergence", "Unrelated data",
            "a SyncSource that missed the end of its resync (or whose sync UUID the target never took) keeps the sync UUID as its bitmap UUID; its next new current UUID goes to the history instead of that slot (DRBD 8.4's drbd_uuid_new_current overwrites it), and once both sides moved on apart no rule relates their UUIDs"),
    ];

    /// <summary>The known issue <paramref name="failure"/> (a checker's message) is, or null.</summary>
    public static KnownEngineIssue? Match(string? failure) =>
        failure is null ? null : All.FirstOrDefault(i => failure.StartsWith(i.Checker + ":", StringComparison.Ordinal) && failure.Contains(i.Words, StringComparison.Ordinal));
}

/// <summary>One known engine bug: its name, the checker that fires, words its report holds, and what goes wrong.</summary>
public sealed record KnownEngineIssue(string Name, string Checker, string Words, string Description);

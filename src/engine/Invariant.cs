using System.Diagnostics.CodeAnalysis;

namespace Redundancy.Block.Engine;

/// <summary>
/// Always-on assertions for internal invariants. Unlike Debug.Assert they stay in Release builds:
/// a broken invariant in a replication engine means data loss, so we fail fast instead.
/// Untrusted input (NBD clients, peers, config files) is never checked with these.
/// </summary>
public static class Invariant
{
    public static void Assert([DoesNotReturnIf(false)] bool condition, string message)
    {
        if (!condition)
        {
            Fail(message);
        }
    }

    [DoesNotReturn]
    public static void Fail(string message) => throw new InvariantViolationException(message);
}

/// <summary>Thrown only for bugs: an internal invariant did not hold.</summary>
public sealed class InvariantViolationException(string message) : Exception("invariant violated: " + message);

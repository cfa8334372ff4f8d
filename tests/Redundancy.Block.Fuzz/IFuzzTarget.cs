// What the fuzz engine needs from one target: its valid seed inputs, an optional repair step that
// restores checksums after a mutation (so mutated inputs get past the CRC and reach the decoders),
// the oracle-checked execution of one input, and fixed checks (e.g. bounded allocations).
namespace Redundancy.Block.Fuzz;

/// <summary>One parser (or server) under fuzz.</summary>
public interface IFuzzTarget
{
    /// <summary>Short name: --target and the corpus directory tests/fuzz/corpus/NAME.</summary>
    string Name { get; }

    /// <summary>Valid inputs, by file name (written by `scripts/fuzz --write-seeds`).</summary>
    IReadOnlyList<(string Name, byte[] Input)> Seeds();

    /// <summary>Tokens the mutator may insert (keywords, magics); empty when none.</summary>
    IReadOnlyList<byte[]> Dictionary { get; }

    /// <summary>
    /// Repairs a mutated input in place or returns a new one: recomputes checksums so the decoders
    /// behind them are reached. Called on most (not all) mutated inputs.
    /// </summary>
    byte[] Repair(byte[] input);

    /// <summary>
    /// Runs the target on <paramref name="input"/>. Returns a short outcome signature (digits removed)
    /// used to grow the corpus; throws <see cref="FuzzOracleException"/> or any other exception on an
    /// unacceptable outcome. The target's documented errors must be caught and turned into outcomes.
    /// </summary>
    string Execute(byte[] input);

    /// <summary>Fixed checks run once per fuzz pass: null when passed, else what failed.</summary>
    IReadOnlyList<(string Name, Func<string?> Check)> Checks();
}

/// <summary>An input broke a property the target promises (not an exception of the parser itself).</summary>
public sealed class FuzzOracleException(string message) : Exception(message);

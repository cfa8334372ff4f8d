namespace Redundancy.Block.Engine.Io;

/// <summary>
/// Randomness the engine uses (generation UUIDs, challenges). Production passes a cryptographic
/// source; the simulator a seeded one, so runs replay exactly.
/// </summary>
public interface IRandom
{
    ulong NextUInt64();
}

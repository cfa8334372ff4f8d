using System.Security.Cryptography;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Resources;

/// <summary>Production randomness for generation UUIDs: unpredictable, so two nodes never pick the same.</summary>
internal sealed class CryptoRandom : IRandom
{
    public static readonly CryptoRandom Instance = new();

    public ulong NextUInt64()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        return BitConverter.ToUInt64(bytes);
    }
}

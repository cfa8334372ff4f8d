// CRC32C (Castagnoli) over metadata blocks, as DRBD checksums its superblock and activity-log
// transactions, and for the crc32c digest. System.IO.Hashing's CRC-32C parameter set, which uses
// the CPU's crc32 instruction where there is one.
using System.IO.Hashing;

namespace Redundancy.Block.Engine.Metadata;

internal static class Crc32C
{
    /// <summary>What the checksum field counts as while the checksum is computed.</summary>
    private static ReadOnlySpan<byte> ZeroedField => [0, 0, 0, 0];

    /// <summary>Standard CRC32C (initial value and final xor ~0) of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);

    /// <summary>
    /// CRC32C of a block whose 4-byte checksum field at <paramref name="crcOffset"/> counts as zero,
    /// so the block can be checked in place without copying it.
    /// </summary>
    public static uint ComputeWithZeroedField(ReadOnlySpan<byte> block, int crcOffset)
    {
        Invariant.Assert(crcOffset >= 0 && crcOffset + 4 <= block.Length, "crc field inside the block");
        var crc = new Crc32(Crc32ParameterSet.Crc32C);
        crc.Append(block[..crcOffset]);
        crc.Append(ZeroedField);
        crc.Append(block[(crcOffset + 4)..]);
        return crc.GetCurrentHashAsUInt32();
    }
}

// CRC32C (Castagnoli) over metadata blocks, as DRBD checksums its superblock and activity-log
// transactions. Uses the CPU's crc32 instruction through BitOperations (8-byte words, then the tail).
using System.Buffers.Binary;
using System.Numerics;

namespace Redundancy.Block.Engine.Metadata;

internal static class Crc32C
{
    /// <summary>Standard CRC32C (initial value and final xor ~0) of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Append(~0u, data);

    /// <summary>
    /// CRC32C of a block whose 4-byte checksum field at <paramref name="crcOffset"/> counts as zero,
    /// so the block can be checked in place without copying it.
    /// </summary>
    public static uint ComputeWithZeroedField(ReadOnlySpan<byte> block, int crcOffset)
    {
        Invariant.Assert(crcOffset >= 0 && crcOffset + 4 <= block.Length, "crc field inside the block");
        uint crc = Append(~0u, block[..crcOffset]);
        crc = BitOperations.Crc32C(crc, 0u);
        crc = Append(crc, block[(crcOffset + 4)..]);
        return ~crc;
    }

    private static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        }

        for (; i < data.Length; i++)
        {
            crc = BitOperations.Crc32C(crc, data[i]);
        }

        return crc;
    }
}

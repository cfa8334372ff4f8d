using System.Text;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Metadata;

/// <summary>
/// CRC32C is in the superblock, every activity-log transaction and crc32c digests: it must stay
/// bit-identical to the standard whatever computes it.
/// </summary>
public class Crc32CTests
{
    /// <summary>The definition, one bit at a time (reflected polynomial 0x82F63B78, init and final xor ~0).</summary>
    private static uint Bitwise(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int i = 0; i < 8; i++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
            }
        }
        return ~crc;
    }

    [Fact]
    public void Crc32c_matches_the_standard_check_value()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32])); // RFC 3720 B.4
        Assert.Equal(0x62A8AB43u, Crc32C.Compute(Enumerable.Repeat((byte)0xFF, 32).ToArray()));
        Assert.Equal(0u, Crc32C.Compute([]));
        byte[] data = Encoding.ASCII.GetBytes("0123456789abcdefghij");
        uint inPlace = Crc32C.ComputeWithZeroedField(data, 9);
        data.AsSpan(9, 4).Clear();
        Assert.Equal(Crc32C.Compute(data), inPlace);
    }

    [Fact]
    public void Random_inputs_of_every_length_agree_with_the_bitwise_definition()
    {
        var random = new Random(32);
        for (int length = 0; length <= 4100; length += length < 80 ? 1 : 97)
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.Equal(Bitwise(data), Crc32C.Compute(data));
        }
    }

    [Fact]
    public void The_checksum_field_counts_as_zero_wherever_it_is()
    {
        // Both metadata blocks (4 KiB, field at 16) and the edges: field first, field last, nothing else.
        var random = new Random(16);
        foreach ((int length, int offset) in new[] { (4096, 16), (4096, 0), (4096, 4092), (4, 0), (13, 9), (512, 100) })
        {
            var block = new byte[length];
            random.NextBytes(block);
            uint inPlace = Crc32C.ComputeWithZeroedField(block, offset);
            block.AsSpan(offset, 4).Clear();
            Assert.Equal(Bitwise(block), inPlace);
        }
    }
}

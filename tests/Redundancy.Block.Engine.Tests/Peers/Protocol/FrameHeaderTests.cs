using System.Buffers.Binary;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Tests.Peers.Protocol;

public class FrameHeaderTests
{
    [Fact]
    public void Header_is_20_bytes_big_endian_with_checksum()
    {
        Assert.Equal(20, FrameHeader.Size);
        var header = new FrameHeader(MessageType.Data, 3, 0x01020304, FrameFlags.Optional);
        byte[] bytes = new byte[FrameHeader.Size];
        Assert.Equal(FrameHeader.Size, header.Write(bytes));
        Assert.Equal(new byte[] { 0x52, 0x42, 0x50, 0x46, 0x00, 0x20, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04, 0x00, 0x01, 0x00, 0x00 }, bytes[..16]);
        Assert.True(FrameHeader.TryRead(bytes, out var back, out string? error), error);
        Assert.Equal(header, back);
        Assert.Null(error);
    }

    [Theory]
    [InlineData(0, "bad frame magic")]
    [InlineData(5, "checksum mismatch")]
    [InlineData(9, "checksum mismatch")]
    [InlineData(17, "checksum mismatch")]
    public void Corrupted_header_is_refused(int index, string expected)
    {
        byte[] bytes = new byte[FrameHeader.Size];
        new FrameHeader(MessageType.Ping, 0, 0).Write(bytes);
        bytes[index] ^= 0x10;
        Assert.False(FrameHeader.TryRead(bytes, out _, out string? error));
        Assert.Contains(expected, error);
    }

    [Theory]
    [InlineData(12, 0x80)] // unknown flag bit
    [InlineData(15, 0x01)] // reserved
    public void Unknown_flags_and_reserved_bits_are_refused_even_with_a_valid_checksum(int index, byte value)
    {
        byte[] bytes = new byte[FrameHeader.Size];
        new FrameHeader(MessageType.Ping, 0, 0).Write(bytes);
        bytes[index] |= value;
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(16), Crc(bytes));
        Assert.False(FrameHeader.TryRead(bytes, out _, out string? error));
        Assert.Contains("unknown flags", error);
    }

    [Fact]
    public void Short_header_is_refused()
    {
        Assert.False(FrameHeader.TryRead(new byte[FrameHeader.Size - 1], out _, out string? error));
        Assert.Contains("needs 20 bytes", error);
    }

    /// <summary>The header checksum, computed independently of the production code.</summary>
    internal static uint Crc(ReadOnlySpan<byte> header)
    {
        uint crc = ~0u;
        foreach (byte b in header[..16])
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
    public void Checksum_is_standard_crc32c()
    {
        byte[] bytes = new byte[FrameHeader.Size];
        new FrameHeader(MessageType.Uuids, 7, 96).Write(bytes);
        Assert.Equal(Crc(bytes), BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(16)));
    }
}

using System.Buffers;
using System.Text;
using Redundancy.Block.Engine.Compression;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Replication;
using static Redundancy.Block.Engine.Tests.Peers.Protocol.WireTestHelpers;

namespace Redundancy.Block.Engine.Tests.Replication;

/// <summary>Data frames compressed straight into their pooled buffer, and received blocks decompressed into theirs.</summary>
public class PooledBuffersTests
{
    private static readonly byte[] Text = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 400).Select(i => $"row {i:D5} ok\n")))[..4096];

    private static (FrameHeader Header, DataMessage Message, byte[] Data) Parse(ReadOnlySpan<byte> frame)
    {
        var buffer = new ReadOnlySequence<byte>(frame.ToArray());
        Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out var header, out var payload, out string? error), error);
        Assert.True(DataMessage.TryRead(payload, out var message, out var data, out error), error);
        return (header, message, data.ToArray());
    }

    [Fact]
    public void A_compressible_block_is_framed_compressed_under_the_compressed_message()
    {
        var plain = new DataMessage(8192, 4096, 5, 6, DataFlags.SendWriteAck);
        using var frame = PooledFrame.CreateCompressed(3, plain, plain with { Flags = plain.Flags | DataFlags.Compressed }, Text);
        Assert.True(frame.CarriesPayload);
        var (header, message, data) = Parse(frame.Span);
        Assert.Equal(3, header.Volume);
        Assert.Equal(plain with { Flags = DataFlags.SendWriteAck | DataFlags.Compressed }, message);
        Assert.True(data.Length < Text.Length / 2, $"{data.Length} bytes");
        var output = new byte[4096];
        Assert.True(Lz4Block.TryDecompress(data, output, out string? error), error);
        Assert.Equal(Text, output);
    }

    [Fact]
    public void An_incompressible_block_is_sent_as_it_is_after_the_head_of_the_plain_message()
    {
        var random = new byte[4096];
        new Random(1).NextBytes(random);
        var plain = new DataMessage(0, 4096, 5, 6, DataFlags.Fua);
        using var frame = PooledFrame.CreateCompressed(0, plain, plain with { Flags = plain.Flags | DataFlags.Compressed }, random);
        Assert.False(frame.CarriesPayload); // the host sends the block from where it is, after the head
        var (_, message, data) = Parse([.. frame.Span, .. random]);
        Assert.Equal(plain, message);
        Assert.Equal(random, data);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(100_000)]
    public void A_compressed_payload_in_any_number_of_segments_decompresses_to_its_declared_length(int segmentBytes)
    {
        var compressed = new byte[Lz4Block.MaxCompressedLength(Text.Length)];
        Assert.True(Lz4Block.TryCompress(Text, compressed, out int written));
        using var block = PooledBlock.Decompress(Segmented(compressed[..written], segmentBytes), (uint)Text.Length, 1 << 20, out string? error);
        Assert.True(block is not null, error);
        Assert.Equal(Text, block.Memory.ToArray());
    }

    [Fact]
    public void A_declared_length_beyond_one_frame_or_a_malformed_block_gives_no_block_and_a_reason()
    {
        Assert.Null(PooledBlock.Decompress(new ReadOnlySequence<byte>([0x00]), uint.MaxValue, 1 << 20, out string? error));
        Assert.Contains($"declares {uint.MaxValue} bytes, more than one frame", error, StringComparison.Ordinal);
        Assert.Null(PooledBlock.Decompress(new ReadOnlySequence<byte>([0x10, 1, 0, 0]), 16, 1 << 20, out error));
        Assert.Contains("malformed", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_payload_declaring_more_than_it_can_decode_to_is_refused_before_allocating()
    {
        // Found by the fuzzer's compression-bomb check: 16 bytes declaring 64 MiB made the receiver rent 64 MiB.
        Assert.Null(PooledBlock.Decompress(new ReadOnlySequence<byte>(new byte[16]), 64u << 20, 64 << 20, out string? error));
        Assert.Contains("can decode to", error, StringComparison.Ordinal);
        Assert.Null(PooledBlock.Decompress(new ReadOnlySequence<byte>([0x10, 1, 0, 0]), 4096, 1 << 20, out error));
        Assert.Contains("more than 4 bytes of LZ4 can decode to", error, StringComparison.Ordinal);
    }
}

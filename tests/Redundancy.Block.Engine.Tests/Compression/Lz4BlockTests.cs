using System.Globalization;
using System.Text;
using Redundancy.Block.Engine.Compression;

namespace Redundancy.Block.Engine.Tests.Compression;

/// <summary>Lz4Block (K4os underneath) round-trips every kind and size of data a write carries, within its bounds.</summary>
public class Lz4BlockTests
{
    private static byte[] Random(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Text-like data: lines with counters, as logs and databases hold; compresses well, not trivially.</summary>
    private static byte[] Text(int length)
    {
        var text = new StringBuilder(length + 64);
        for (int i = 0; text.Length < length; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"{i:D8} block {i * 7919 % 100003} status=ok owner=alpha\n");
        }
        return Encoding.ASCII.GetBytes(text.ToString(0, length));
    }

    /// <summary>Compresses with room for the worst case, checks the bound, decompresses and compares.</summary>
    private static int RoundTrip(byte[] data)
    {
        var compressed = new byte[Lz4Block.MaxCompressedLength(data.Length)];
        Assert.True(Lz4Block.TryCompress(data, compressed, out int written), "the worst-case bound always fits");
        Assert.InRange(written, 1, Lz4Block.MaxCompressedLength(data.Length));
        var output = new byte[data.Length];
        Assert.True(Lz4Block.TryDecompress(compressed.AsSpan(0, written), output, out string? error), error);
        Assert.True(output.AsSpan().SequenceEqual(data), $"{data.Length} bytes round-trip");
        return written;
    }

    [Fact]
    public void An_empty_input_is_not_compressed_and_an_empty_block_or_output_is_refused()
    {
        Assert.False(Lz4Block.TryCompress([], new byte[16], out int written), "nothing to gain: the caller sends it as it is");
        Assert.Equal(0, written);
        Assert.False(Lz4Block.TryDecompress([], new byte[16], out string? error));
        Assert.Contains("empty", error, StringComparison.Ordinal);
        Assert.False(Lz4Block.TryDecompress([0], [], out error));
        Assert.Contains("empty output", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(14)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(270)]
    [InlineData(271)]
    public void Tiny_inputs_round_trip_whether_or_not_they_repeat(int length)
    {
        RoundTrip(Random(length, length));
        RoundTrip(new byte[length]);
        RoundTrip(Text(length));
    }

    [Fact]
    public void Into_fewer_bytes_than_the_source_a_block_is_either_refused_or_smaller_and_exact()
    {
        // The sender's use: a destination of length - 1 bytes. Whatever comes out must round-trip.
        for (int length = 2; length <= 300; length++)
        {
            foreach (byte[] data in new[] { Random(length, length), new byte[length], Text(length) })
            {
                var compressed = new byte[length - 1];
                if (Lz4Block.TryCompress(data, compressed, out int written))
                {
                    Assert.InRange(written, 1, length - 1);
                    var output = new byte[length];
                    Assert.True(Lz4Block.TryDecompress(compressed.AsSpan(0, written), output, out string? error), error);
                    Assert.Equal(data, output);
                }
                else
                {
                    Assert.Equal(0, written);
                }
            }
        }
        Assert.True(Lz4Block.TryCompress(new byte[300], new byte[299], out _), "300 zeroes shrink");
        Assert.False(Lz4Block.TryCompress(Random(300, 1), new byte[299], out _), "300 random bytes do not");
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(1 << 20)]
    public void Incompressible_random_data_round_trips_within_the_bound_and_refuses_a_smaller_destination(int length)
    {
        byte[] data = Random(length, 42);
        int written = RoundTrip(data);
        Assert.True(written > length, "random data does not shrink");
        Assert.False(Lz4Block.TryCompress(data, new byte[length - 1], out int none), "not smaller: the caller sends it uncompressed");
        Assert.Equal(0, none);
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(1 << 20)]
    [InlineData(32 << 20)]
    public void Zeroes_compress_about_250_to_1(int length)
    {
        int written = RoundTrip(new byte[length]);
        Assert.True(written < (length / 200) + 32, $"{length} zeroes took {written} bytes");
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(1 << 20)]
    [InlineData(32 << 20)]
    public void Text_like_data_round_trips_and_shrinks(int length)
    {
        int written = RoundTrip(Text(length));
        Assert.True(written < length / 2, $"{length} bytes of text took {written}");
    }

    [Fact]
    public void A_32_MiB_write_of_mixed_data_round_trips()
    {
        // 4 KiB blocks alternating random, zero, text and a repeat of an earlier block beyond the 64 KiB window.
        var data = new byte[32 << 20];
        byte[] text = Text(4096);
        var random = new Random(7);
        for (int block = 0; block < data.Length / 4096; block++)
        {
            var span = data.AsSpan(block * 4096, 4096);
            switch (block % 4)
            {
                case 0: random.NextBytes(span); break;
                case 1: break;
                case 2: text.CopyTo(span); break;
                default: data.AsSpan(Math.Max(0, block - 40) * 4096, 4096).CopyTo(span); break;
            }
        }
        int written = RoundTrip(data);
        Assert.True(written < data.Length * 3 / 4, $"mixed data took {written} bytes");
    }

    [Fact]
    public void Matches_at_the_64_KiB_offset_limit_and_just_beyond_it_round_trip()
    {
        byte[] chunk = Random(1000, 3);
        foreach (int gap in new[] { 65535 - 1000, 65536 - 1000, 70000 })
        {
            byte[] filler = Random(gap, gap);
            RoundTrip([.. chunk, .. filler, .. chunk, .. Random(20, 1)]);
        }
    }

    [Fact]
    public void Long_literal_runs_and_long_matches_round_trip()
    {
        // 15 + 255 + 255 + n: literal and match lengths whose extra bytes end in 0, 254 and 255 boundaries.
        foreach (int length in new[] { 15, 269, 270, 524, 525, 526, 100_000 })
        {
            RoundTrip([.. Random(length, length), .. new byte[length], .. Random(12, 9)]);
        }
    }

    [Fact]
    public void Every_repetition_period_from_1_to_40_round_trips()
    {
        // Overlapping matches: an offset shorter than the match repeats the last period.
        for (int period = 1; period <= 40; period++)
        {
            byte[] pattern = Random(period, period);
            byte[] data = Enumerable.Range(0, 5000).Select(i => pattern[i % period]).ToArray();
            Assert.True(RoundTrip(data) < 200, $"period {period} compresses");
        }
    }

    [Fact]
    public void The_densest_block_stays_within_the_declared_expansion_bound()
    {
        // Literal 'a', then one match at offset 1 whose length runs on for 1000 bytes of 255, then the
        // five final literals: as dense as LZ4 gets.
        var block = new List<byte> { 0x1F, (byte)'a', 1, 0 };
        block.AddRange(Enumerable.Repeat((byte)255, 1000));
        block.Add(10);
        block.AddRange([0x50, 1, 2, 3, 4, 5]);
        int decoded = 1 + (4 + 15 + (255 * 1000) + 10) + 5;
        Assert.True(Lz4Block.TryDecompress(block.ToArray(), new byte[decoded], out string? error), error);
        Assert.InRange(decoded, 1, Lz4Block.MaxDecompressedLength(block.Count));
    }
}

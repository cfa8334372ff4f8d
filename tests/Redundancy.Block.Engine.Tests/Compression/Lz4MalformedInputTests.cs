using System.Diagnostics;
using Redundancy.Block.Engine.Compression;

namespace Redundancy.Block.Engine.Tests.Compression;

/// <summary>
/// A peer's LZ4 block is untrusted: every malformed block is refused with a reason (false, never an
/// exception), nothing is read or written outside the buffers, and the output is the declared length.
/// </summary>
public class Lz4MalformedInputTests
{
    private static string Refused(byte[] block, int declaredBytes)
    {
        var output = new byte[declaredBytes];
        Assert.False(Lz4Block.TryDecompress(block, output, out string? error), $"block {Convert.ToHexString(block[..Math.Min(block.Length, 32)])} is refused");
        Assert.False(string.IsNullOrEmpty(error));
        return error!;
    }

    private static byte[] Compress(byte[] data)
    {
        var compressed = new byte[Lz4Block.MaxCompressedLength(data.Length)];
        Assert.True(Lz4Block.TryCompress(data, compressed, out int written));
        return compressed[..written];
    }

    private static byte[] Sample(int length, int seed)
    {
        // Half repeats, half noise: blocks with literals, extended lengths and overlapping matches.
        var random = new Random(seed);
        var data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = i > 64 && random.Next(3) != 0 ? data[i - 1 - random.Next(Math.Min(i, 40))] : (byte)random.Next(256);
        }
        return data;
    }

    [Fact]
    public void Every_truncation_of_a_valid_block_is_refused()
    {
        byte[] data = Sample(3000, 1);
        byte[] block = Compress(data);
        for (int length = 0; length < block.Length; length++)
        {
            Refused(block[..length], data.Length);
        }
        Assert.Contains("empty", Refused([], 0), StringComparison.Ordinal);
    }

    [Fact]
    public void Offset_0_is_refused()
    {
        // 1 literal 'a', then a 4-byte match at offset 0.
        Assert.Contains("offset 0", Refused([0x10, (byte)'a', 0x00, 0x00, 0x50, 1, 2, 3, 4, 5], 10), StringComparison.Ordinal);
    }

    [Fact]
    public void An_offset_before_the_start_of_the_output_is_refused()
    {
        Assert.Contains("before the start", Refused([0x10, (byte)'a', 0x02, 0x00, 0x50, 1, 2, 3, 4, 5], 10), StringComparison.Ordinal);
        Assert.Contains("before the start", Refused([0x00, 0xFF, 0xFF, 0x50, 1, 2, 3, 4, 5], 9), StringComparison.Ordinal);
    }

    [Fact]
    public void Lengths_that_would_overflow_are_refused_as_soon_as_they_exceed_the_output()
    {
        // A literal length of 15 + 255 * 20 million would overflow an int; it fails after a few bytes.
        byte[] literals = [0xF0, .. Enumerable.Repeat((byte)0xFF, 20_000_000)];
        var watch = Stopwatch.StartNew();
        Assert.Contains("a literal run of at least", Refused(literals, 4096), StringComparison.Ordinal);
        Assert.True(watch.ElapsedMilliseconds < 1000, "stops reading at the limit");
        byte[] match = [0x1F, (byte)'a', 0x01, 0x00, .. Enumerable.Repeat((byte)0xFF, 10_000)];
        Assert.Contains("a match of at least", Refused(match, 4096), StringComparison.Ordinal);
        Assert.Contains("truncated in a length", Refused([0xF0, 0xFF, 0xFF], 4096), StringComparison.Ordinal);
    }

    [Fact]
    public void Output_overruns_are_refused()
    {
        // 5 literals for a declared 4 bytes.
        Assert.Contains("overrun", Refused([0x50, 1, 2, 3, 4, 5], 4), StringComparison.Ordinal);
        // 1 literal + a 19-byte match (+ 5 literals) for a declared 19 bytes: the match overruns.
        Assert.Contains("a match of at least 19 bytes", Refused([0x1F, (byte)'a', 0x01, 0x00, 0x00, 0x50, 1, 2, 3, 4, 5], 19), StringComparison.Ordinal);
        // A 4-byte match when 2 bytes of output are left.
        Assert.Contains("match of 4 bytes", Refused([0x10, (byte)'a', 0x01, 0x00, 0x00], 3), StringComparison.Ordinal);
        // Literals beyond the end of the block.
        Assert.Contains("past its end", Refused([0x50, 1, 2], 5), StringComparison.Ordinal);
    }

    [Fact]
    public void A_block_must_end_with_literals_and_fill_exactly_the_declared_length()
    {
        Assert.Contains("ends after a match", Refused([0x14, (byte)'a', 0x01, 0x00], 9), StringComparison.Ordinal);
        Assert.Contains("truncated in the offset", Refused([0x14, (byte)'a', 0x01], 9), StringComparison.Ordinal);
        Assert.Contains("decodes to 5 bytes", Refused([0x50, 1, 2, 3, 4, 5], 6), StringComparison.Ordinal);
        byte[] data = Sample(1000, 2);
        byte[] block = Compress(data);
        Refused(block, 999);
        Refused(block, 1001);
        Refused([.. block, 0], 1000); // a trailing byte is a new sequence that does not fit
    }

    [Fact]
    public void Random_mutations_of_valid_blocks_never_throw_and_agree_with_a_simple_reference_decoder()
    {
        var random = new Random(2024);
        var watch = Stopwatch.StartNew();
        int accepted = 0;
        const int Iterations = 5000;
        for (int i = 0; i < Iterations; i++)
        {
            byte[] data = Sample(random.Next(0, 3000), i);
            byte[] block = Mutate(Compress(data), random);
            int declared = random.Next(4) == 0 ? Math.Max(0, data.Length + random.Next(-20, 21)) : data.Length;
            var output = new byte[declared];
            bool ok = Lz4Block.TryDecompress(block, output, out string? error);
            byte[]? expected = NaiveDecode(block, declared);
            Assert.True(ok == (expected is not null), $"iteration {i}: ours {ok} ({error}), reference {expected is not null}");
            if (ok)
            {
                accepted++;
                Assert.Equal(expected, output);
            }
            else
            {
                Assert.False(string.IsNullOrEmpty(error));
            }
        }
        Assert.InRange(accepted, 1, Iterations - 1); // both outcomes happen: the test sees mutations that still decode
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"bounded time ({watch.Elapsed})");
    }

    private static byte[] Mutate(byte[] block, Random random)
    {
        var bytes = block.ToList();
        int edits = random.Next(1, 4);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int at = random.Next(bytes.Count);
            switch (random.Next(5))
            {
                case 0: bytes[at] ^= (byte)(1 << random.Next(8)); break;
                case 1: bytes[at] = (byte)random.Next(256); break;
                case 2: bytes.RemoveAt(at); break;
                case 3: bytes.Insert(at, (byte)random.Next(256)); break;
                default: bytes.RemoveRange(at, bytes.Count - at); break;
            }
        }
        return [.. bytes];
    }

    /// <summary>
    /// The format read the slow, obvious way (one byte at a time, 64-bit lengths), with the same rules:
    /// ends with literals, exactly the declared length, offsets 1..output so far.
    /// </summary>
    private static byte[]? NaiveDecode(byte[] block, int declared)
    {
        var output = new List<byte>();
        int input = 0;
        while (input < block.Length)
        {
            int token = block[input++];
            long literals = token >> 4;
            if (literals == 15 && !ReadMore(block, ref input, ref literals))
            {
                return null;
            }
            if (literals > block.Length - input || output.Count + literals > declared)
            {
                return null;
            }
            output.AddRange(block.AsSpan(input, (int)literals));
            input += (int)literals;
            if (input == block.Length)
            {
                return output.Count == declared ? [.. output] : null;
            }
            if (block.Length - input < 2)
            {
                return null;
            }
            int offset = block[input] | (block[input + 1] << 8);
            input += 2;
            long length = token & 0xF;
            if (offset == 0 || offset > output.Count || (length == 15 && !ReadMore(block, ref input, ref length)) || output.Count + length + 4 > declared)
            {
                return null;
            }
            for (long k = 0; k < length + 4; k++)
            {
                output.Add(output[output.Count - offset]);
            }
        }
        return null;
    }

    private static bool ReadMore(byte[] block, ref int input, ref long length)
    {
        while (input < block.Length)
        {
            byte more = block[input++];
            length += more;
            if (more != 255)
            {
                return true;
            }
        }
        return false;
    }
}

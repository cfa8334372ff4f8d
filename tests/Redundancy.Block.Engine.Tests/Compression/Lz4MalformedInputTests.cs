using System.Diagnostics;
using Redundancy.Block.Engine.Compression;

namespace Redundancy.Block.Engine.Tests.Compression;

/// <summary>
/// A peer's LZ4 block is untrusted: every malformed block is refused with a reason (false, never an
/// exception), in bounded time, and what is accepted decodes to exactly the declared length.
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
        if (data.Length == 0)
        {
            return []; // nothing to compress: an empty block, which is refused like any other malformed one
        }
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
    public void A_match_at_offset_0_cannot_expose_what_the_destination_held_before()
    {
        // 8 literals, a 4-byte match at offset 0 (invalid: the match would copy itself), 12 final
        // literals. The reference decoder does not refuse offset 0: it copies the 4 bytes the output
        // already holds there (8 literals leave them untouched). Bytes left in a rented buffer by an
        // earlier block must not come out.
        byte[] block = [0x80, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x00, 0xC0, .. Enumerable.Range(1, 12).Select(i => (byte)i)];
        var output = new byte[8 + 4 + 12];
        output.AsSpan().Fill(0xAA);
        if (Lz4Block.TryDecompress(block, output, out _))
        {
            Assert.DoesNotContain((byte)0xAA, output);
        }
    }

    [Fact]
    public void An_offset_before_the_start_of_the_output_is_refused()
    {
        // 1 literal, a match at offset 2, 20 final literals: far enough from the end that only the offset is wrong.
        byte[] tail = [0xF0, 5, .. Enumerable.Range(1, 20).Select(i => (byte)i)];
        Refused([0x10, (byte)'a', 0x02, 0x00, .. tail], 25);
        Refused([0x00, 0xFF, 0xFF, .. tail], 24);
        Refused([0x10, (byte)'a', 0x02, 0x00, 0x50, 1, 2, 3, 4, 5], 10);
    }

    [Fact]
    public void Lengths_that_would_overflow_are_refused_in_bounded_time()
    {
        // A literal length of 15 + 255 * 20 million would overflow an int.
        byte[] literals = [0xF0, .. Enumerable.Repeat((byte)0xFF, 20_000_000)];
        var watch = Stopwatch.StartNew();
        Refused(literals, 4096);
        Assert.True(watch.ElapsedMilliseconds < 1000, $"bounded time ({watch.ElapsedMilliseconds} ms)");
        Refused([0x1F, (byte)'a', 0x01, 0x00, .. Enumerable.Repeat((byte)0xFF, 10_000)], 4096);
        Refused([0xF0, 0xFF, 0xFF], 4096);
    }

    [Fact]
    public void Output_overruns_are_refused()
    {
        // 5 literals for a declared 4 bytes.
        Assert.Contains("more than the declared 4 bytes", Refused([0x50, 1, 2, 3, 4, 5], 4), StringComparison.Ordinal);
        // 1 literal + a 19-byte match (+ 5 literals) for a declared 19 bytes: the match overruns.
        Refused([0x1F, (byte)'a', 0x01, 0x00, 0x00, 0x50, 1, 2, 3, 4, 5], 19);
        // A 4-byte match when 2 bytes of output are left.
        Refused([0x10, (byte)'a', 0x01, 0x00, 0x00], 3);
        // Literals beyond the end of the block.
        Refused([0x50, 1, 2], 5);
    }

    [Fact]
    public void A_block_must_end_with_literals_and_fill_exactly_the_declared_length()
    {
        Refused([0x14, (byte)'a', 0x01, 0x00], 9); // ends after a match
        Refused([0x14, (byte)'a', 0x01], 9); // truncated in the offset
        Assert.Contains("decodes to 5 bytes, 6 were declared", Refused([0x50, 1, 2, 3, 4, 5], 6), StringComparison.Ordinal);
        byte[] data = Sample(1000, 2);
        byte[] block = Compress(data);
        Refused(block, 999);
        Refused(block, 1001);
        Refused([.. block, 0], 1000); // a trailing byte is a new sequence that does not fit
    }

    [Fact]
    public void Random_mutations_of_valid_blocks_never_throw_and_what_is_accepted_is_what_the_format_says()
    {
        // The reference decoder also enforces the format's end-of-block rules (the last 5 bytes are
        // literals, the last match starts 12 bytes before the end), so it may refuse a block the naive
        // decoder below accepts; it must never accept one the naive decoder refuses, nor decode it differently.
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
            Naive naive = NaiveDecode(block, declared, out byte[]? expected);
            Assert.True(ok == (error is null), $"iteration {i}: an error exactly when refused ({error})");
            if (ok)
            {
                accepted++;
                Assert.True(naive != Naive.Refused, $"iteration {i}: accepted a block the format refuses");
                if (naive == Naive.Decoded)
                {
                    Assert.Equal(expected, output);
                }
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

    private enum Naive { Decoded, Refused, OffsetZero }

    /// <summary>
    /// The format read the slow, obvious way (one byte at a time, 64-bit lengths): ends with literals,
    /// exactly the declared length, offsets 1..output so far. Offset 0 is invalid but its outcome is
    /// the decoder's choice, so it is reported apart.
    /// </summary>
    private static Naive NaiveDecode(byte[] block, int declared, out byte[]? decoded)
    {
        decoded = null;
        var output = new List<byte>();
        int input = 0;
        while (input < block.Length)
        {
            int token = block[input++];
            long literals = token >> 4;
            if (literals == 15 && !ReadMore(block, ref input, ref literals))
            {
                return Naive.Refused;
            }
            if (literals > block.Length - input || output.Count + literals > declared)
            {
                return Naive.Refused;
            }
            output.AddRange(block.AsSpan(input, (int)literals));
            input += (int)literals;
            if (input == block.Length)
            {
                decoded = [.. output];
                return output.Count == declared && declared > 0 ? Naive.Decoded : Naive.Refused;
            }
            if (block.Length - input < 2)
            {
                return Naive.Refused;
            }
            int offset = block[input] | (block[input + 1] << 8);
            input += 2;
            long length = token & 0xF;
            if (offset > output.Count || (length == 15 && !ReadMore(block, ref input, ref length)) || output.Count + length + 4 > declared)
            {
                return Naive.Refused;
            }
            if (offset == 0)
            {
                return Naive.OffsetZero;
            }
            for (long k = 0; k < length + 4; k++)
            {
                output.Add(output[output.Count - offset]);
            }
        }
        return Naive.Refused;
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

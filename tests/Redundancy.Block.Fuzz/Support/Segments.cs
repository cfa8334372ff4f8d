// Cuts an input into a multi-segment ReadOnlySequence (as a pipe delivers received bytes), at places
// that depend only on the input, so a replayed input is cut the same way.
using System.Buffers;

namespace Redundancy.Block.Fuzz.Support;

public static class Segments
{
    /// <summary>The input in segments of 1..n bytes; a third of inputs stay in one segment.</summary>
    public static ReadOnlySequence<byte> Split(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var random = new Random(Seed(input));
        if (input.Length < 2 || random.Next(3) == 0)
        {
            return new ReadOnlySequence<byte>(input);
        }

        Segment? first = null, last = null;
        int at = 0;
        while (at < input.Length)
        {
            int length = Math.Min(input.Length - at, 1 + random.Next(Math.Max(1, input.Length / 3)));
            var memory = input.AsMemory(at, length);
            last = last is null ? (first = new Segment(memory, 0)) : last.Append(memory);
            at += length;
        }

        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    /// <summary>Chunk sizes for a stream that returns the input in pieces (1.. bytes each).</summary>
    public static Random ChunkRandom(byte[] input) => new(Seed(input));

    private static int Seed(byte[] input)
    {
        int hash = input.Length;
        for (int i = 0; i < Math.Min(input.Length, 64); i++)
        {
            hash = (hash * 31) + input[^(i + 1)];
        }

        return hash;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}

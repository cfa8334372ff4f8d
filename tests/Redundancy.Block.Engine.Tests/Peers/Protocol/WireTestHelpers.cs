// Helpers for peer protocol tests: frames as byte arrays and buffers cut into segments.
using System.Buffers;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Tests.Peers.Protocol;

internal static class WireTestHelpers
{
    /// <summary>A whole frame for <paramref name="message"/> followed by <paramref name="trailing"/>.</summary>
    public static byte[] Frame<T>(ushort volume, in T message, ReadOnlySpan<byte> trailing = default)
        where T : struct, IPeerMessage<T>
    {
        byte[] bytes = new byte[FrameWriter.FrameLength(message) + trailing.Length];
        int written = FrameWriter.Write(bytes, volume, message, trailing.Length);
        trailing.CopyTo(bytes.AsSpan(written));
        return bytes;
    }

    /// <summary>The message's payload alone.</summary>
    public static byte[] Payload<T>(in T message) where T : struct, IPeerMessage<T>
    {
        byte[] bytes = new byte[message.EncodedLength];
        Assert.Equal(bytes.Length, message.Write(bytes));
        return bytes;
    }

    /// <summary><paramref name="bytes"/> as a sequence of segments of <paramref name="segmentBytes"/> each.</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] bytes, int segmentBytes)
    {
        if (bytes.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        Segment first = new(bytes.AsMemory(0, Math.Min(segmentBytes, bytes.Length)), 0);
        Segment last = first;
        for (int at = segmentBytes; at < bytes.Length; at += segmentBytes)
        {
            last = last.Append(bytes.AsMemory(at, Math.Min(segmentBytes, bytes.Length - at)));
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
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

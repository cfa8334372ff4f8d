// Writes whole frames (header + message) into a pipe or a span, with no allocation: the message is
// a struct passed by reference through a constrained generic, so nothing is boxed.
using System.Buffers;

namespace Redundancy.Block.Engine.Peers.Protocol;

public static class FrameWriter
{
    /// <summary>
    /// Writes header and message into <paramref name="destination"/>. <paramref name="trailingPayloadBytes"/>
    /// (e.g. a Data message's block) are counted in the header's length; the caller writes them next.
    /// Returns the bytes written (header + message, without the trailing bytes).
    /// </summary>
    public static int Write<T>(Span<byte> destination, ushort volume, in T message, int trailingPayloadBytes = 0)
        where T : struct, IPeerMessage<T>
    {
        Invariant.Assert(trailingPayloadBytes >= 0, "trailing payload length is not negative");
        int length = message.EncodedLength;
        Invariant.Assert(destination.Length >= FrameHeader.Size + length, "room for the frame");
        new FrameHeader(T.Type, volume, checked((uint)(length + trailingPayloadBytes))).Write(destination);
        int written = message.Write(destination[FrameHeader.Size..]);
        Invariant.Assert(written == length, "message wrote its encoded length");
        return FrameHeader.Size + written;
    }

    /// <summary>Same as <see cref="Write{T}(Span{byte}, ushort, in T, int)"/>, into a pipe writer (then advanced).</summary>
    public static int Write<T>(IBufferWriter<byte> output, ushort volume, in T message, int trailingPayloadBytes = 0)
        where T : struct, IPeerMessage<T>
    {
        ArgumentNullException.ThrowIfNull(output);
        int total = FrameHeader.Size + message.EncodedLength;
        int written = Write(output.GetSpan(total), volume, in message, trailingPayloadBytes);
        output.Advance(written);
        return written;
    }

    /// <summary>Bytes a frame for <paramref name="message"/> takes (header + message, without trailing data).</summary>
    public static int FrameLength<T>(in T message) where T : struct, IPeerMessage<T> => FrameHeader.Size + message.EncodedLength;
}

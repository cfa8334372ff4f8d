// Cuts frames out of a receive buffer, in the manner of Kestrel's HTTP/2 frame reader: the header is
// parsed from FirstSpan when it is contiguous, else copied to the stack; a frame is only returned
// once its whole payload is buffered, and a frame that can never be valid (bad header, unknown
// required type, payload over the negotiated maximum or out of the type's bounds) is refused from
// its header alone — nothing is allocated for, or waited for, its payload.
using System.Buffers;

namespace Redundancy.Block.Engine.Peers.Protocol;

public static class FrameReader
{
    /// <summary>
    /// Tries to take one frame from the front of <paramref name="buffer"/>.
    /// <list type="bullet">
    /// <item>true: <paramref name="header"/> and <paramref name="payload"/> (a slice of the buffer, valid
    /// until the caller advances the pipe) are set and <paramref name="buffer"/> now starts after the frame.</item>
    /// <item>false with <paramref name="error"/> null: more bytes are needed; <paramref name="buffer"/> is
    /// unchanged (call AdvanceTo(buffer.Start, buffer.End)).</item>
    /// <item>false with <paramref name="error"/> set: a protocol violation; the caller disconnects.</item>
    /// </list>
    /// A frame of an unknown type flagged <see cref="FrameFlags.Optional"/> is returned like any other;
    /// the caller skips it.
    /// </summary>
    public static bool TryReadFrame(
        ref ReadOnlySequence<byte> buffer, int maxPayloadBytes,
        out FrameHeader header, out ReadOnlySequence<byte> payload, out string? error)
    {
        Invariant.Assert(maxPayloadBytes >= 0, "payload limit is not negative");
        payload = default;
        header = default;
        error = null;
        if (buffer.Length < FrameHeader.Size)
        {
            return false;
        }

        bool parsed;
        ReadOnlySpan<byte> first = buffer.FirstSpan;
        if (first.Length >= FrameHeader.Size)
        {
            parsed = FrameHeader.TryRead(first, out header, out error);
        }
        else
        {
            Span<byte> copy = stackalloc byte[FrameHeader.Size];
            buffer.Slice(0, FrameHeader.Size).CopyTo(copy);
            parsed = FrameHeader.TryRead(copy, out header, out error);
        }

        if (!parsed || (error = Check(header, maxPayloadBytes)) is not null)
        {
            return false;
        }

        long frameBytes = FrameHeader.Size + (long)header.PayloadLengthBytes;
        if (buffer.Length < frameBytes)
        {
            return false;
        }

        payload = buffer.Slice(FrameHeader.Size, header.PayloadLengthBytes);
        buffer = buffer.Slice(frameBytes);
        return true;
    }

    /// <summary>Phase-independent checks of a well-formed header; null when it is acceptable.</summary>
    public static string? Check(in FrameHeader header, int maxPayloadBytes)
    {
        if (header.PayloadLengthBytes > (uint)maxPayloadBytes)
        {
            return $"{header.Type} frame payload of {header.PayloadLengthBytes} bytes exceeds the maximum of {maxPayloadBytes}";
        }

        if (!MessageTypes.TryGetInfo(header.Type, out var info))
        {
            return (header.Flags & FrameFlags.Optional) != 0 ? null : $"unknown message type 0x{(ushort)header.Type:X4}";
        }

        if (header.PayloadLengthBytes < (uint)info.MinPayloadBytes || header.PayloadLengthBytes > (uint)info.MaxPayloadBytes)
        {
            return info.MinPayloadBytes == info.MaxPayloadBytes
                ? $"{header.Type} payload must be {info.MinPayloadBytes} bytes, got {header.PayloadLengthBytes}"
                : $"{header.Type} payload must be {info.MinPayloadBytes}..{info.MaxPayloadBytes} bytes, got {header.PayloadLengthBytes}";
        }

        return info.Scope == MessageScope.Connection && header.Volume != 0
            ? $"{header.Type} is connection-wide but names volume {header.Volume}"
            : null;
    }
}

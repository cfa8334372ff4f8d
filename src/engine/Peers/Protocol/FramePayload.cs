// Helpers to read a message from a frame payload that may span buffer segments, without allocating.
using System.Buffers;

namespace Redundancy.Block.Engine.Peers.Protocol;

public static class FramePayload
{
    /// <summary>Largest message (without trailing data) the stack-copy path handles; every steady-state message fits.</summary>
    public const int MaxStackBytes = 512;

    /// <summary>
    /// The first <paramref name="length"/> bytes of <paramref name="payload"/> as one span: FirstSpan when
    /// contiguous, else copied into <paramref name="scratch"/>.
    /// </summary>
    public static ReadOnlySpan<byte> Prefix(in ReadOnlySequence<byte> payload, int length, Span<byte> scratch)
    {
        Invariant.Assert(length >= 0 && length <= payload.Length && length <= scratch.Length, "prefix fits payload and scratch");
        ReadOnlySpan<byte> first = payload.FirstSpan;
        if (first.Length >= length)
        {
            return first[..length];
        }

        payload.Slice(0, length).CopyTo(scratch);
        return scratch[..length];
    }

    /// <summary>
    /// Parses a message whose payload is at most <see cref="MaxStackBytes"/> (any fixed-size message,
    /// CsumRsRequest, OvReply, AuthResponse, ...) from a possibly segmented payload.
    /// </summary>
    public static bool TryRead<T>(in ReadOnlySequence<byte> payload, out T message, out string? error)
        where T : struct, IPeerMessage<T>
    {
        if (payload.Length > MaxStackBytes)
        {
            message = default;
            error = $"{T.Type} payload of {payload.Length} bytes is larger than any such message";
            return false;
        }

        Span<byte> scratch = stackalloc byte[MaxStackBytes];
        return T.TryRead(Prefix(payload, (int)payload.Length, scratch), out message, out error);
    }
}

// Helpers to read a message from a frame payload that may span buffer segments, without allocating.
using System.Buffers;

namespace Redundancy.Block.Engine.Peers.Protocol;

public static class FramePayload
{
    /// <summary>Largest segmented message copied to the stack; every steady-state message fits.</summary>
    public const int MaxStackBytes = 512;

    /// <summary>
    /// Largest message (without trailing data) <see cref="TryRead{T}"/> parses: a Disconnect with its
    /// 1024-byte text. Larger segmented payloads than <see cref="MaxStackBytes"/> are copied to a pooled buffer.
    /// </summary>
    public const int MaxMessageBytes = 2048;

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
    /// Parses a message of at most <see cref="MaxMessageBytes"/> (any fixed-size message, CsumRsRequest,
    /// OvReply, AuthResponse, Hello, Disconnect, ...) from a possibly segmented payload.
    /// </summary>
    public static bool TryRead<T>(in ReadOnlySequence<byte> payload, out T message, out string? error)
        where T : struct, IPeerMessage<T>
    {
        if (payload.Length > MaxMessageBytes)
        {
            message = default;
            error = $"{T.Type} payload of {payload.Length} bytes is larger than any such message";
            return false;
        }

        if (payload.IsSingleSegment)
        {
            return T.TryRead(payload.FirstSpan, out message, out error);
        }

        if (payload.Length <= MaxStackBytes)
        {
            Span<byte> scratch = stackalloc byte[MaxStackBytes];
            return T.TryRead(Prefix(payload, (int)payload.Length, scratch), out message, out error);
        }

        // Rare: a long Disconnect text split across receive buffers.
        byte[] joined = ArrayPool<byte>.Shared.Rent((int)payload.Length);
        try
        {
            payload.CopyTo(joined);
            return T.TryRead(joined.AsSpan(0, (int)payload.Length), out message, out error);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(joined);
        }
    }
}

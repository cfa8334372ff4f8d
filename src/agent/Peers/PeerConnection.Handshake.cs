// Before an accepted connection has an owner, the listener reads its first frames here until the
// peer's Hello names the resource and node it is for. Frames are copied (the new owner replays
// them) and nothing after the Hello is consumed: the receive loop started by the owner continues
// from the very next byte.
using System.Buffers;
using System.IO.Pipelines;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Peers;

/// <summary>The outcome of reading an accepted connection's first frames.</summary>
/// <param name="Hello">The peer's Hello, or null when <paramref name="Error"/> says why there is none.</param>
/// <param name="Frames">Every frame read, the Hello last, payloads copied.</param>
/// <param name="Error">Why no Hello could be read.</param>
internal readonly record struct PeerHelloRead(HelloMessage? Hello, IReadOnlyList<(FrameHeader Header, byte[] Payload)> Frames, string? Error);

public sealed partial class PeerConnection
{
    /// <summary>
    /// Reads frames until the Hello, at most <paramref name="maxFrames"/> of them and each within
    /// <see cref="MaxPayloadBytes"/>. Only before <see cref="Start"/>. Throws OperationCanceledException
    /// when <paramref name="cancellationToken"/> fires (the caller's timeout); other failures are in Error.
    /// </summary>
    internal async Task<PeerHelloRead> ReadUntilHelloAsync(int maxFrames, CancellationToken cancellationToken)
    {
        var frames = new List<(FrameHeader Header, byte[] Payload)>();
        try
        {
            while (true)
            {
                ReadResult result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                PeerHelloRead? outcome = TakeHandshakeFrames(ref buffer, frames, maxFrames);
                if (outcome is not null)
                {
                    _reader.AdvanceTo(buffer.Start); // nothing past the Hello was examined
                    return outcome.Value;
                }

                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted || result.IsCanceled)
                {
                    return new PeerHelloRead(null, frames, "peer closed the connection before its Hello");
                }
            }
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            return new PeerHelloRead(null, frames, PeerSocketErrors.ToCloseReason(exception).Message);
        }
    }

    /// <summary>Copies complete frames out of <paramref name="buffer"/>; a result once the Hello, an error or the frame cap is reached.</summary>
    private PeerHelloRead? TakeHandshakeFrames(ref ReadOnlySequence<byte> buffer, List<(FrameHeader Header, byte[] Payload)> frames, int maxFrames)
    {
        string? error;
        while (FrameReader.TryReadFrame(ref buffer, MaxPayloadBytes, out FrameHeader header, out ReadOnlySequence<byte> payload, out error))
        {
            Interlocked.Increment(ref _framesReceived);
            Interlocked.Add(ref _bytesReceived, FrameHeader.Size + payload.Length);
            frames.Add((header, payload.ToArray()));
            if (header.Type == MessageType.Hello)
            {
                return FramePayload.TryRead(payload, out HelloMessage hello, out error)
                    ? new PeerHelloRead(hello, frames, null)
                    : new PeerHelloRead(null, frames, $"invalid Hello: {error}");
            }

            if (frames.Count >= maxFrames)
            {
                return new PeerHelloRead(null, frames, $"sent {frames.Count} frames without a Hello");
            }
        }

        return error is null ? null : new PeerHelloRead(null, frames, $"protocol error: {error}");
    }
}

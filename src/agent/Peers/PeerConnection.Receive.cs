// The receive loop of a PeerConnection: ReadAsync, cut every complete frame out of the buffer with
// FrameReader, hand it to the handler, AdvanceTo(consumed, examined). A frame that can never be
// valid closes the connection from its header alone, before any of its payload is buffered.
using System.Buffers;
using System.IO.Pipelines;
using Redundancy.Block.Agent.Batching;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Peers;

public sealed partial class PeerConnection
{
    /// <summary>Runs until a close reason is recorded (every exit path records one). Never throws.</summary>
    private async Task ReceiveLoopAsync()
    {
        try
        {
            while (true)
            {
                ReadResult result = await _reader.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                bool stop;
                SendBatch.Open(); // the answers to this read's frames leave together
                try
                {
                    stop = result.IsCanceled || IsClosing() || DispatchFrames(ref buffer);
                }
                finally
                {
                    SendBatch.Close();
                }
                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (stop)
                {
                    break;
                }

                if (result.IsCompleted)
                {
                    Abort(new PeerCloseReason(PeerCloseKind.PeerClosed, buffer.IsEmpty
                        ? "peer closed the connection"
                        : $"peer closed the connection in the middle of a frame ({buffer.Length} bytes of it received)"));
                    break;
                }
            }
        }
        catch (Exception exception)
        {
            Abort(PeerSocketErrors.ToCloseReason(exception));
        }
    }

    /// <summary>
    /// Hands every complete frame at the front of <paramref name="buffer"/> to the handler and leaves
    /// <paramref name="buffer"/> starting at the first unconsumed byte. True when the loop must stop.
    /// </summary>
    private bool DispatchFrames(ref ReadOnlySequence<byte> buffer)
    {
        PeerFrameHandler handler = _onFrame!;
        string? error;
        while (FrameReader.TryReadFrame(ref buffer, MaxPayloadBytes, out FrameHeader header, out ReadOnlySequence<byte> payload, out error))
        {
            Interlocked.Increment(ref _framesReceived);
            Interlocked.Add(ref _bytesReceived, FrameHeader.Size + payload.Length);
            try
            {
                handler(in header, in payload);
            }
            catch (Exception exception)
            {
                _logger.HandlerFailed(exception, Name, header.Type.ToString(), RemoteAddress);
                Abort(new PeerCloseReason(PeerCloseKind.HandlerFailed, $"handling a {header.Type} frame failed: {exception.Message}"));
                return true;
            }

            if (IsClosing())
            {
                return true;
            }

            SendBatch.FlushIfHeldTooLong();
        }

        if (error is null)
        {
            return false;
        }

        _logger.FrameError(Name, RemoteAddress, error);
        Abort(new PeerCloseReason(PeerCloseKind.FrameError, $"protocol error: {error}"));
        return true;
    }

    /// <summary>Whether a close reason is recorded (written under the lock; a reference read is atomic).</summary>
    private bool IsClosing() => Volatile.Read(ref _closeReason) is not null;
}

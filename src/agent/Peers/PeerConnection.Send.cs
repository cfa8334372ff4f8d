// The send side of a PeerConnection. Senders on any thread write whole frames into a Pipe under a
// lock and flush it (a cheap commit unless the pipe is over its pause threshold); one send loop
// drains the pipe into the socket, so frames queued together leave in one gathered send (Kestrel's
// ProcessSends). When the pipe is paused only one flush is outstanding: later senders just append,
// and the flush task flushes again when the first completes.
// Direct path: when nothing is queued, a small frame (an ack, a 4 KiB write) is written to the
// non-blocking socket by the sender itself — no wake-up of the send loop, which matters for a
// replicated write's latency; whatever the socket does not take goes into the pipe as before, and
// while anything is queued every sender queues, so the byte order is kept.
// Batches: while the sending thread has a SendBatch open (it is handling the frames of one read, or
// an NBD client's pipelined requests), frames up to 32 KiB are held and leave in one send when the
// batch closes; any other send pushes them first, so the byte order is kept.
// Two pieces: a Data or resync frame comes as its head and the block it carries, so a large block is
// copied once, into the pipe, and not first into a frame of its own.
using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Redundancy.Block.Agent.Batching;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Peers;

public sealed partial class PeerConnection : IBatchedSender
{
    private readonly List<ArraySegment<byte>> _sendSegments = [];
    private bool _flushing;
    private bool _unflushed;
    private bool _sendWriterCompleted;
    private Task _flushTask = Task.CompletedTask;

    /// <summary>Bytes handed to the pipe and not yet sent by the loop (guarded by _lock).</summary>
    private long _queuedBytes;

    /// <summary>Bytes handed to the send pipe and not yet sent; while any are, every frame queues behind them.</summary>
    internal long QueuedBytes
    {
        get
        {
            lock (_lock)
            {
                return _queuedBytes;
            }
        }
    }

    /// <summary>Largest segment the send pipe is asked for when a large block is copied into it.</summary>
    private const int MaxSegmentBytes = 1 << 20;

    /// <summary>Largest frame the direct path sends (bigger ones would mostly not fit the socket buffer at once).</summary>
    private const int DirectSendMaxBytes = 256 * 1024;

    /// <summary>Small frames held for the sending thread's <see cref="SendBatch"/>, sent together when it closes (guarded by _lock).</summary>
    private readonly ArrayBufferWriter<byte> _held = new(16 * 1024);

    /// <summary>Largest frame a batch holds (acks, control frames, Data of small writes; bigger ones go out at once).</summary>
    private const int HoldMaxFrameBytes = 32 * 1024;

    /// <summary>Most bytes a batch holds before it sends what it has.</summary>
    private const int HoldMaxBytes = 128 * 1024;

    /// <summary>Sends what the closing batch held (the frames keep their order: anything sent meanwhile pushed them first).</summary>
    void IBatchedSender.FlushBatch()
    {
        lock (_lock)
        {
            if (_closeReason is not null || _sendWriterCompleted)
            {
                _held.ResetWrittenCount();
                return;
            }

            PushHeldLocked();
        }
    }

    /// <summary>Sends held frames now (straight to the socket when nothing is queued), ahead of anything sent after.</summary>
    private void PushHeldLocked()
    {
        if (_held.WrittenCount == 0)
        {
            return;
        }
        SendNowLocked(_held.WrittenSpan, directMaxBytes: int.MaxValue);
        _held.ResetWrittenCount();
    }

    /// <summary>
    /// Writes <paramref name="frames"/> straight to the socket when nothing is queued and they are at
    /// most <paramref name="directMaxBytes"/>; whatever the socket does not take goes into the pipe.
    /// </summary>
    private void SendNowLocked(ReadOnlySpan<byte> frames, int directMaxBytes)
    {
        if (_queuedBytes == 0 && frames.Length <= directMaxBytes)
        {
            frames = frames[TrySendDirectLocked(frames)..];
        }
        if (!frames.IsEmpty)
        {
            CopyLocked(_sendPipe.Writer, frames);
            _queuedBytes += frames.Length;
            FlushLocked();
        }
    }

    /// <summary>
    /// Queues one frame: header and <paramref name="message"/> encoded straight into the send pipe,
    /// then <paramref name="trailingPayload"/> (a Data block) copied after it. Thread-safe, never
    /// blocks on the network. False when the connection is closing or closed (the frame is dropped).
    /// </summary>
    public bool SendFrame<T>(ushort volume, in T message, ReadOnlySpan<byte> trailingPayload = default)
        where T : struct, IPeerMessage<T>
    {
        lock (_lock)
        {
            if (_closeReason is not null || _sendWriterCompleted)
            {
                return false;
            }

            PushHeldLocked();
            PipeWriter writer = _sendPipe.Writer;
            int written = FrameWriter.Write(writer, volume, in message, trailingPayload.Length);
            CopyLocked(writer, trailingPayload);
            CountSentLocked(written + trailingPayload.Length);
            _queuedBytes += written + trailingPayload.Length;
            FlushLocked();
            return true;
        }
    }

    /// <summary>Queues bytes that already form whole frames (relayed or prepared frames). Same rules as <see cref="SendFrame"/>.</summary>
    public bool SendRaw(ReadOnlySpan<byte> frames)
    {
        lock (_lock)
        {
            if (_closeReason is not null || _sendWriterCompleted)
            {
                return false;
            }

            CountSentLocked(frames.Length);
            if (frames.Length <= HoldMaxFrameBytes && SendBatch.Hold(this))
            {
                if (_held.WrittenCount + frames.Length > HoldMaxBytes)
                {
                    PushHeldLocked();
                }
                _held.Write(frames);
                return true;
            }
            PushHeldLocked();
            SendNowLocked(frames, DirectSendMaxBytes);
            return true;
        }
    }

    /// <summary>
    /// Queues a frame given as its head and its trailing payload (a block of data). A frame the
    /// direct path may send is joined into one buffer first (one copy, as a prepared frame); a larger
    /// one goes to the pipe piece by piece, so its data is copied once, not into a frame and again.
    /// </summary>
    public bool SendRaw(ReadOnlySpan<byte> head, ReadOnlySpan<byte> payload)
    {
        int total = head.Length + payload.Length;
        if (total <= DirectSendMaxBytes)
        {
            byte[] joined = ArrayPool<byte>.Shared.Rent(total);
            try
            {
                head.CopyTo(joined);
                payload.CopyTo(joined.AsSpan(head.Length));
                return SendRaw(joined.AsSpan(0, total));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(joined);
            }
        }

        lock (_lock)
        {
            if (_closeReason is not null || _sendWriterCompleted)
            {
                return false;
            }

            CountSentLocked(total);
            PushHeldLocked();
            PipeWriter writer = _sendPipe.Writer;
            CopyLocked(writer, head);
            CopyLocked(writer, payload);
            _queuedBytes += total;
            FlushLocked();
            return true;
        }
    }

    /// <summary>
    /// Completes once fewer than <see cref="PeerConnectionOptions.SendResumeThresholdBytes"/> bytes are
    /// queued (at once when the pipe is not paused), or the connection closed. Never faults.
    /// </summary>
    public Task WaitForSendCapacityAsync()
    {
        lock (_lock)
        {
            return _flushing ? _flushTask : Task.CompletedTask;
        }
    }

    /// <summary>Writes what the socket takes now, without waiting; returns the bytes sent (a socket error closes the connection).</summary>
    private int TrySendDirectLocked(ReadOnlySpan<byte> frames)
    {
        int sent = _socket.Send(frames, SocketFlags.None, out SocketError error);
        if (error is SocketError.Success)
        {
            return sent;
        }
        if (error is SocketError.WouldBlock)
        {
            return 0;
        }
        Abort(PeerSocketErrors.ToCloseReason(new SocketException((int)error)));
        return frames.Length; // the connection is closing: the frames are dropped, as after a close
    }

    private static void CopyLocked(PipeWriter writer, ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            // A large block asks for a segment its size (up to 1 MiB) rather than the 16 KiB minimum:
            // one pooled buffer per block instead of dozens, and fewer pieces for the gathered send.
            Span<byte> span = writer.GetSpan(Math.Min(bytes.Length, MaxSegmentBytes));
            int count = Math.Min(span.Length, bytes.Length);
            bytes[..count].CopyTo(span);
            writer.Advance(count);
            bytes = bytes[count..];
        }
    }

    private void CountSentLocked(long frameBytes)
    {
        _bytesSent += frameBytes;
        _framesSent++;
    }

    private void FlushLocked()
    {
        if (_flushing)
        {
            _unflushed = true;
            return;
        }

        ValueTask<FlushResult> flush = _sendPipe.Writer.FlushAsync();
        if (flush.IsCompleted)
        {
            flush.GetAwaiter().GetResult(); // IsCompleted here means the send loop ended: a close is under way
            return;
        }

        _flushing = true;
        _flushTask = AwaitFlushAsync(flush);
    }

    /// <summary>Waits out a paused flush, flushing again for what was appended meanwhile. Never throws.</summary>
    private async Task AwaitFlushAsync(ValueTask<FlushResult> flush)
    {
        while (true)
        {
            try
            {
                await flush.ConfigureAwait(false);
            }
            catch (Exception exception)
            {
                Abort(PeerSocketErrors.ToCloseReason(exception));
            }

            lock (_lock)
            {
                if (_closeReason is not null || !_unflushed)
                {
                    _flushing = false;
                    if (_closeReason is not null)
                    {
                        CompleteSendWriterLocked(); // a local Close left this to us; Complete commits what is left
                    }

                    return;
                }

                _unflushed = false;
                flush = _sendPipe.Writer.FlushAsync();
                if (flush.IsCompleted)
                {
                    flush.GetAwaiter().GetResult();
                    _flushing = false;
                    return;
                }
            }
        }
    }

    private void CompleteSendWriterLocked()
    {
        if (!_sendWriterCompleted)
        {
            _sendWriterCompleted = true;
            _sendPipe.Writer.Complete();
        }
    }

    /// <summary>Drains the send pipe into the socket; on a completed pipe shuts the send side down. Never throws.</summary>
    private async Task SendLoopAsync()
    {
        PipeReader reader = _sendPipe.Reader;
        try
        {
            while (true)
            {
                ReadResult result = await reader.ReadAsync().ConfigureAwait(false);
                if (result.IsCanceled)
                {
                    break;
                }

                ReadOnlySequence<byte> buffer = result.Buffer;
                // Read before AdvanceTo: after it the buffer's segments go back to the pipe, a writer
                // may reuse them at once, and a length computed from them then is garbage. It was:
                // the count drifted after the first large frame, and every later frame went through
                // this loop on the thread pool instead of straight to the socket.
                long sentBytes = buffer.Length;
                if (!buffer.IsEmpty)
                {
                    await SendAsync(buffer).ConfigureAwait(false);
                }

                reader.AdvanceTo(buffer.End);
                lock (_lock)
                {
                    _queuedBytes -= sentBytes;
                }
                if (result.IsCompleted)
                {
                    _socket.Shutdown(SocketShutdown.Send); // the peer reads what we sent, then end of stream
                    break;
                }
            }
        }
        catch (Exception exception)
        {
            Abort(PeerSocketErrors.ToCloseReason(exception));
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Sends the whole buffer: one gathered send for several segments.</summary>
    private async ValueTask SendAsync(ReadOnlySequence<byte> buffer)
    {
        if (!buffer.IsSingleSegment && TryGatherSegments(buffer))
        {
            int sent = await _socket.SendAsync(_sendSegments, SocketFlags.None).ConfigureAwait(false);
            _sendSegments.Clear();
            buffer = buffer.Slice(sent);
        }

        foreach (ReadOnlyMemory<byte> segment in buffer)
        {
            ReadOnlyMemory<byte> rest = segment;
            while (!rest.IsEmpty)
            {
                int sent = await _socket.SendAsync(rest, SocketFlags.None).ConfigureAwait(false);
                rest = rest[sent..];
            }
        }
    }

    private bool TryGatherSegments(in ReadOnlySequence<byte> buffer)
    {
        _sendSegments.Clear();
        foreach (ReadOnlyMemory<byte> segment in buffer)
        {
            if (!MemoryMarshal.TryGetArray(segment, out ArraySegment<byte> array))
            {
                _sendSegments.Clear();
                return false;
            }

            _sendSegments.Add(array);
        }

        return true;
    }
}

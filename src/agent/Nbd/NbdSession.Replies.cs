// The reply path of a session. Completed requests are queued; whichever thread finds no sender
// active becomes the sender and writes the queue out with blocking sends, in order of completion,
// until it is empty (flat combining: no sender thread to wake, no hop). Small replies are coalesced
// into one buffer so a burst of completions costs one send; large READ replies (header already in
// front of the data) are written straight from the request. The session's own thread holds back its
// replies while more pipelined requests are already received, and flushes before it blocks. Only the
// current sender writes to the stream during transmission, so replies never interleave.
// Another thread that completes requests inside a SendBatch (the peer connection's receive loop,
// completing a read's worth of acknowledged writes) holds their replies until the batch closes, so
// they too leave in one send.
using System.Buffers;
using Redundancy.Block.Agent.Batching;

namespace Redundancy.Block.Agent.Nbd;

internal sealed partial class NbdSession : IBatchedSender
{
    private const int SendBufferBytes = 256 * 1024;

    /// <summary>Replies up to this size are copied into the send buffer; larger ones are written directly.</summary>
    private const int CoalesceLimitBytes = 16 * 1024;

    /// <summary>Most replies the session thread holds back while it executes a pipelined burst.</summary>
    private const int MaxHeldReplies = 16;

    private readonly Queue<NbdRequest> _replyQueue = new();
    private readonly object _replyLock = new();
    private readonly List<NbdRequest> _sendBatch = [];
    private byte[] _sendBuffer = [];
    private int _sessionThreadId;
    private bool _sending;
    private bool _senderStopped;
    private bool _sendFailed;

    /// <summary>Queues a request whose reply is encoded; it is written (by this thread or the current sender) and released.</summary>
    public void EnqueueReply(NbdRequest request)
    {
        bool send = false;
        bool dropped = false;
        lock (_replyLock)
        {
            if (_senderStopped)
            {
                dropped = true;
            }
            else
            {
                _replyQueue.Enqueue(request);
                send = !_sending && !HoldsBackReplies() && !HeldByBatch();
                _sending |= send;
            }
        }

        if (dropped)
        {
            request.Release();
        }
        else if (send)
        {
            SendQueuedReplies();
        }
    }

    /// <summary>Writes every queued reply unless another thread is already doing so.</summary>
    private void FlushReplies()
    {
        lock (_replyLock)
        {
            if (_sending || _senderStopped || _replyQueue.Count == 0)
            {
                return;
            }

            _sending = true;
        }

        SendQueuedReplies();
    }

    void IBatchedSender.FlushBatch() => FlushReplies();

    bool IBatchedSender.RepliesToClients => true;

    /// <summary>Another thread with a send batch open defers sending to the batch's end (called under _replyLock).</summary>
    private bool HeldByBatch() => Environment.CurrentManagedThreadId != _sessionThreadId && SendBatch.Hold(this);

    /// <summary>The session thread defers sending while more requests are already received (it flushes before blocking).</summary>
    private bool HoldsBackReplies() =>
        Environment.CurrentManagedThreadId == _sessionThreadId
        && _replyQueue.Count < MaxHeldReplies
        && _input.Available >= Engine.Nbd.NbdRequestHeader.SizeBytes;

    /// <summary>Runs as the sender (the caller set <see cref="_sending"/>) until the queue is empty.</summary>
    private void SendQueuedReplies()
    {
        while (true)
        {
            lock (_replyLock)
            {
                while (_replyQueue.TryDequeue(out NbdRequest? request))
                {
                    _sendBatch.Add(request);
                }

                if (_sendBatch.Count == 0)
                {
                    _sending = false;
                    Monitor.PulseAll(_replyLock);
                    return;
                }
            }

            WriteBatch();
            foreach (NbdRequest request in _sendBatch)
            {
                request.Release();
            }

            _sendBatch.Clear();
        }
    }

    private void WriteBatch()
    {
        if (_sendBuffer.Length == 0)
        {
            _sendBuffer = ArrayPool<byte>.Shared.Rent(SendBufferBytes);
        }

        byte[] sendBuffer = _sendBuffer;
        try
        {
            int used = 0;
            foreach (NbdRequest request in _sendBatch)
            {
                ReadOnlySpan<byte> reply = request.Reply.Span;
                if (_sendFailed)
                {
                    return;
                }

                if (reply.Length <= CoalesceLimitBytes)
                {
                    if (used + reply.Length > sendBuffer.Length)
                    {
                        _stream.Write(sendBuffer, 0, used);
                        used = 0;
                    }

                    reply.CopyTo(sendBuffer.AsSpan(used));
                    used += reply.Length;
                    continue;
                }

                if (used > 0)
                {
                    _stream.Write(sendBuffer, 0, used);
                    used = 0;
                }

                _stream.Write(reply);
            }

            if (used > 0)
            {
                _stream.Write(sendBuffer, 0, used);
            }
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException or NotSupportedException)
        {
            // The client is gone: stop reading too; remaining replies are dropped with the connection.
            _sendFailed = true;
            CancelReading();
        }
    }

    /// <summary>Waits for the current sender, then drops whatever is still queued; later replies are dropped too.</summary>
    private void StopSender()
    {
        lock (_replyLock)
        {
            _senderStopped = true;
            while (_sending)
            {
                Monitor.Wait(_replyLock);
            }

            while (_replyQueue.TryDequeue(out NbdRequest? request))
            {
                _sendBatch.Add(request);
            }
        }

        foreach (NbdRequest request in _sendBatch)
        {
            request.Release();
        }

        _sendBatch.Clear();
        byte[] sendBuffer = Interlocked.Exchange(ref _sendBuffer, []);
        if (sendBuffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(sendBuffer);
        }
    }
}

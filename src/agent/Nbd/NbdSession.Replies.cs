// The reply path of a session. Completed requests are queued; one sender writes them in order of
// completion. Small replies are coalesced into one buffer so a burst of completions costs one send;
// large READ replies (header already in front of the data) are written straight from the request.
// Nothing else writes to the stream during transmission, so replies never interleave.
using System.Buffers;
using System.Runtime.CompilerServices;

namespace Redundancy.Block.Agent.Nbd;

internal sealed partial class NbdSession
{
    private const int SendBufferBytes = 256 * 1024;

    /// <summary>Replies up to this size are copied into the send buffer; larger ones are written directly.</summary>
    private const int CoalesceLimitBytes = 16 * 1024;

    private readonly Queue<NbdRequest> _replyQueue = new();
    private readonly Lock _replyLock = new();
    private readonly NbdReplySignal _replySignal = new();
    private readonly List<NbdRequest> _sendBatch = [];
    private bool _senderWaiting;
    private bool _senderStopping;
    private bool _senderStopped;
    private bool _sendFailed;
    private Task _sender = Task.CompletedTask;

    /// <summary>Queues a request whose reply is encoded; the sender writes it and releases it.</summary>
    public void EnqueueReply(NbdRequest request)
    {
        bool wake = false;
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
                wake = _senderWaiting;
                _senderWaiting = false;
            }
        }

        if (dropped)
        {
            request.Release();
        }
        else if (wake)
        {
            _replySignal.Set();
        }
    }

    private async Task SendRepliesAsync()
    {
        byte[] sendBuffer = ArrayPool<byte>.Shared.Rent(SendBufferBytes);
        try
        {
            while (true)
            {
                bool wait;
                lock (_replyLock)
                {
                    while (_replyQueue.TryDequeue(out NbdRequest? request))
                    {
                        _sendBatch.Add(request);
                    }

                    if (_sendBatch.Count == 0 && _senderStopping)
                    {
                        _senderStopped = true;
                        return;
                    }

                    wait = _sendBatch.Count == 0;
                    if (wait)
                    {
                        _senderWaiting = true;
                        _replySignal.Reset();
                    }
                }

                if (wait)
                {
                    await _replySignal.WaitAsync().ConfigureAwait(false);
                    continue;
                }

                await WriteBatchAsync(sendBuffer).ConfigureAwait(false);
                foreach (NbdRequest request in _sendBatch)
                {
                    request.Release();
                }

                _sendBatch.Clear();
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(sendBuffer);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteBatchAsync(byte[] sendBuffer)
    {
        try
        {
            int used = 0;
            foreach (NbdRequest request in _sendBatch)
            {
                ReadOnlyMemory<byte> reply = request.Reply;
                if (_sendFailed)
                {
                    return;
                }

                if (reply.Length <= CoalesceLimitBytes)
                {
                    if (used + reply.Length > sendBuffer.Length)
                    {
                        await _stream.WriteAsync(sendBuffer.AsMemory(0, used)).ConfigureAwait(false);
                        used = 0;
                    }

                    reply.Span.CopyTo(sendBuffer.AsSpan(used));
                    used += reply.Length;
                    continue;
                }

                if (used > 0)
                {
                    await _stream.WriteAsync(sendBuffer.AsMemory(0, used)).ConfigureAwait(false);
                    used = 0;
                }

                await _stream.WriteAsync(reply).ConfigureAwait(false);
            }

            if (used > 0)
            {
                await _stream.WriteAsync(sendBuffer.AsMemory(0, used)).ConfigureAwait(false);
            }
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException or NotSupportedException)
        {
            // The client is gone: stop reading too; remaining replies are dropped with the connection.
            _sendFailed = true;
            CancelReading();
        }
    }

    /// <summary>Lets the sender finish what is queued, then stop; later replies are dropped.</summary>
    private async Task StopSenderAsync()
    {
        bool wake;
        lock (_replyLock)
        {
            _senderStopping = true;
            wake = _senderWaiting;
            _senderWaiting = false;
        }

        if (wake)
        {
            _replySignal.Set();
        }

        await _sender.ConfigureAwait(false);
    }
}

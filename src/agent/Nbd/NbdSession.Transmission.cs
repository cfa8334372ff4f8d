// The transmission phase's read loop, on the session's own thread: parse a request header, check it,
// receive (or discard) a WRITE payload, then execute it. A WRITE of any size and a small READ run
// right here (the device call is a synchronous pread/pwrite; a hop to another thread would cost more
// than it: a large WRITE's payload was just received on this thread, and the client keeps streaming
// the next one into the socket buffer meanwhile), and the reply is sent at once, or held back while
// more pipelined requests are already received so a burst is answered with one send. FLUSH, TRIM,
// zeroing and large READs go to the thread pool so they overlap with receiving. At most
// MaxInFlightRequestsPerConnection requests are in flight. A rejected request is answered without
// touching the device, and its payload is still consumed so the stream stays in sync.
// While more requests are already received the thread keeps a SendBatch open, so the Data frames a
// burst of replicated writes sends to the peer leave together; it closes the batch before the last
// request of the burst (that one's frame goes out at once, ahead of its local write) and before
// anything that blocks.
using Microsoft.Extensions.Logging;
using Redundancy.Block.Agent.Batching;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Nbd;

internal sealed partial class NbdSession
{
    /// <summary>Largest READ the session thread executes itself (WRITEs always run inline).</summary>
    private const int InlineMaxBytes = 64 * 1024;

    /// <summary>Whether this session's thread has a send batch open for a burst of pipelined requests.</summary>
    private bool _inBurst;

    /// <summary>Reads requests until DISC, end of stream or a protocol violation; returns why it stopped.</summary>
    private string Transmit(CancellationToken cancellationToken)
    {
        _sessionThreadId = Environment.CurrentManagedThreadId;
        try
        {
            return ReadRequests(cancellationToken);
        }
        finally
        {
            // Replies held back for a burst must not wait for a request that will never come.
            _sessionThreadId = 0;
            EndBurst();
        }
    }

    private string ReadRequests(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_input.Available < NbdRequestHeader.SizeBytes)
            {
                EndBurst();
                // Poll for the next request only once every request is answered: then the client's
                // next request is all that can come, and soon. While requests are in flight the
                // client is waiting for us, and a spinning thread takes the CPU their completions need.
                if (!_input.Fill(NbdRequestHeader.SizeBytes, cancellationToken, mayPoll: Volatile.Read(ref _inFlight) == 0))
                {
                    return "client closed the connection";
                }
            }

            if (!NbdRequestHeader.TryRead(_input.Peek(NbdRequestHeader.SizeBytes), out NbdRequestHeader header))
            {
                _logger.ProtocolViolation(_client, ExportName ?? "", "bad request magic");
                return "bad request magic";
            }

            _input.Consume(NbdRequestHeader.SizeBytes);
            if (header.Command == NbdCommand.Disconnect)
            {
                return "client sent NBD_CMD_DISC";
            }

            if (header.Command == NbdCommand.Write && header.LengthBytes > _options.MaxDiscardedPayloadBytes)
            {
                string reason = $"WRITE payload of {header.LengthBytes} bytes exceeds {_options.MaxDiscardedPayloadBytes}";
                _logger.ProtocolViolation(_client, ExportName ?? "", reason);
                return reason;
            }

            if (!_slots.Wait(0))
            {
                EndBurst();
                _slots.Wait(cancellationToken);
            }

            Admit(RentRequest(header), cancellationToken);
        }
    }

    /// <summary>Validates a request, receives its payload and executes or dispatches it, or answers it with an error.</summary>
    private void Admit(NbdRequest request, CancellationToken cancellationToken)
    {
        NbdRequestHeader header = request.Header;
        NbdError error = _refuseNew ? NbdError.Shutdown : NbdRequestValidator.Validate(header, _limits);
        try
        {
            if (header.Command == NbdCommand.Write)
            {
                if (_input.Available < header.LengthBytes)
                {
                    EndBurst();
                }

                if (error == NbdError.None)
                {
                    _input.ReadExact(request.PrepareWritePayload().Span, cancellationToken);
                }
                else
                {
                    _input.Skip(header.LengthBytes, cancellationToken);
                }
            }
        }
        catch
        {
            request.Release();
            throw;
        }

        if (error == NbdError.None)
        {
            FollowBurst();
            if (RunsInline(header))
            {
                request.Execute();
            }
            else
            {
                ThreadPool.UnsafeQueueUserWorkItem(request, preferLocal: false);
            }

            return;
        }

        if (_logger.IsEnabled(LogLevel.Debug))
        {
            _logger.RequestRejected(_client, ExportName ?? "", header.Command, header.OffsetBytes, header.LengthBytes, error);
        }

        request.SetError(error);
        EnqueueReply(request);
    }

    /// <summary>Opens the burst's send batch while another request is already received; closes it before the last one.</summary>
    private void FollowBurst()
    {
        bool more = _input.Available >= NbdRequestHeader.SizeBytes;
        if (more && !_inBurst)
        {
            _inBurst = true;
            SendBatch.Open();
        }
        else if (!more && _inBurst)
        {
            _inBurst = false;
            SendBatch.Close();
        }
        else if (_inBurst)
        {
            SendBatch.FlushIfHeldTooLong();
        }
    }

    /// <summary>Sends everything held for the burst (peer frames, replies): the thread may block next.</summary>
    private void EndBurst()
    {
        if (_inBurst)
        {
            _inBurst = false;
            SendBatch.Close();
        }

        FlushReplies();
    }

    private static bool RunsInline(in NbdRequestHeader header) =>
        header.Command == NbdCommand.Write || (header.Command == NbdCommand.Read && header.LengthBytes <= InlineMaxBytes);
}

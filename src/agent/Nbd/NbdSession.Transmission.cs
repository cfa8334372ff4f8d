// The transmission phase's read loop: parse a request header, check it, read (or discard) a WRITE
// payload, and hand the request to the thread pool. Requests run concurrently and reply out of
// order; at most MaxInFlightRequestsPerConnection at a time. A rejected request is answered without
// touching the device, and its payload is still consumed so the stream stays in sync.
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Nbd;

internal sealed partial class NbdSession
{
    /// <summary>Largest READ/WRITE the read loop may execute itself.</summary>
    private const int InlineMaxBytes = 64 * 1024;

    /// <summary>Reads requests until DISC, end of stream or a protocol violation; returns why it stopped.</summary>
    private async Task<string> TransmitAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (!await _input.FillAsync(NbdRequestHeader.SizeBytes, cancellationToken).ConfigureAwait(false))
            {
                return "client closed the connection";
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
                await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            await AdmitAsync(RentRequest(header), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Validates a request, reads its payload and dispatches it, or answers it with an error.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AdmitAsync(NbdRequest request, CancellationToken cancellationToken)
    {
        NbdRequestHeader header = request.Header;
        NbdError error = _refuseNew ? NbdError.Shutdown : NbdRequestValidator.Validate(header, _limits);
        try
        {
            if (header.Command == NbdCommand.Write)
            {
                ValueTask payload = error == NbdError.None
                    ? _input.ReadExactAsync(request.PrepareWritePayload(), cancellationToken)
                    : _input.SkipAsync(header.LengthBytes, cancellationToken);
                await payload.ConfigureAwait(false);
            }
        }
        catch
        {
            request.Release();
            throw;
        }

        if (error == NbdError.None)
        {
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

    /// <summary>
    /// A small READ/WRITE with no further request already received runs on the read loop itself: the
    /// thread hop would cost more than the copy, and nothing waits behind it. Anything else (a burst of
    /// pipelined requests, FLUSH, TRIM, zeroing, large transfers) goes to the thread pool to overlap.
    /// </summary>
    private bool RunsInline(in NbdRequestHeader header) =>
        header.Command is NbdCommand.Read or NbdCommand.Write
        && header.LengthBytes <= InlineMaxBytes
        && _input.Available < NbdRequestHeader.SizeBytes;
}

// The negotiation phase (fixed newstyle, NO_ZEROES): greeting, client flags, then options until
// NBD_OPT_GO or NBD_OPT_EXPORT_NAME picks an export. Every option's data is consumed, even when
// refused, so the next option is parsed in sync; hostile lengths are capped before any allocation.
using System.Buffers.Binary;
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Nbd;

internal sealed partial class NbdSession
{
    /// <summary>Option data we buffer: room for a 4096-byte name plus many queries or info types.</summary>
    private const int MaxOptionDataBytes = 64 * 1024;

    /// <summary>Longer option data is discarded (ERR_TOO_BIG) up to this size; beyond it, we drop the client.</summary>
    private const int MaxSkippedOptionDataBytes = 16 * 1024 * 1024;

    private bool _noZeroes;
    private bool _baseAllocationSelected;
    private string? _metaContextExport;

    /// <summary>Outcome of one option: keep negotiating, close, or enter transmission with an export.</summary>
    private readonly record struct OptionOutcome(bool Close, INbdExport? Export)
    {
        public static OptionOutcome Continue => default;

        public static OptionOutcome Drop => new(true, null);
    }

    private async Task<INbdExport?> NegotiateWithTimeoutAsync()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_readCancellation.Token);
        timeout.CancelAfter(_options.HandshakeTimeout);
        using CancellationTokenRegistration abortReceive =
            timeout.Token.UnsafeRegister(static state => ((NbdSession)state!).AbortReceive(), this);
        try
        {
            return await NegotiateAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_readCancellation.IsCancellationRequested)
        {
            _logger.HandshakeDropped(_client, $"handshake not finished within {_options.HandshakeTimeout.TotalSeconds:0.#} s");
            return null;
        }
    }

    private async Task<INbdExport?> NegotiateAsync(CancellationToken cancellationToken)
    {
        await SendAsync(NbdHandshakeWriter.Greeting(NbdHandshakeFlags.FixedNewstyle | NbdHandshakeFlags.NoZeroes), cancellationToken)
            .ConfigureAwait(false);
        if (!_input.Fill(4, cancellationToken))
        {
            return null;
        }

        var clientFlags = (NbdClientFlags)BinaryPrimitives.ReadUInt32BigEndian(_input.Peek(4));
        _input.Consume(4);
        if ((clientFlags & ~NbdClientFlags.Known) != 0)
        {
            _logger.HandshakeDropped(_client, $"unknown client flags 0x{(uint)clientFlags:x}");
            return null;
        }

        _noZeroes = (clientFlags & NbdClientFlags.NoZeroes) != 0;
        while (true)
        {
            if (!_input.Fill(NbdOptionHeader.SizeBytes, cancellationToken))
            {
                return null;
            }

            if (!NbdOptionHeader.TryRead(_input.Peek(NbdOptionHeader.SizeBytes), out NbdOptionHeader header))
            {
                _logger.HandshakeDropped(_client, "bad option magic");
                return null;
            }

            _input.Consume(NbdOptionHeader.SizeBytes);
            OptionOutcome outcome = await HandleOptionAsync(header, cancellationToken).ConfigureAwait(false);
            if (outcome.Close || outcome.Export is not null)
            {
                return outcome.Export;
            }
        }
    }

    private async Task<OptionOutcome> HandleOptionAsync(NbdOptionHeader header, CancellationToken cancellationToken)
    {
        uint option = header.Option;
        if (header.DataLengthBytes > MaxOptionDataBytes)
        {
            if (header.DataLengthBytes > MaxSkippedOptionDataBytes || option == (uint)NbdOption.ExportName)
            {
                _logger.HandshakeDropped(_client, $"option {option} with {header.DataLengthBytes} bytes of data");
                return OptionOutcome.Drop;
            }

            _input.Skip(header.DataLengthBytes, cancellationToken);
            NbdOptionReplyType error = Enum.IsDefined((NbdOption)option) ? NbdOptionReplyType.ErrTooBig : NbdOptionReplyType.ErrUnsup;
            await SendAsync(NbdHandshakeWriter.Error(option, error, $"option data of {header.DataLengthBytes} bytes is too large"), cancellationToken)
                .ConfigureAwait(false);
            return OptionOutcome.Continue;
        }

        var data = new byte[header.DataLengthBytes];
        _input.ReadExact(data, cancellationToken);
        return (NbdOption)option switch
        {
            NbdOption.ExportName => await HandleExportNameAsync(data, cancellationToken).ConfigureAwait(false),
            NbdOption.Abort => await HandleAbortAsync(cancellationToken).ConfigureAwait(false),
            NbdOption.List => await ReplyAsync(option, HandleList(data), cancellationToken).ConfigureAwait(false),
            NbdOption.Info or NbdOption.Go => await HandleInfoOrGoAsync((NbdOption)option, data, cancellationToken).ConfigureAwait(false),
            NbdOption.StructuredReply => await ReplyAsync(option, HandleStructuredReply(data), cancellationToken).ConfigureAwait(false),
            NbdOption.ListMetaContext or NbdOption.SetMetaContext =>
                await ReplyAsync(option, HandleMetaContext((NbdOption)option, data), cancellationToken).ConfigureAwait(false),
            NbdOption.StartTls => await ReplyAsync(option, [Unsupported(option, "TLS is not supported by this server")], cancellationToken).ConfigureAwait(false),
            _ => await ReplyAsync(option, [Unsupported(option, $"option {option} is not supported")], cancellationToken).ConfigureAwait(false),
        };
    }

    private static byte[] Unsupported(uint option, string message) =>
        NbdHandshakeWriter.Error(option, NbdOptionReplyType.ErrUnsup, message);

    private static byte[] Invalid(uint option, string message) =>
        NbdHandshakeWriter.Error(option, NbdOptionReplyType.ErrInvalid, message);

    private async Task<OptionOutcome> ReplyAsync(uint option, IReadOnlyList<byte[]> messages, CancellationToken cancellationToken)
    {
        Invariant.Assert(messages.Count > 0, $"option {option} produced no reply");
        await SendAsync([.. messages.SelectMany(message => message)], cancellationToken).ConfigureAwait(false);
        return OptionOutcome.Continue;
    }

    /// <summary>Old-style export selection: a refusal cannot be reported, only a close.</summary>
    private async Task<OptionOutcome> HandleExportNameAsync(byte[] data, CancellationToken cancellationToken)
    {
        if (!NbdOptionParser.TryDecodeString(data, out string name, out string error))
        {
            _logger.HandshakeDropped(_client, $"NBD_OPT_EXPORT_NAME: {error}");
            return OptionOutcome.Drop;
        }

        INbdExport? export = TryOpenExport(name, out _, out _);
        if (export is null)
        {
            return OptionOutcome.Drop;
        }

        try
        {
            byte[] reply = NbdHandshakeWriter.ExportNameReply((ulong)export.SizeBytes, TransmissionFlags(export), _noZeroes);
            await SendAsync(reply, cancellationToken).ConfigureAwait(false);
            return new OptionOutcome(false, export);
        }
        catch
        {
            export.Dispose();
            throw;
        }
    }

    private async Task<OptionOutcome> HandleAbortAsync(CancellationToken cancellationToken)
    {
        try
        {
            await SendAsync(NbdHandshakeWriter.Ack((uint)NbdOption.Abort), cancellationToken).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The client may close without waiting for our ACK.
        }

        return OptionOutcome.Drop;
    }

    /// <summary>Writes one handshake message with a blocking send on the session's thread.</summary>
    private Task SendAsync(byte[] message, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _stream.Write(message);
        return Task.CompletedTask;
    }
}

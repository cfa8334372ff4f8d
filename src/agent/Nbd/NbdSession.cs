// One NBD client connection: negotiation (NbdSession.Handshake.cs), then transmission
// (NbdSession.Transmission.cs) with replies written by one sender at a time (NbdSession.Replies.cs).
// This part holds the shared state and the lifecycle: run, stop, revoke, drain, close.
//
// Like nbdkit, a connection has its own thread doing blocking receives and sends: a request is
// received, executed and answered with no thread hop, which is what a queue-depth-1 client waits on.
// Stopping or revoking shuts the socket's receive side down to end a blocked receive.
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Nbd;

internal sealed partial class NbdSession
{
    /// <summary>Context id we give base:allocation in NBD_OPT_SET_META_CONTEXT.</summary>
    public const uint BaseAllocationContextId = 1;

    private const int InputBufferBytes = 256 * 1024;

    private readonly Stream _stream;
    private readonly INbdExportCatalog _catalog;
    private readonly NbdServerOptions _options;
    private readonly ILogger _logger;
    private readonly string _client;
    private readonly NbdInputBuffer _input;
    private readonly CancellationTokenSource _readCancellation = new();
    private readonly SemaphoreSlim _slots;
    private readonly Stack<NbdRequest> _requestPool = new();
    private readonly Lock _requestPoolLock = new();
    private int _inFlight;
    private TaskCompletionSource? _idleWaiter;
    private volatile bool _refuseNew;
    private bool _closed;
    private INbdExport? _export;
    private IBlockDevice? _device;
    private NbdExportLimits _limits;
    private CancellationTokenRegistration _revokeRegistration;

    public NbdSession(Stream stream, string client, INbdExportCatalog catalog, NbdServerOptions options, ILogger logger)
    {
        _stream = stream;
        _client = client;
        _catalog = catalog;
        _options = options;
        _logger = logger;
        _input = new NbdInputBuffer(stream, InputBufferBytes);
        _slots = new SemaphoreSlim(options.MaxInFlightRequestsPerConnection, options.MaxInFlightRequestsPerConnection);
    }

    /// <summary>Export being served, once transmission has started; null before and after.</summary>
    public string? ExportName { get; private set; }

    /// <summary>True once NBD_OPT_STRUCTURED_REPLY was acknowledged.</summary>
    public bool StructuredReplies { get; private set; }

    public IBlockDevice Device => _device ?? throw new InvariantViolationException("no export in transmission");

    public CancellationToken RevokedToken { get; private set; }

    /// <summary>The export was revoked (read from the token, so it is true before any callback runs).</summary>
    public bool IsRevoked => RevokedToken.IsCancellationRequested;

    /// <summary>Runs the whole connection on a thread of its own; completes when it is closed. Never throws.</summary>
    public Task RunAsync() =>
        Task.Factory.StartNew(
            static state => ((NbdSession)state!).Run(), this, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Run()
    {
        string reason = "client disconnected";
        using CancellationTokenRegistration abortReceive =
            _readCancellation.Token.UnsafeRegister(static state => ((NbdSession)state!).AbortReceive(), this);
        try
        {
            // Everything below completes synchronously: the stream is read and written with blocking calls.
            INbdExport? export = NegotiateWithTimeoutAsync().GetAwaiter().GetResult();
            if (export is null)
            {
                return;
            }

            BeginTransmission(export);
            reason = Transmit(_readCancellation.Token);
        }
        catch (OperationCanceledException) when (_readCancellation.IsCancellationRequested)
        {
            reason = IsRevoked ? "export revoked" : "server stopping";
        }
        catch (Exception exception) when (exception is IOException or EndOfStreamException or ObjectDisposedException)
        {
            reason = exception.Message;
        }
        catch (Exception exception)
        {
            _logger.SessionFailed(exception, _client);
        }
        finally
        {
            CloseAsync(reason).GetAwaiter().GetResult();
        }
    }

    /// <summary>
    /// Server shutdown: stop reading, let executing requests finish and reply, then close. Requests read
    /// after this point are failed with ESHUTDOWN.
    /// </summary>
    public void RequestStop()
    {
        _refuseNew = true;
        CancelReading();
        ScheduleHardClose();
    }

    /// <summary>
    /// A client that stops reading its replies can leave the connection thread blocked in a send,
    /// where neither cancellation nor a receive shutdown reaches it. If the session has not closed
    /// within the drain timeout, the socket is closed under it, which fails that send.
    /// </summary>
    private void ScheduleHardClose()
    {
        _ = Task.Delay(_options.DrainTimeout).ContinueWith(
            static (_, state) => ((NbdSession)state!).HardClose(), this, CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void HardClose()
    {
        if (Volatile.Read(ref _closed))
        {
            return;
        }
        _logger.DrainTimedOut(_client, Volatile.Read(ref _inFlight));
        try
        {
            _stream.Dispose();
        }
        catch (Exception exception) when (exception is IOException or SocketException or ObjectDisposedException)
        {
            // Already gone.
        }
    }

    /// <summary>Maps a device failure to an NBD error, logging it.</summary>
    public NbdError ClassifyFailure(Exception failure, in NbdRequestHeader header)
    {
        string export = ExportName ?? "";
        switch (failure)
        {
            case OperationCanceledException when IsRevoked:
                return NbdError.Shutdown;
            case IOException:
                _logger.DeviceIoError(failure, export, header.Command, header.OffsetBytes, header.LengthBytes);
                return NbdError.Io;
            default:
                _logger.DeviceUnexpectedError(failure, export, header.Command, header.OffsetBytes, header.LengthBytes);
                return NbdError.Io;
        }
    }

    private void BeginTransmission(INbdExport export)
    {
        _export = export;
        _device = export.Device;
        ExportName = export.Name;
        bool baseAllocation = _baseAllocationSelected && _metaContextExport == export.Name;
        _limits = new NbdExportLimits(
            (ulong)export.SizeBytes, export.IsReadOnly, StructuredReplies, export.Device.CanFastZero, baseAllocation,
            (uint)_options.MaxPayloadBytes);
        RevokedToken = export.Revoked;
        _revokeRegistration = export.Revoked.UnsafeRegister(static state => ((NbdSession)state!).OnRevoked(), this);
    }

    /// <summary>The agent took the export away: fail everything with ESHUTDOWN, then close.</summary>
    private void OnRevoked()
    {
        _refuseNew = true;
        _logger.Revoked(ExportName ?? "", _client);
        _ = CancelReadingWhenIdleAsync();
        ScheduleHardClose();
    }

    private async Task CancelReadingWhenIdleAsync()
    {
        await WaitIdleAsync().ConfigureAwait(false);
        CancelReading();
    }

    /// <summary>
    /// Ends a blocked receive: the receive side of a socket is shut down (replies can still be sent); any
    /// other stream is closed.
    /// </summary>
    private void AbortReceive()
    {
        try
        {
            if (_stream is NetworkStream network)
            {
                network.Socket.Shutdown(SocketShutdown.Receive);
            }
            else
            {
                _stream.Dispose();
            }
        }
        catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
        {
            // Already closed: nothing is blocked on it.
        }
    }

    private void CancelReading()
    {
        try
        {
            _readCancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The session already closed.
        }
    }

    private async Task CloseAsync(string reason)
    {
        Task idle = WaitIdleAsync();
        using (var timeout = new CancellationTokenSource())
        {
            if (await Task.WhenAny(idle, Task.Delay(_options.DrainTimeout, timeout.Token)).ConfigureAwait(false) != idle)
            {
                // Closing the stream unblocks a sender stuck on a client that stopped reading.
                _logger.DrainTimedOut(_client, Volatile.Read(ref _inFlight));
                await _stream.DisposeAsync().ConfigureAwait(false);
            }

            await timeout.CancelAsync().ConfigureAwait(false);
        }

        await _revokeRegistration.DisposeAsync().ConfigureAwait(false);
        StopSender();
        await _stream.DisposeAsync().ConfigureAwait(false);
        _input.Dispose();
        _export?.Dispose();
        ExportName = null;
        Volatile.Write(ref _closed, true);
        _logger.ClientLeft(_client, reason);
    }

    /// <summary>Takes a pooled request for <paramref name="header"/>; counts it in flight.</summary>
    private NbdRequest RentRequest(in NbdRequestHeader header)
    {
        NbdRequest? request;
        lock (_requestPoolLock)
        {
            _requestPool.TryPop(out request);
        }

        request ??= new NbdRequest(this);
        request.Reset(header);
        Interlocked.Increment(ref _inFlight);
        return request;
    }

    /// <summary>A request is done (replied, or abandoned): back to the pool, its slot freed.</summary>
    public void ReturnRequest(NbdRequest request)
    {
        lock (_requestPoolLock)
        {
            _requestPool.Push(request);
        }

        _slots.Release();
        if (Interlocked.Decrement(ref _inFlight) == 0)
        {
            Volatile.Read(ref _idleWaiter)?.TrySetResult();
        }
    }

    /// <summary>Completes when no request is in flight.</summary>
    private Task WaitIdleAsync()
    {
        TaskCompletionSource waiter;
        lock (_requestPoolLock)
        {
            if (_idleWaiter is { Task.IsCompleted: false } pending)
            {
                return pending.Task;
            }

            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _idleWaiter, waiter);
        }

        if (Volatile.Read(ref _inFlight) == 0)
        {
            waiter.TrySetResult();
        }

        return waiter.Task;
    }
}

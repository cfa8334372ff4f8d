// One TCP connection to a peer: moves whole frames in both directions and nothing more — what the
// frames mean is the engine's business. Built like Kestrel's SocketConnection: a receive loop that
// cuts frames out of a PipeReader and hands each to a handler, a send loop that drains a Pipe into
// the socket, and one close reason, recorded once, that every failure path funnels into.
// This file: lifecycle (start, close, dispose) and counters. Receive.cs, Send.cs and Handshake.cs
// hold the loops.
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Peers;

/// <summary>A framed, thread-safe connection to one peer, created from a connected socket.</summary>
public sealed partial class PeerConnection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly PeerConnectionOptions _options;
    private readonly ILogger _logger;
    private readonly PipeReader _reader;
    private readonly Pipe _sendPipe;
    private readonly Lock _lock = new();
    private PeerFrameHandler? _onFrame;
    private Action<PeerCloseReason>? _onClosed;
    private PeerCloseReason? _closeReason;
    private bool _started;
    private int _socketDisposed;
    private int _maxPayloadBytes = FrameHeader.HandshakeMaxPayloadBytes;
    private Task _run = Task.CompletedTask;
    private long _bytesSent, _framesSent, _bytesReceived, _framesReceived;

    /// <param name="socket">A connected TCP socket; the connection owns it from now on.</param>
    /// <param name="name">How log lines name this link, e.g. "r0 beta" (may be set later through <see cref="Name"/>).</param>
    /// <param name="options">Buffer sizes and thresholds.</param>
    /// <param name="logger">Where closes and protocol errors are logged.</param>
    public PeerConnection(Socket socket, string name, PeerConnectionOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        _socket = socket;
        _options = options;
        _logger = logger;
        Name = name;
        RemoteEndPoint = socket.RemoteEndPoint;
        RemoteAddress = RemoteEndPoint?.ToString() ?? "(unknown)";
        ConfigureSocket(socket, options);
        _reader = PipeReader.Create(
            new PeerReceiveStream(socket),
            new StreamPipeReaderOptions(bufferSize: options.ReceiveBufferBytes, minimumReadSize: Math.Min(4096, options.ReceiveBufferBytes), leaveOpen: false));
        // Non-blocking (after the NetworkStream, which insists on a blocking socket when created), so
        // SendRaw's direct path never waits on a full socket buffer; async operations work either way.
        socket.Blocking = false;
        _sendPipe = new Pipe(new PipeOptions(
            pauseWriterThreshold: options.SendPauseThresholdBytes,
            resumeWriterThreshold: options.SendResumeThresholdBytes,
            minimumSegmentSize: 16 << 10,
            useSynchronizationContext: false));
    }

    /// <summary>How log lines name this link ("r0 beta"); the owner may rename an accepted connection.</summary>
    public string Name { get; set; }

    /// <summary>The peer's address and port.</summary>
    public EndPoint? RemoteEndPoint { get; }

    /// <summary><see cref="RemoteEndPoint"/> as text, for logs.</summary>
    public string RemoteAddress { get; }

    /// <summary>Largest frame payload accepted; a larger announced frame closes the connection unread.</summary>
    public int MaxPayloadBytes => Volatile.Read(ref _maxPayloadBytes);

    /// <summary>Why the connection closed; null while it is open.</summary>
    public PeerCloseReason? CloseReason
    {
        get
        {
            lock (_lock)
            {
                return _closeReason;
            }
        }
    }

    /// <summary>Frame bytes (headers included) queued for sending.</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);

    /// <summary>Frames queued for sending.</summary>
    public long FramesSent => Interlocked.Read(ref _framesSent);

    /// <summary>Frame bytes (headers included) received and handed on.</summary>
    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    /// <summary>Frames received and handed on.</summary>
    public long FramesReceived => Interlocked.Read(ref _framesReceived);

    /// <summary>
    /// Raises (or lowers) the payload limit, e.g. to the negotiated maximum once both Features are
    /// known. Takes effect from the next frame, even one already buffered.
    /// </summary>
    public void SetMaxPayloadBytes(int maxPayloadBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPayloadBytes, FrameHeader.HandshakeMaxPayloadBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxPayloadBytes, (int)FeaturesMessage.MaxFramePayloadLimitBytes);
        Volatile.Write(ref _maxPayloadBytes, maxPayloadBytes);
    }

    /// <summary>
    /// Starts receiving and sending. <paramref name="onFrame"/> gets every frame (see
    /// <see cref="PeerFrameHandler"/>); <paramref name="onClosed"/> fires exactly once, after the last
    /// frame was handled, from the receive loop (or at once if the connection is already closed).
    /// </summary>
    public void Start(PeerFrameHandler onFrame, Action<PeerCloseReason> onClosed)
    {
        ArgumentNullException.ThrowIfNull(onFrame);
        ArgumentNullException.ThrowIfNull(onClosed);
        lock (_lock)
        {
            if (_started)
            {
                throw new InvalidOperationException($"{Name}: connection to {RemoteAddress} is already started");
            }

            _started = true;
            _onFrame = onFrame;
            _onClosed = onClosed;
        }

        _run = RunAsync();
    }

    /// <summary>
    /// Closes from this side: frames already queued are still sent (for at most
    /// <see cref="PeerConnectionOptions.CloseLinger"/>), then the socket is shut down. No frame is
    /// handled after this returns unless called from the handler itself. Later calls do nothing.
    /// </summary>
    public void Close(string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        bool started;
        lock (_lock)
        {
            if (_closeReason is not null)
            {
                return;
            }

            PushHeldLocked(); // held frames (a refusal's reason, say) still leave before the close
            _closeReason = new PeerCloseReason(PeerCloseKind.LocalClose, reason);
            started = _started;
            if (!_flushing)
            {
                CompleteSendWriterLocked();
            }
        }

        _reader.CancelPendingRead();
        if (!started)
        {
            ShutdownAndDisposeSocket();
        }
    }

    /// <summary>Closes ("connection closed locally" unless already closed) and waits until both loops ended.</summary>
    public async ValueTask DisposeAsync()
    {
        Close("connection closed locally");
        bool started;
        lock (_lock)
        {
            started = _started;
        }

        if (started)
        {
            await _run.ConfigureAwait(false);
        }
        else
        {
            lock (_lock)
            {
                CompleteSendWriterLocked();
            }

            await _sendPipe.Reader.CompleteAsync().ConfigureAwait(false);
            await _reader.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>TCP_NODELAY and socket buffers; before connect/listen so the window scale covers them.</summary>
    internal static void ConfigureSocket(Socket socket, PeerConnectionOptions options)
    {
        socket.NoDelay = true;
        if (options.SocketBufferBytes > 0)
        {
            socket.SendBufferSize = options.SocketBufferBytes;
            socket.ReceiveBufferSize = options.SocketBufferBytes;
        }
    }

    /// <summary>Records <paramref name="reason"/> unless a reason is already set, then tears the socket down.</summary>
    private void Abort(PeerCloseReason reason)
    {
        lock (_lock)
        {
            if (_closeReason is not null)
            {
                return;
            }

            _closeReason = reason;
        }

        _reader.CancelPendingRead();
        DisposeSocket();
    }

    /// <summary>
    /// An orderly close of a connection whose loops never ran (an accept refused or timed out before
    /// its Hello). Closing a socket that still holds received bytes nobody read sends a reset instead
    /// of a FIN (RFC 1122 4.2.2.13), so the peer saw "connection reset by peer" or end of stream
    /// depending on whether our read had reached its last bytes — a race with the Hello timeout.
    /// Shutting the send side down first puts the FIN ahead of any reset: the peer reads end of stream.
    /// </summary>
    private void ShutdownAndDisposeSocket()
    {
        if (Volatile.Read(ref _socketDisposed) == 0)
        {
            try
            {
                _socket.Shutdown(SocketShutdown.Send);
            }
            catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
            {
                // Already reset by the peer or disposed by a concurrent abort: nothing left to end cleanly.
            }
        }

        DisposeSocket();
    }

    private void DisposeSocket()
    {
        if (Interlocked.Exchange(ref _socketDisposed, 1) == 0)
        {
            _socket.Dispose();
        }
    }

    /// <summary>Both loops, then the Closed callback, then teardown. Never throws.</summary>
    private async Task RunAsync()
    {
        await Task.Yield();
        Task sending = SendLoopAsync();
        await ReceiveLoopAsync().ConfigureAwait(false);
        PeerCloseReason reason;
        lock (_lock)
        {
            Invariant.Assert(_closeReason is not null, "the receive loop ends only with a close reason");
            reason = _closeReason;
        }

        ReportClosed(reason);
        if (reason.Kind == PeerCloseKind.LocalClose)
        {
            // Let queued frames (e.g. a Disconnect message) reach the peer, but not forever.
            await Task.WhenAny(sending, Task.Delay(_options.CloseLinger)).ConfigureAwait(false);
        }

        DisposeSocket();
        _sendPipe.Reader.CancelPendingRead();
        await sending.ConfigureAwait(false);
        lock (_lock)
        {
            CompleteSendWriterLocked();
        }

        await _reader.CompleteAsync().ConfigureAwait(false);
    }

    private void ReportClosed(PeerCloseReason reason)
    {
        if (reason.Kind is not (PeerCloseKind.FrameError or PeerCloseKind.HandlerFailed))
        {
            _logger.Closed(Name, RemoteAddress, reason.Message);
        }

        try
        {
            _onClosed!(reason);
        }
        catch (Exception exception)
        {
            _logger.ClosedCallbackFailed(exception, Name, RemoteAddress);
        }
    }
}

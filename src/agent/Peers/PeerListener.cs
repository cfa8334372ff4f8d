// Accepts peer connections on one replication address, shared by every resource and peer that
// names it (DRBD gives each connection its own port; we also allow one port for many). An accepted
// connection is not trusted with anything until its Hello says which resource and node-id it is:
// the listener reads up to that Hello (bounded in time, frame count and frame size), then hands the
// connection, with the frames read so far, to whoever registered that resource and peer node-id,
// or closes it.
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Peers;

/// <summary>Takes over an accepted connection; the frames are those already read, the Hello last.</summary>
public delegate void PeerAcceptHandler(PeerConnection connection, IReadOnlyList<(FrameHeader Header, byte[] Payload)> frames);

/// <summary>A listening socket that routes incoming peer connections by their Hello.</summary>
public sealed class PeerListener : IAsyncDisposable
{
    private readonly IPEndPoint _endPoint;
    private readonly PeerConnectionOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly Dictionary<(string Resource, int NodeId), PeerAcceptHandler> _routes = [];
    private readonly Dictionary<PeerConnection, Task> _handshakes = [];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _socket;
    private bool _disposed;
    private Task _acceptLoop = Task.CompletedTask;

    /// <param name="address">"IP:PORT" or "[IPv6]:PORT"; port 0 picks a free port (see <see cref="LocalEndPoint"/>).</param>
    /// <param name="options">Settings of the accepted connections and the Hello bounds.</param>
    /// <param name="loggerFactory">Loggers for the listener and its connections.</param>
    public PeerListener(string address, PeerConnectionOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        options.Validate();
        _endPoint = PeerAddress.Parse(address);
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<PeerListener>();
    }

    /// <summary>The bound address (with the real port); null before <see cref="Start"/>.</summary>
    public IPEndPoint? LocalEndPoint { get; private set; }

    /// <summary>Accepted connections still waiting for their Hello (tests wait on it instead of sleeping).</summary>
    internal int HandshakesInProgress
    {
        get
        {
            lock (_lock)
            {
                return _handshakes.Count;
            }
        }
    }

    /// <summary>Binds and starts accepting. Throws <see cref="IOException"/> when the address cannot be bound.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_socket is not null || _disposed)
            {
                throw new InvalidOperationException($"peer listener on {_endPoint} is already started or stopped");
            }

            _socket = Bind();
            LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
        }

        _logger.Listening(LocalEndPoint.ToString());
        _acceptLoop = AcceptLoopAsync(_socket);
    }

    /// <summary>
    /// Routes connections whose Hello names <paramref name="resourceName"/> and sender node-id
    /// <paramref name="peerNodeId"/> to <paramref name="onAccepted"/>, which then owns the connection
    /// (it must Start or dispose it). Called on a listener task; keep it short.
    /// </summary>
    public void Register(string resourceName, int peerNodeId, PeerAcceptHandler onAccepted)
    {
        ArgumentNullException.ThrowIfNull(resourceName);
        ArgumentNullException.ThrowIfNull(onAccepted);
        lock (_lock)
        {
            if (!_routes.TryAdd((resourceName, peerNodeId), onAccepted))
            {
                throw new InvalidOperationException($"{resourceName}: node-id {peerNodeId} is already registered on {_endPoint}");
            }
        }
    }

    /// <summary>Stops routing that resource and peer here; false when it was not registered.</summary>
    public bool Unregister(string resourceName, int peerNodeId)
    {
        ArgumentNullException.ThrowIfNull(resourceName);
        lock (_lock)
        {
            return _routes.Remove((resourceName, peerNodeId));
        }
    }

    /// <summary>Stops accepting and closes connections still waiting for their Hello; handed-over ones stay with their owners.</summary>
    public async ValueTask DisposeAsync()
    {
        Task[] pending;
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _socket?.Dispose();
            pending = [.. _handshakes.Values];
        }

        await _stopping.CancelAsync().ConfigureAwait(false); // outside the lock: cancellation runs callbacks

        await _acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(pending).ConfigureAwait(false);
        _stopping.Dispose();
        if (LocalEndPoint is not null)
        {
            _logger.ListenerStopped(LocalEndPoint.ToString());
        }
    }

    private Socket Bind()
    {
        var socket = new Socket(_endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            PeerConnection.ConfigureSocket(socket, _options); // accepted sockets inherit the buffer sizes
            socket.Bind(_endPoint);
            socket.Listen(64);
            return socket;
        }
        catch (SocketException exception)
        {
            socket.Dispose();
            throw new IOException($"cannot listen for peers on {_endPoint}: {PeerSocketErrors.Describe(exception.SocketErrorCode, exception.Message)}", exception);
        }
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception exception) when (Volatile.Read(ref _disposed) && exception is ObjectDisposedException or SocketException or OperationCanceledException)
            {
                return;
            }
            catch (SocketException exception)
            {
                _logger.AcceptFailed(exception, _endPoint.ToString());
                continue;
            }

            try
            {
                BeginHandshake(client);
            }
            catch (SocketException exception)
            {
                // Reset before we could even read its address or set its options.
                client.Dispose();
                _logger.AcceptFailed(exception, _endPoint.ToString());
            }
        }
    }

    private void BeginHandshake(Socket client)
    {
        var connection = new PeerConnection(client, $"peer {client.RemoteEndPoint}", _options, _loggerFactory.CreateLogger<PeerConnection>());
        lock (_lock)
        {
            if (!_disposed && _handshakes.Count < _options.MaxConcurrentHandshakes)
            {
                _handshakes[connection] = HandshakeAsync(connection);
                return;
            }
        }

        // Unidentified connections are bounded in number as well as in time.
        if (!Volatile.Read(ref _disposed))
        {
            _logger.HandshakeLimitReached(connection.RemoteAddress, _endPoint.ToString(), _options.MaxConcurrentHandshakes);
        }

        _ = connection.DisposeAsync().AsTask();
    }

    /// <summary>Reads up to the Hello, then routes or closes. Never throws.</summary>
    private async Task HandshakeAsync(PeerConnection connection)
    {
        await Task.Yield();
        PeerHelloRead read;
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token))
        {
            deadline.CancelAfter(_options.HelloTimeout);
            try
            {
                read = await connection.ReadUntilHelloAsync(_options.MaxFramesBeforeHello, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                read = new PeerHelloRead(null, [], _stopping.IsCancellationRequested
                    ? "the listener is stopping"
                    : $"no Hello within {(long)_options.HelloTimeout.TotalMilliseconds} ms");
            }
        }

        PeerAcceptHandler? owner = read.Hello is { } hello ? Route(connection, hello) : null;
        lock (_lock)
        {
            _handshakes.Remove(connection);
            if (_disposed)
            {
                owner = null;
            }
        }

        if (owner is null)
        {
            if (read.Error is not null)
            {
                _logger.HandshakeDropped(connection.RemoteAddress, _endPoint.ToString(), read.Error);
            }

            connection.Close(read.Error ?? "refused: nobody takes this resource and node-id");
            await connection.DisposeAsync().ConfigureAwait(false);
            return;
        }

        HandOver(connection, read, owner);
    }

    /// <summary>The registered taker of <paramref name="hello"/>, or null (logged).</summary>
    private PeerAcceptHandler? Route(PeerConnection connection, HelloMessage hello)
    {
        bool resourceKnown;
        lock (_lock)
        {
            if (_routes.TryGetValue((hello.ResourceName, hello.SenderNodeId), out PeerAcceptHandler? owner))
            {
                return owner;
            }

            resourceKnown = _routes.Keys.Any(key => key.Resource == hello.ResourceName);
        }

        if (resourceKnown)
        {
            _logger.UnknownNodeId(hello.ResourceName, connection.RemoteAddress, hello.NodeName, hello.SenderNodeId);
        }
        else
        {
            _logger.UnknownResource(connection.RemoteAddress, hello.NodeName, hello.SenderNodeId, hello.ResourceName);
        }

        return null;
    }

    private void HandOver(PeerConnection connection, PeerHelloRead read, PeerAcceptHandler owner)
    {
        HelloMessage hello = read.Hello!.Value;
        connection.Name = $"{hello.ResourceName} {hello.NodeName}";
        _logger.Accepted(hello.ResourceName, connection.RemoteAddress, hello.NodeName, hello.SenderNodeId);
        try
        {
            owner(connection, read.Frames);
        }
        catch (Exception exception)
        {
            _logger.AcceptHandlerFailed(exception, hello.ResourceName, connection.RemoteAddress);
            _ = connection.DisposeAsync().AsTask();
        }
    }
}

// The NBD server: listens on a TCP or Unix socket, runs one NbdSession per client, and stops by
// closing the listener, letting executing requests finish, then closing every session.
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Redundancy.Block.Agent.Nbd;

/// <summary>Serves the exports of an <see cref="INbdExportCatalog"/> over the NBD protocol.</summary>
public sealed class NbdServer : IAsyncDisposable
{
    private readonly NbdListenAddress _address;
    private readonly INbdExportCatalog _catalog;
    private readonly NbdServerOptions _options;
    private readonly ILogger<NbdServer> _logger;
    private readonly Dictionary<NbdSession, Task> _sessions = [];
    private readonly Lock _sessionsLock = new();
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private bool _stopping;

    /// <param name="listenAddress">"IPv4:PORT" (port 0 picks a free one) or "unix:/absolute/path.sock".</param>
    /// <param name="catalog">The exports to serve.</param>
    /// <param name="options">Limits and timeouts.</param>
    /// <param name="logger">Where connection events and device errors are logged.</param>
    public NbdServer(string listenAddress, INbdExportCatalog catalog, NbdServerOptions options, ILogger<NbdServer> logger)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        options.Validate();
        _address = NbdListenAddress.Parse(listenAddress);
        _catalog = catalog;
        _options = options;
        _logger = logger;
    }

    /// <summary>The bound endpoint (with the real port when 0 was asked); null before <see cref="StartAsync"/>.</summary>
    public EndPoint? LocalEndPoint { get; private set; }

    /// <summary>Binds and starts accepting. Throws <see cref="IOException"/> when the address cannot be bound.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_listener is not null)
        {
            throw new InvalidOperationException("the NBD server is already started");
        }

        _listener = Bind();
        LocalEndPoint = _listener.LocalEndPoint;
        _logger.Listening(_address.ToString());
        _acceptLoop = AcceptLoopAsync(_listener);
        return Task.CompletedTask;
    }

    /// <summary>Stops accepting, lets executing requests finish and reply, then closes every session.</summary>
    public async Task StopAsync()
    {
        Task[] sessions;
        lock (_sessionsLock)
        {
            if (_stopping || _listener is null)
            {
                return;
            }

            _stopping = true;
            foreach (NbdSession session in _sessions.Keys)
            {
                session.RequestStop();
            }

            sessions = [.. _sessions.Values];
        }

        _listener.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(sessions).ConfigureAwait(false);
        if (_address.UnixSocketPath is { } path)
        {
            File.Delete(path);
        }

        _logger.Stopped(_address.ToString());
    }

    /// <summary>Clients currently in transmission with <paramref name="exportName"/>.</summary>
    public int ConnectionCount(string exportName)
    {
        lock (_sessionsLock)
        {
            return _sessions.Keys.Count(session => session.ExportName == exportName);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private Socket Bind()
    {
        bool unix = _address.UnixSocketPath is not null;
        var socket = new Socket(_address.EndPoint.AddressFamily, SocketType.Stream, unix ? ProtocolType.Unspecified : ProtocolType.Tcp);
        try
        {
            if (unix)
            {
                RemoveStaleUnixSocket(_address.UnixSocketPath!);
            }

            socket.Bind(_address.EndPoint);
            socket.Listen(128);
            return socket;
        }
        catch (SocketException exception)
        {
            socket.Dispose();
            throw new IOException($"NBD server cannot listen on {_address}: {exception.Message}", exception);
        }
    }

    /// <summary>Deletes a socket file nobody listens on; refuses to steal one that is live.</summary>
    private void RemoveStaleUnixSocket(string path)
    {
        if (!File.Exists(path))
        {
            return;
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(_address.EndPoint);
        }
        catch (SocketException)
        {
            File.Delete(path);
            return;
        }

        throw new IOException($"NBD server cannot listen on {_address}: another process is serving that socket");
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception exception) when (exception is ObjectDisposedException or SocketException && Volatile.Read(ref _stopping))
            {
                return;
            }
            catch (SocketException exception)
            {
                _logger.AcceptFailed(exception, _address.ToString());
                continue;
            }

            StartSession(client);
        }
    }

    private void StartSession(Socket client)
    {
        if (client.AddressFamily != AddressFamily.Unix)
        {
            client.NoDelay = true;
            // A 4 MiB receive buffer keeps a client's pipelined 1 MiB writes flowing while the
            // connection thread writes the previous one (1M sequential write: about +10%); the send
            // buffer lets a burst of replies go out without waiting for the client to read.
            client.ReceiveBufferSize = 4 << 20;
            client.SendBufferSize = 4 << 20;
        }

        string name = NbdLog.Describe(client.RemoteEndPoint);
        var session = new NbdSession(new NetworkStream(client, ownsSocket: true), name, _catalog, _options, _logger);
        lock (_sessionsLock)
        {
            if (_stopping)
            {
                client.Dispose();
                return;
            }

            // Unauthenticated handshakes are bounded in number as well as in time (qemu's
            // CVE-2024-7409 lesson): past the cap, a new connection is closed at once.
            if (_sessions.Keys.Count(s => s.ExportName is null) >= _options.MaxConcurrentHandshakes)
            {
                _logger.HandshakeLimitReached(name, _options.MaxConcurrentHandshakes);
                client.Dispose();
                return;
            }

            _logger.ClientConnected(name);
            _sessions[session] = RunSessionAsync(session);
        }
    }

    private async Task RunSessionAsync(NbdSession session)
    {
        await Task.Yield();
        await session.RunAsync().ConfigureAwait(false);
        lock (_sessionsLock)
        {
            _sessions.Remove(session);
        }
    }
}

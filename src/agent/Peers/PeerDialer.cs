// Opens outgoing peer connections. One attempt per call: a failure comes back as a reason, and the
// owner decides when to try again (connect-int), as DRBD's connection state Connecting does.
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Redundancy.Block.Agent.Peers;

/// <summary>The outcome of one dial: a connection, or why there is none.</summary>
/// <param name="Connection">The connected, not yet started connection; null on failure.</param>
/// <param name="FailureReason">Why it failed ("connection refused", "timed out after 1000 ms"); null on success.</param>
public readonly record struct PeerDialResult(PeerConnection? Connection, string? FailureReason);

/// <summary>Connects to peers' replication addresses.</summary>
public sealed class PeerDialer
{
    private readonly PeerConnectionOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;

    public PeerDialer(PeerConnectionOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        options.Validate();
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<PeerDialer>();
    }

    /// <summary>
    /// One connection attempt to <paramref name="address"/> ("IP:PORT" or "[IPv6]:PORT"), bounded by
    /// <paramref name="timeout"/>. Never throws for network or address errors (they are the result's
    /// reason, also logged as "<paramref name="name"/>: connection to ADDRESS failed: REASON");
    /// throws OperationCanceledException only when <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    /// <param name="address">The peer's replication address.</param>
    /// <param name="name">How logs name the link, e.g. "r0 beta"; becomes the connection's Name.</param>
    /// <param name="timeout">How long the TCP connect may take.</param>
    /// <param name="cancellationToken">Aborts the attempt (agent shutdown, `disconnect`).</param>
    public async Task<PeerDialResult> DialAsync(string address, string name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(name);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        IPEndPoint endPoint;
        try
        {
            endPoint = PeerAddress.Parse(address);
        }
        catch (FormatException exception)
        {
            return Failed(name, address, exception.Message);
        }

        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            PeerConnection.ConfigureSocket(socket, _options);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            await socket.ConnectAsync(endPoint, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            return Failed(name, address, $"timed out after {(long)timeout.TotalMilliseconds} ms");
        }
        catch (SocketException exception)
        {
            socket.Dispose();
            return Failed(name, address, PeerSocketErrors.Describe(exception.SocketErrorCode, exception.Message));
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        _logger.Dialled(name, address);
        return new PeerDialResult(new PeerConnection(socket, name, _options, _loggerFactory.CreateLogger<PeerConnection>()), null);
    }

    private PeerDialResult Failed(string name, string address, string reason)
    {
        _logger.DialFailed(name, address, reason);
        return new PeerDialResult(null, reason);
    }
}

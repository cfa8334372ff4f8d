// Turns socket exceptions into close reasons worded like DRBD's log ("connection refused",
// "connection reset by peer"), the way Kestrel's SocketConnection sorts reset from abort errors.
using System.Net.Sockets;

namespace Redundancy.Block.Agent.Peers;

internal static class PeerSocketErrors
{
    /// <summary>The reason an I/O exception on a peer socket stands for.</summary>
    public static PeerCloseReason ToCloseReason(Exception exception)
    {
        SocketException? socketError = exception as SocketException ?? exception.InnerException as SocketException;
        if (socketError is null)
        {
            return exception is ObjectDisposedException or OperationCanceledException
                ? new PeerCloseReason(PeerCloseKind.LocalClose, "connection closed locally")
                : new PeerCloseReason(PeerCloseKind.NetworkError, $"network error: {exception.Message}");
        }

        return socketError.SocketErrorCode switch
        {
            SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown
                => new PeerCloseReason(PeerCloseKind.ConnectionReset, "connection reset by peer"),
            SocketError.OperationAborted or SocketError.Interrupted
                => new PeerCloseReason(PeerCloseKind.LocalClose, "connection closed locally"),
            _ => new PeerCloseReason(PeerCloseKind.NetworkError, Describe(socketError.SocketErrorCode, socketError.Message)),
        };
    }

    /// <summary>Short words for a socket error, as a connect or send failure is reported.</summary>
    public static string Describe(SocketError error, string fallback) => error switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.ConnectionReset => "connection reset by peer",
        SocketError.TimedOut => "timed out",
        SocketError.HostUnreachable => "no route to host",
        SocketError.NetworkUnreachable => "network is unreachable",
        SocketError.AddressNotAvailable => "address not available",
        SocketError.AddressAlreadyInUse => "address already in use",
        SocketError.AccessDenied => "permission denied",
        _ => fallback,
    };
}

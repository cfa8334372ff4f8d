// Why a peer connection ended. Every way a connection can end — the peer, the network, a protocol
// violation or our own decision — becomes one of these, delivered once through Closed.
namespace Redundancy.Block.Agent.Peers;

/// <summary>Broad class of a close, for decisions (reconnect, log level); the message has the detail.</summary>
public enum PeerCloseKind
{
    /// <summary>The peer closed its side cleanly (FIN).</summary>
    PeerClosed = 1,
    /// <summary>The peer or the network reset the connection.</summary>
    ConnectionReset = 2,
    /// <summary>Another socket error (timeout, unreachable, ...).</summary>
    NetworkError = 3,
    /// <summary>The peer sent a frame that can never be valid (magic, checksum, size, type).</summary>
    FrameError = 4,
    /// <summary>This side closed it (<see cref="PeerConnection.Close"/>, disposal, Hello timeout, routing).</summary>
    LocalClose = 5,
    /// <summary>The frame handler threw; a bug, logged with its exception.</summary>
    HandlerFailed = 6,
}

/// <summary>Why a connection was closed, in words a DRBD administrator reads in the log.</summary>
public sealed record PeerCloseReason(PeerCloseKind Kind, string Message)
{
    public override string ToString() => Message;
}

// Log messages of the peer transport, generated at compile time. Worded for a DRBD administrator:
// "<resource> <peer>: what happened: why".
using Microsoft.Extensions.Logging;

namespace Redundancy.Block.Agent.Peers;

internal static partial class PeerLog
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "{Name}: connection to {Remote} closed: {Reason}")]
    public static partial void Closed(this ILogger logger, string name, string remote, string reason);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "{Name}: protocol error from {Remote}, disconnecting: {Reason}")]
    public static partial void FrameError(this ILogger logger, string name, string remote, string reason);

    [LoggerMessage(EventId = 103, Level = LogLevel.Error, Message = "{Name}: handling a {Type} frame from {Remote} failed, disconnecting")]
    public static partial void HandlerFailed(this ILogger logger, Exception exception, string name, string type, string remote);

    [LoggerMessage(EventId = 106, Level = LogLevel.Error, Message = "{Name}: the Closed callback for the connection to {Remote} failed")]
    public static partial void ClosedCallbackFailed(this ILogger logger, Exception exception, string name, string remote);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "{Name}: connection to {Address} failed: {Reason}")]
    public static partial void DialFailed(this ILogger logger, string name, string address, string reason);

    [LoggerMessage(EventId = 105, Level = LogLevel.Debug, Message = "{Name}: connected to {Address}")]
    public static partial void Dialled(this ILogger logger, string name, string address);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "listening for peers on {Address}")]
    public static partial void Listening(this ILogger logger, string address);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "stopped listening for peers on {Address}")]
    public static partial void ListenerStopped(this ILogger logger, string address);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "peer listener on {Address}: accepting a connection failed")]
    public static partial void AcceptFailed(this ILogger logger, Exception exception, string address);

    [LoggerMessage(EventId = 113, Level = LogLevel.Warning, Message = "incoming connection from {Remote} on {Address} refused: {Limit} handshakes already in progress")]
    public static partial void HandshakeLimitReached(this ILogger logger, string remote, string address, int limit);

    [LoggerMessage(EventId = 114, Level = LogLevel.Warning, Message = "incoming connection from {Remote} on {Address} dropped before its Hello: {Reason}")]
    public static partial void HandshakeDropped(this ILogger logger, string remote, string address, string reason);

    [LoggerMessage(EventId = 115, Level = LogLevel.Warning, Message = "incoming connection from {Remote} (node '{NodeName}', node-id {NodeId}) refused: unknown resource '{Resource}'")]
    public static partial void UnknownResource(this ILogger logger, string remote, string nodeName, int nodeId, string resource);

    [LoggerMessage(EventId = 116, Level = LogLevel.Warning, Message = "{Resource}: incoming connection from {Remote} (node '{NodeName}') refused: unknown node-id {NodeId}, not a configured peer")]
    public static partial void UnknownNodeId(this ILogger logger, string resource, string remote, string nodeName, int nodeId);

    [LoggerMessage(EventId = 117, Level = LogLevel.Debug, Message = "{Resource}: accepted connection from {Remote} (node '{NodeName}', node-id {NodeId})")]
    public static partial void Accepted(this ILogger logger, string resource, string remote, string nodeName, int nodeId);

    [LoggerMessage(EventId = 118, Level = LogLevel.Error, Message = "{Resource}: taking over the connection from {Remote} failed; closed")]
    public static partial void AcceptHandlerFailed(this ILogger logger, Exception exception, string resource, string remote);
}

// Log messages of the NBD server, generated at compile time (no boxing or formatting unless enabled).
using System.Net;
using Microsoft.Extensions.Logging;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Nbd;

internal static partial class NbdLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "NBD server listening on {Address}")]
    public static partial void Listening(this ILogger logger, string address);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "NBD server on {Address} stopped")]
    public static partial void Stopped(this ILogger logger, string address);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "NBD client {Client} connected")]
    public static partial void ClientConnected(this ILogger logger, string client);

    [LoggerMessage(EventId = 16, Level = LogLevel.Warning, Message = "NBD client {Client} refused: {Limit} handshakes already in progress")]
    public static partial void HandshakeLimitReached(this ILogger logger, string client, int limit);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "NBD client {Client} left: {Reason}")]
    public static partial void ClientLeft(this ILogger logger, string client, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "NBD client {Client} dropped during the handshake: {Reason}")]
    public static partial void HandshakeDropped(this ILogger logger, string client, string reason);

    [LoggerMessage(EventId = 6, Level = LogLevel.Information, Message = "NBD client {Client} refused export '{Export}': {Refusal}")]
    public static partial void ExportRefused(this ILogger logger, string client, string export, string refusal);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "NBD client {Client} opened export '{Export}' ({SizeBytes} bytes, flags {Flags})")]
    public static partial void ExportOpened(this ILogger logger, string client, string export, long sizeBytes, string flags);

    [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "NBD client {Client} on '{Export}' broke the protocol, disconnecting: {Reason}")]
    public static partial void ProtocolViolation(this ILogger logger, string client, string export, string reason);

    [LoggerMessage(EventId = 9, Level = LogLevel.Debug, Message = "NBD client {Client} on '{Export}': {Command} at {OffsetBytes}+{LengthBytes} rejected with {Error}")]
    public static partial void RequestRejected(this ILogger logger, string client, string export, NbdCommand command, ulong offsetBytes, uint lengthBytes, NbdError error);

    [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "NBD export '{Export}': {Command} at {OffsetBytes}+{LengthBytes} failed with an I/O error, replying EIO")]
    public static partial void DeviceIoError(this ILogger logger, Exception exception, string export, NbdCommand command, ulong offsetBytes, uint lengthBytes);

    [LoggerMessage(EventId = 11, Level = LogLevel.Error, Message = "NBD export '{Export}': {Command} at {OffsetBytes}+{LengthBytes} failed unexpectedly, replying EIO")]
    public static partial void DeviceUnexpectedError(this ILogger logger, Exception exception, string export, NbdCommand command, ulong offsetBytes, uint lengthBytes);

    [LoggerMessage(EventId = 12, Level = LogLevel.Information, Message = "NBD export '{Export}' revoked: failing requests of client {Client} with ESHUTDOWN and disconnecting")]
    public static partial void Revoked(this ILogger logger, string export, string client);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "NBD client {Client}: {Count} requests still executing after the drain timeout; closing anyway")]
    public static partial void DrainTimedOut(this ILogger logger, string client, int count);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "NBD server on {Address}: accepting a connection failed")]
    public static partial void AcceptFailed(this ILogger logger, Exception exception, string address);

    [LoggerMessage(EventId = 15, Level = LogLevel.Error, Message = "NBD client {Client}: session failed")]
    public static partial void SessionFailed(this ILogger logger, Exception exception, string client);

    /// <summary>Describes a peer for log lines.</summary>
    public static string Describe(EndPoint? endPoint) => endPoint?.ToString() switch
    {
        null or "" => "(unix)",
        var text => text,
    };
}

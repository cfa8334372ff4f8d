// Ping and PingAck (DRBD's P_PING/P_PING_ACK): empty payloads. The agent sends Ping every ping-int
// and expects PingAck within ping-timeout; any frame received also proves the peer alive.
namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>Are you there? Size 0.</summary>
public readonly record struct PingMessage : IPeerMessage<PingMessage>
{
    public const int Size = 0;

    public static MessageType Type => MessageType.Ping;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => Size;

    public static bool TryRead(ReadOnlySpan<byte> source, out PingMessage message, out string? error)
    {
        message = default;
        return WireFields.ExactLength(source, Size, Type, out error);
    }
}

/// <summary>Yes. Size 0.</summary>
public readonly record struct PingAckMessage : IPeerMessage<PingAckMessage>
{
    public const int Size = 0;

    public static MessageType Type => MessageType.PingAck;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => Size;

    public static bool TryRead(ReadOnlySpan<byte> source, out PingAckMessage message, out string? error)
    {
        message = default;
        return WireFields.ExactLength(source, Size, Type, out error);
    }
}

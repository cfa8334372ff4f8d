// The table of message types: in which connection phase each may arrive, whether it is about a
// volume or the whole connection, and its payload size bounds. The frame reader uses it to refuse a
// frame before reading its payload; the receive loop uses IsAllowed to refuse an out-of-place message.
namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>Phase of a peer connection, as far as which messages may arrive.</summary>
[Flags]
public enum PeerPhase : byte
{
    /// <summary>Features, Hello, authentication, ProtocolSettings: nothing about volumes yet.</summary>
    Handshake = 1,
    /// <summary>After the peer's ProtocolSettings were accepted: per-volume state, data, resync.</summary>
    Established = 2,
}

/// <summary>What a message is about.</summary>
public enum MessageScope : byte
{
    /// <summary>The whole connection; the frame's volume must be 0.</summary>
    Connection = 1,
    /// <summary>One volume, named in the frame header.</summary>
    Volume = 2,
}

/// <summary>Static facts about one message type.</summary>
/// <param name="Phases">Phases in which it may arrive.</param>
/// <param name="Scope">Connection-wide or per volume.</param>
/// <param name="MinPayloadBytes">Smallest valid payload.</param>
/// <param name="MaxPayloadBytes">Largest valid payload; <see cref="int.MaxValue"/> = up to the negotiated maximum.</param>
public readonly record struct MessageTypeInfo(PeerPhase Phases, MessageScope Scope, int MinPayloadBytes, int MaxPayloadBytes);

public static class MessageTypes
{
    private const PeerPhase Hs = PeerPhase.Handshake;
    private const PeerPhase Est = PeerPhase.Established;
    private const MessageScope Conn = MessageScope.Connection;
    private const MessageScope Vol = MessageScope.Volume;
    private const int Unbounded = int.MaxValue;

    /// <summary>Facts about <paramref name="type"/>; false for a type this build does not know.</summary>
    public static bool TryGetInfo(MessageType type, out MessageTypeInfo info)
    {
        info = type switch
        {
            MessageType.Features => new(Hs, Conn, FeaturesMessage.Size, FeaturesMessage.Size),
            MessageType.Hello => new(Hs, Conn, HelloMessage.MinSize, HelloMessage.MaxSize),
            MessageType.AuthChallenge => new(Hs, Conn, AuthChallengeMessage.Size, AuthChallengeMessage.Size),
            MessageType.AuthResponse => new(Hs, Conn, AuthResponseMessage.MinSize, AuthResponseMessage.MaxSize),
            MessageType.ProtocolSettings => new(Hs, Conn, ProtocolSettingsMessage.Size, ProtocolSettingsMessage.Size),
            MessageType.ProtocolUpdate => new(Est, Conn, ProtocolSettingsMessage.Size, ProtocolSettingsMessage.Size),
            MessageType.Sizes => new(Est, Vol, SizesMessage.Size, SizesMessage.Size),
            MessageType.Uuids => new(Est, Vol, UuidsMessage.MinSize, UuidsMessage.MaxSize),
            MessageType.State => new(Est, Vol, StateMessage.Size, StateMessage.Size),
            MessageType.StateChangeRequest => new(Est, Vol, StateChangeRequestMessage.Size, StateChangeRequestMessage.Size),
            MessageType.StateChangeReply => new(Est, Vol, StateChangeReplyMessage.Size, StateChangeReplyMessage.Size),
            MessageType.SyncUuid => new(Est, Vol, SyncUuidMessage.Size, SyncUuidMessage.Size),
            MessageType.StateChangeAbort => new(Est, Vol, StateChangeAbortMessage.Size, StateChangeAbortMessage.Size),
            MessageType.Data => new(Est, Vol, DataMessage.Size, Unbounded),
            MessageType.Ack => new(Est, Vol, AckMessage.Size, AckMessage.Size),
            MessageType.Barrier => new(Est, Conn, BarrierMessage.Size, BarrierMessage.Size),
            MessageType.BarrierAck => new(Est, Conn, BarrierAckMessage.Size, BarrierAckMessage.Size),
            MessageType.OutOfSync => new(Est, Vol, OutOfSyncMessage.Size, OutOfSyncMessage.Size),
            MessageType.DataRequest => new(Est, Vol, DataRequestMessage.Size, DataRequestMessage.Size),
            MessageType.DataReply => new(Est, Vol, DataReplyMessage.Size, Unbounded),
            MessageType.NegDReply => new(Est, Vol, NegDReplyMessage.Size, NegDReplyMessage.Size),
            MessageType.Ping => new(Hs | Est, Conn, PingMessage.Size, PingMessage.Size),
            MessageType.PingAck => new(Hs | Est, Conn, PingAckMessage.Size, PingAckMessage.Size),
            MessageType.BitmapChunk => new(Est, Vol, BitmapChunkMessage.Size, BitmapChunkMessage.Size + BitmapChunkMessage.MaxBodyBytes),
            MessageType.RsDataRequest => new(Est, Vol, RsDataRequestMessage.Size, RsDataRequestMessage.Size),
            MessageType.RsDataReply => new(Est, Vol, RsDataReplyMessage.Size, Unbounded),
            MessageType.RsWriteAck => new(Est, Vol, RsWriteAckMessage.Size, RsWriteAckMessage.Size),
            MessageType.CsumRsRequest => new(Est, Vol, CsumRsRequestMessage.MinSize, CsumRsRequestMessage.MaxSize),
            MessageType.RsIsInSync => new(Est, Vol, RsIsInSyncMessage.Size, RsIsInSyncMessage.Size),
            MessageType.NegRsDReply => new(Est, Vol, NegRsDReplyMessage.Size, NegRsDReplyMessage.Size),
            MessageType.RsCancel => new(Est, Vol, RsCancelMessage.Size, RsCancelMessage.Size),
            MessageType.OvRequest => new(Est, Vol, OvRequestMessage.Size, OvRequestMessage.Size),
            MessageType.OvReply => new(Est, Vol, OvReplyMessage.MinSize, OvReplyMessage.MaxSize),
            MessageType.OvResult => new(Est, Vol, OvResultMessage.Size, OvResultMessage.Size),
            MessageType.Disconnect => new(Hs | Est, Conn, DisconnectMessage.MinSize, DisconnectMessage.MaxSize),
            _ => default,
        };
        return info.Phases != 0;
    }

    /// <summary>True when <paramref name="type"/> is known and may arrive in <paramref name="phase"/>.</summary>
    public static bool IsAllowed(MessageType type, PeerPhase phase) =>
        TryGetInfo(type, out var info) && (info.Phases & phase) != 0;

    /// <summary>
    /// Checks a received header against the table for <paramref name="phase"/>: a known type, allowed now.
    /// Returns null when it fits, else the reason (a protocol error). Sizes and volume are already checked
    /// by <see cref="FrameReader"/>.
    /// An unknown type with <see cref="FrameFlags.Optional"/> is not an error: the caller skips it.
    /// </summary>
    public static string? CheckPlace(in FrameHeader header, PeerPhase phase)
    {
        if (!TryGetInfo(header.Type, out var info))
        {
            return (header.Flags & FrameFlags.Optional) != 0 ? null : $"unknown message type 0x{(ushort)header.Type:X4}";
        }

        return (info.Phases & phase) == 0 ? $"{header.Type} is not allowed during {phase}" : null;
    }
}

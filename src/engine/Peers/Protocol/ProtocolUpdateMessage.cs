// ProtocolUpdate (DRBD's P_PROTOCOL_UPDATE): an `adjust` changed settings the handshake agrees on
// (protocol, after-sb-*, allow-two-primaries, always-asbp) on an established connection. The
// receiver adopts them instead of comparing, so the connection stays up. Same 12 bytes as
// ProtocolSettings, with the same validation.
namespace Redundancy.Block.Engine.Peers.Protocol;

public readonly record struct ProtocolUpdateMessage(ProtocolSettingsMessage Settings) : IPeerMessage<ProtocolUpdateMessage>
{
    public static MessageType Type => MessageType.ProtocolUpdate;
    public int EncodedLength => ProtocolSettingsMessage.Size;

    public int Write(Span<byte> destination) => Settings.Write(destination);

    public static bool TryRead(ReadOnlySpan<byte> source, out ProtocolUpdateMessage message, out string? error)
    {
        bool ok = ProtocolSettingsMessage.TryRead(source, out var settings, out error);
        message = new ProtocolUpdateMessage(settings);
        error = error?.Replace(nameof(MessageType.ProtocolSettings), nameof(MessageType.ProtocolUpdate), StringComparison.Ordinal);
        return ok;
    }
}

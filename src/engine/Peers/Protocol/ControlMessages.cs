// Control messages: Disconnect, sent before closing so the peer can log why and pick the right
// connection state (e.g. StandAlone after incompatible settings rather than reconnecting).
using System.Buffers.Binary;
using System.Text;

namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>Why the sender disconnects; decides whether the receiver reconnects (connect-int) or goes StandAlone.</summary>
public enum DisconnectReason : ushort
{
    /// <summary>disconnect/down by the administrator: reconnect only when asked.</summary>
    Requested = 1,
    /// <summary>The agent is shutting down: reconnect later.</summary>
    Shutdown = 2,
    /// <summary>The receiver sent something invalid.</summary>
    ProtocolError = 3,
    /// <summary>ProtocolSettings differ ("incompatible ... settings"): StandAlone.</summary>
    IncompatibleSettings = 4,
    /// <summary>cram-hmac-alg / shared-secret check failed: StandAlone.</summary>
    AuthenticationFailed = 5,
    /// <summary>Split brain not resolved by the after-sb policies: StandAlone.</summary>
    SplitBrain = 6,
    /// <summary>Generation identifiers unrelated: StandAlone.</summary>
    UnrelatedData = 7,
    /// <summary>Hello names another resource, node or node-id than the configuration: StandAlone.</summary>
    WrongPeer = 8,
    /// <summary>Both nodes are Primary and allow-two-primaries is not set (SS_TWO_PRIMARIES at connect): StandAlone.</summary>
    TwoPrimaries = 9,
}

/// <summary>The sender closes the connection: u16 reason, u16 reserved, u16-prefixed UTF-8 text (≤ 1024 bytes).</summary>
public readonly record struct DisconnectMessage(DisconnectReason Reason, string Text) : IPeerMessage<DisconnectMessage>
{
    public const int MaxTextBytes = 1024;
    public const int MinSize = 4 + 2;
    public const int MaxSize = MinSize + MaxTextBytes;

    public static MessageType Type => MessageType.Disconnect;
    public int EncodedLength => 4 + WireFields.TextLength(Text);

    /// <summary>
    /// A Disconnect whose text the receiver accepts whatever <paramref name="text"/> holds: control
    /// characters become spaces and it is cut to <see cref="MaxTextBytes"/> UTF-8 bytes (not chars)
    /// at a character boundary.
    /// </summary>
    public static DisconnectMessage Create(DisconnectReason reason, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var clean = new StringBuilder(Math.Min(text.Length, MaxTextBytes));
        int bytes = 0;
        foreach (Rune rune in text.EnumerateRunes())
        {
            Rune kept = rune.Value is < 0x20 or 0x7F ? new Rune(' ') : rune;
            if (bytes + kept.Utf8SequenceLength > MaxTextBytes)
            {
                break;
            }

            bytes += kept.Utf8SequenceLength;
            clean.Append(kept.ToString());
        }

        return new DisconnectMessage(reason, clean.ToString());
    }

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)Reason);   // u16 reason
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], 0);          // u16 reserved
        return 4 + WireFields.WriteText(destination[4..], Text);             // u16 length + UTF-8 text
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out DisconnectMessage message, out string? error)
    {
        message = default;
        if (!WireFields.MinLength(source, MinSize, Type, out error))
        {
            return false;
        }

        var reason = (DisconnectReason)BinaryPrimitives.ReadUInt16BigEndian(source);
        error = reason is < DisconnectReason.Requested or > DisconnectReason.TwoPrimaries ? $"Disconnect reason {(ushort)reason} is unknown"
            : WireFields.Reserved(Type, BinaryPrimitives.ReadUInt16BigEndian(source[2..]));
        ReadOnlySpan<byte> rest = source[4..];
        if (error is not null || !WireFields.TryReadText(ref rest, MaxTextBytes, "Disconnect text", out string text, out error))
        {
            return false;
        }

        if (!rest.IsEmpty)
        {
            error = $"Disconnect has {rest.Length} bytes after the text";
            return false;
        }

        message = new DisconnectMessage(reason, text);
        return true;
    }
}

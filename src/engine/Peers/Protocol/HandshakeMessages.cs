// Handshake messages, sent connection-wide before the connection is established, in this order by
// both sides: Features, Hello, then (with cram-hmac-alg) AuthChallenge and AuthResponse, then
// ProtocolSettings. DRBD's P_CONNECTION_FEATURES, P_AUTH_CHALLENGE/RESPONSE and P_PROTOCOL in spirit.
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>Optional capabilities; the connection uses those both sides offer.</summary>
[Flags]
public enum FeatureFlags : uint
{
    None = 0,
    /// <summary>
    /// Offered with `net { compression lz4; }`: sends and accepts LZ4-compressed Data/RsDataReply
    /// payloads. Used only when both sides offer it.
    /// </summary>
    Lz4Compression = 1 << 0,
    /// <summary>Understands CsumRsRequest/RsIsInSync (csums-alg).</summary>
    ChecksummedResync = 1 << 1,
    /// <summary>Understands OvRequest/OvReply/OvResult (verify).</summary>
    OnlineVerify = 1 << 2,
    /// <summary>Accepts Data with TRIM.</summary>
    Trim = 1 << 3,
    /// <summary>Accepts Data with ZEROES.</summary>
    WriteZeroes = 1 << 4,
    /// <summary>Accepts RsDataReply with ZEROES (unallocated ranges sent without payload).</summary>
    ResyncZeroes = 1 << 5,
    /// <summary>Not a capability but a demand: this side will challenge (cram-hmac-alg set). Must match.</summary>
    Authentication = 1u << 31,
}

/// <summary>The outcome of two Features messages.</summary>
public readonly record struct NegotiatedFeatures(ushort ProtocolVersion, FeatureFlags Flags, int MaxFramePayloadBytes);

/// <summary>Protocol version range, capabilities, largest frame payload. Size 16.</summary>
public readonly record struct FeaturesMessage(
    ushort MinProtocolVersion, ushort MaxProtocolVersion, FeatureFlags Flags, uint MaxFramePayloadBytes)
    : IPeerMessage<FeaturesMessage>
{
    public const int Size = 16;
    /// <summary>The newest protocol version this build speaks.</summary>
    public const ushort CurrentProtocolVersion = 4;
    /// <summary>The oldest protocol version this build still speaks (1: no ProtocolUpdate).</summary>
    public const ushort MinSupportedProtocolVersion = 1;
    /// <summary>From this version on a connection takes ProtocolUpdate (DRBD's agreed_pro_version >= 100 for P_PROTOCOL_UPDATE).</summary>
    public const ushort ProtocolUpdateVersion = 2;
    /// <summary>From this version on Uuids may carry <see cref="UuidFlags.MissedWrites"/> (a version-2 peer refuses unknown flags).</summary>
    public const ushort MissedWritesVersion = 3;
    /// <summary>From this version on a StateChangeRequest may carry <see cref="StateChangeRequestFlags.KeepBitmap"/> (a version-3 peer refuses unknown flags).</summary>
    public const ushort KeepBitmapVersion = 4;
    /// <summary>Largest frame payload anyone may offer (64 MiB).</summary>
    public const uint MaxFramePayloadLimitBytes = 64 << 20;
    public const FeatureFlags KnownFlags = FeatureFlags.Lz4Compression | FeatureFlags.ChecksummedResync |
        FeatureFlags.OnlineVerify | FeatureFlags.Trim | FeatureFlags.WriteZeroes | FeatureFlags.ResyncZeroes | FeatureFlags.Authentication;

    public static MessageType Type => MessageType.Features;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, MinProtocolVersion);        // u16 min version
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], MaxProtocolVersion);   // u16 max version
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)Flags);          // u32 feature flags
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], MaxFramePayloadBytes); // u32 max frame payload
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], 0);                   // u32 reserved
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out FeaturesMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        message = new FeaturesMessage(
            BinaryPrimitives.ReadUInt16BigEndian(source), BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
            (FeatureFlags)BinaryPrimitives.ReadUInt32BigEndian(source[4..]), BinaryPrimitives.ReadUInt32BigEndian(source[8..]));
        error = message.MinProtocolVersion == 0 || message.MinProtocolVersion > message.MaxProtocolVersion
            ? $"Features protocol versions {message.MinProtocolVersion}..{message.MaxProtocolVersion} are not a valid range"
            : message.MaxFramePayloadBytes < FrameHeader.HandshakeMaxPayloadBytes || message.MaxFramePayloadBytes > MaxFramePayloadLimitBytes
            ? $"Features max frame payload {message.MaxFramePayloadBytes} is outside {FrameHeader.HandshakeMaxPayloadBytes}..{MaxFramePayloadLimitBytes}"
            : WireFields.UnknownFlags(Type, (uint)message.Flags, (uint)KnownFlags)
            ?? WireFields.Reserved(Type, BinaryPrimitives.ReadUInt32BigEndian(source[12..]));
        return error is null;
    }

    /// <summary>
    /// Agrees on the highest common version, the capabilities both offer and the smaller payload
    /// maximum. Fails when the version ranges do not overlap or only one side demands authentication.
    /// </summary>
    public static bool TryNegotiate(in FeaturesMessage local, in FeaturesMessage peer, out NegotiatedFeatures negotiated, out string? error)
    {
        negotiated = default;
        ushort version = Math.Min(local.MaxProtocolVersion, peer.MaxProtocolVersion);
        if (version < Math.Max(local.MinProtocolVersion, peer.MinProtocolVersion))
        {
            error = $"no common protocol version (we speak {local.MinProtocolVersion}..{local.MaxProtocolVersion}, peer {peer.MinProtocolVersion}..{peer.MaxProtocolVersion})";
            return false;
        }

        bool localAuth = (local.Flags & FeatureFlags.Authentication) != 0;
        if (localAuth != ((peer.Flags & FeatureFlags.Authentication) != 0))
        {
            error = localAuth
                ? "peer does not authenticate but we have cram-hmac-alg and shared-secret"
                : "peer requires authentication (cram-hmac-alg) but we have no shared-secret";
            return false;
        }

        negotiated = new NegotiatedFeatures(version, local.Flags & peer.Flags, (int)Math.Min(local.MaxFramePayloadBytes, peer.MaxFramePayloadBytes));
        error = null;
        return true;
    }
}

/// <summary>Who is speaking, and whom it thinks it talks to. Variable: 4 + two u16-prefixed names.</summary>
public readonly record struct HelloMessage(byte SenderNodeId, byte ReceiverNodeId, string ResourceName, string NodeName)
    : IPeerMessage<HelloMessage>
{
    public const int MaxNameBytes = 64;
    public const int MinSize = 4 + 3 + 3;
    public const int MaxSize = 4 + 2 * (2 + MaxNameBytes);

    public static MessageType Type => MessageType.Hello;
    public int EncodedLength => 4 + WireFields.TextLength(ResourceName) + WireFields.TextLength(NodeName);

    public int Write(Span<byte> destination)
    {
        destination[0] = SenderNodeId;                                 // u8 sender node-id
        destination[1] = ReceiverNodeId;                               // u8 node-id the sender expects to reach
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], 0);    // u16 reserved
        int at = 4 + WireFields.WriteText(destination[4..], ResourceName); // u16 length + UTF-8 resource name
        return at + WireFields.WriteText(destination[at..], NodeName);     // u16 length + UTF-8 node name
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out HelloMessage message, out string? error)
    {
        message = default;
        if (!WireFields.MinLength(source, 4, Type, out error))
        {
            return false;
        }

        byte sender = source[0], receiver = source[1];
        error = sender > Superblock.MaxNodeId || receiver > Superblock.MaxNodeId
            ? $"Hello node-ids {sender}/{receiver} must be 0..{Superblock.MaxNodeId}"
            : sender == receiver ? $"Hello sender and receiver node-id are both {sender}"
            : WireFields.Reserved(Type, BinaryPrimitives.ReadUInt16BigEndian(source[2..]));
        ReadOnlySpan<byte> rest = source[4..];
        if (error is not null ||
            !WireFields.TryReadText(ref rest, MaxNameBytes, "Hello resource name", out string resource, out error) ||
            !WireFields.TryReadText(ref rest, MaxNameBytes, "Hello node name", out string node, out error))
        {
            return false;
        }

        error = resource.Length == 0 || node.Length == 0 ? "Hello names must not be empty"
            : !rest.IsEmpty ? $"Hello has {rest.Length} bytes after the node name" : null;
        message = error is null ? new HelloMessage(sender, receiver, resource, node) : default;
        return error is null;
    }
}

/// <summary>64 random bytes the peer must answer with an HMAC. Size 64.</summary>
public readonly struct AuthChallengeMessage : IPeerMessage<AuthChallengeMessage>, IEquatable<AuthChallengeMessage>
{
    public const int Size = 64;
    private readonly ChallengeBuffer _bytes;

    public AuthChallengeMessage(ReadOnlySpan<byte> bytes)
    {
        Invariant.Assert(bytes.Length == Size, "a challenge is 64 bytes");
        ChallengeBuffer buffer = default;
        bytes.CopyTo(buffer);
        _bytes = buffer;
    }

    public static MessageType Type => MessageType.AuthChallenge;
    public int EncodedLength => Size;

    [UnscopedRef]
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>A fresh challenge from <paramref name="random"/> (cryptographic in production, seeded in the simulator).</summary>
    public static AuthChallengeMessage Create(IRandom random)
    {
        ArgumentNullException.ThrowIfNull(random);
        Span<byte> bytes = stackalloc byte[Size];
        for (int i = 0; i < Size; i += 8)
        {
            BinaryPrimitives.WriteUInt64BigEndian(bytes[i..], random.NextUInt64());
        }

        return new AuthChallengeMessage(bytes);
    }

    public int Write(Span<byte> destination)
    {
        Bytes.CopyTo(destination); // 64 random bytes
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out AuthChallengeMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        if (!source.ContainsAnyExcept((byte)0))
        {
            error = "AuthChallenge is all zero bytes, not random";
            return false;
        }

        message = new AuthChallengeMessage(source);
        return true;
    }

    public bool Equals(AuthChallengeMessage other) => Bytes.SequenceEqual(other.Bytes);

    public override bool Equals(object? obj) => obj is AuthChallengeMessage other && Equals(other);

    public override int GetHashCode() => BinaryPrimitives.ReadInt32BigEndian(Bytes);

    public static bool operator ==(AuthChallengeMessage left, AuthChallengeMessage right) => left.Equals(right);

    public static bool operator !=(AuthChallengeMessage left, AuthChallengeMessage right) => !left.Equals(right);

    [InlineArray(Size)]
    private struct ChallengeBuffer
    {
        private byte _element0;
    }
}

/// <summary>HMAC(shared-secret, peer's challenge ‖ own node-id): u8 length + 16/20/32/64 bytes.</summary>
public readonly record struct AuthResponseMessage(Digest Hmac) : IPeerMessage<AuthResponseMessage>
{
    public const int MinSize = 1 + 16;
    public const int MaxSize = 1 + DigestAlgorithms.MaxLengthBytes;

    public static MessageType Type => MessageType.AuthResponse;
    public int EncodedLength => 1 + Hmac.LengthBytes;

    public int Write(Span<byte> destination) => WireFields.WriteDigest(destination, Hmac); // u8 length + HMAC

    public static bool TryRead(ReadOnlySpan<byte> source, out AuthResponseMessage message, out string? error)
    {
        message = default;
        if (!WireFields.TryReadDigest(source, Type, out var hmac, out error))
        {
            return false;
        }

        if (hmac.LengthBytes < 16)
        {
            error = $"AuthResponse of {hmac.LengthBytes} bytes is not an HMAC";
            return false;
        }

        message = new AuthResponseMessage(hmac);
        return true;
    }
}

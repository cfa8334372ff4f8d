// ProtocolSettings (DRBD's P_PROTOCOL): the net settings both peers must agree on, sent last in the
// handshake. Receiving an acceptable one moves the receiver to PeerPhase.Established.
//
//   0 u8 protocol  1 u8 after-sb-0pri  2 u8 after-sb-1pri  3 u8 after-sb-2pri  4 u16 flags
//   6 u8 data-integrity-alg  7 u8 csums-alg  8 u8 verify-alg  9 u8 compression  10 u16 reserved
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Peers.Protocol;

[Flags]
public enum ProtocolSettingsFlags : ushort
{
    None = 0,
    /// <summary>net { allow-two-primaries yes; } (requires protocol C).</summary>
    AllowTwoPrimaries = 1,
    /// <summary>net { always-asbp yes; }.</summary>
    AlwaysAsbp = 2,
}

public readonly record struct ProtocolSettingsMessage(
    ReplicationProtocol Protocol,
    AfterSb0Pri AfterSb0Pri,
    AfterSb1Pri AfterSb1Pri,
    AfterSb2Pri AfterSb2Pri,
    ProtocolSettingsFlags Flags,
    DigestAlgorithm DataIntegrityAlg,
    DigestAlgorithm CsumsAlg,
    DigestAlgorithm VerifyAlg,
    CompressionAlgorithm Compression) : IPeerMessage<ProtocolSettingsMessage>
{
    public const int Size = 12;
    private const ushort KnownFlags = (ushort)(ProtocolSettingsFlags.AllowTwoPrimaries | ProtocolSettingsFlags.AlwaysAsbp);

    public static MessageType Type => MessageType.ProtocolSettings;
    public int EncodedLength => Size;

    public bool AllowTwoPrimaries => (Flags & ProtocolSettingsFlags.AllowTwoPrimaries) != 0;

    public int Write(Span<byte> destination)
    {
        destination[0] = (byte)Protocol;                                     // u8 protocol A=1 B=2 C=3
        destination[1] = (byte)AfterSb0Pri;                                  // u8 after-sb-0pri
        destination[2] = (byte)AfterSb1Pri;                                  // u8 after-sb-1pri
        destination[3] = (byte)AfterSb2Pri;                                  // u8 after-sb-2pri
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags); // u16 flags
        destination[6] = (byte)DataIntegrityAlg;                             // u8 data-integrity-alg
        destination[7] = (byte)CsumsAlg;                                     // u8 csums-alg
        destination[8] = (byte)VerifyAlg;                                    // u8 verify-alg
        destination[9] = (byte)Compression;                                  // u8 compression
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..], 0);         // u16 reserved
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out ProtocolSettingsMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        var m = new ProtocolSettingsMessage(
            (ReplicationProtocol)source[0], (AfterSb0Pri)source[1], (AfterSb1Pri)source[2], (AfterSb2Pri)source[3],
            (ProtocolSettingsFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            (DigestAlgorithm)source[6], (DigestAlgorithm)source[7], (DigestAlgorithm)source[8], (CompressionAlgorithm)source[9]);
        error = m.Protocol is < ReplicationProtocol.A or > ReplicationProtocol.C ? $"ProtocolSettings protocol {source[0]} is not A, B or C"
            : m.AfterSb0Pri > AfterSb0Pri.DiscardRemote ? $"ProtocolSettings after-sb-0pri {source[1]} is unknown"
            : m.AfterSb1Pri > AfterSb1Pri.CallPriLostAfterSb ? $"ProtocolSettings after-sb-1pri {source[2]} is unknown"
            : m.AfterSb2Pri > AfterSb2Pri.CallPriLostAfterSb ? $"ProtocolSettings after-sb-2pri {source[3]} is unknown"
            : WireFields.UnknownFlags(Type, (ushort)m.Flags, KnownFlags)
            ?? (!DigestAlgorithms.IsDefined(m.DataIntegrityAlg) ? $"ProtocolSettings data-integrity-alg {source[6]} is unknown"
            : !DigestAlgorithms.IsDefined(m.CsumsAlg) ? $"ProtocolSettings csums-alg {source[7]} is unknown"
            : !DigestAlgorithms.IsDefined(m.VerifyAlg) ? $"ProtocolSettings verify-alg {source[8]} is unknown"
            : m.Compression > CompressionAlgorithm.Lz4 ? $"ProtocolSettings compression {source[9]} is unknown"
            : m.AllowTwoPrimaries && m.Protocol != ReplicationProtocol.C ? "ProtocolSettings allow-two-primaries requires protocol C"
            : WireFields.Reserved(Type, BinaryPrimitives.ReadUInt16BigEndian(source[10..])));
        message = error is null ? m : default;
        return error is null;
    }
}

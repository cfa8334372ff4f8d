// The 28-byte transmission request header a client sends for every command (WRITE adds its payload
// after it). Parsed without copies from the session's receive buffer.
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Nbd;

/// <summary>One transmission request header, as read from the wire.</summary>
/// <param name="Flags">Command flags (FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO); unknown bits kept for validation.</param>
/// <param name="Command">Command type; may be a value we do not know (then EINVAL).</param>
/// <param name="Cookie">Opaque client handle, echoed in the reply.</param>
/// <param name="OffsetBytes">Byte offset into the export.</param>
/// <param name="LengthBytes">Byte length of the request (and of a WRITE's payload).</param>
public readonly record struct NbdRequestHeader(
    NbdCommandFlags Flags, NbdCommand Command, ulong Cookie, ulong OffsetBytes, uint LengthBytes)
{
    /// <summary>Size on the wire.</summary>
    public const int SizeBytes = 28;

    /// <summary>
    /// Parses a header from the first <see cref="SizeBytes"/> of <paramref name="source"/>.
    /// Returns false when the source is too short or the magic is wrong (a protocol violation).
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NbdRequestHeader header)
    {
        if (source.Length < SizeBytes || BinaryPrimitives.ReadUInt32BigEndian(source) != NbdMagic.Request)
        {
            header = default;
            return false;
        }

        header = new NbdRequestHeader(
            Flags: (NbdCommandFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]),   // u16 command flags
            Command: (NbdCommand)BinaryPrimitives.ReadUInt16BigEndian(source[6..]),      // u16 type
            Cookie: BinaryPrimitives.ReadUInt64BigEndian(source[8..]),                   // u64 cookie (handle)
            OffsetBytes: BinaryPrimitives.ReadUInt64BigEndian(source[16..]),             // u64 offset
            LengthBytes: BinaryPrimitives.ReadUInt32BigEndian(source[24..]));            // u32 length
        return true;
    }

    /// <summary>Writes this header (used by clients and tests). Returns the bytes written.</summary>
    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.Request);       // u32 magic
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags);     // u16 command flags
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)Command);   // u16 type
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Cookie);            // u64 cookie
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], OffsetBytes);      // u64 offset
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], LengthBytes);      // u32 length
        return SizeBytes;
    }
}

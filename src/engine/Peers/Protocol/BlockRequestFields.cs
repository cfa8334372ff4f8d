// The 24-byte shape shared by resync and verify messages: a range of whole 4 KiB blocks, the
// requester's id, and a flags word whose meaning depends on the message.
//
//   0 u64 offset bytes   8 u64 request id   16 u32 length bytes   20 u32 flags (or reserved)
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Peers.Protocol;

internal static class BlockRequestFields
{
    public const int Size = 24;

    public static int Write(Span<byte> destination, ulong offsetBytes, uint lengthBytes, ulong requestId, uint flags = 0)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, offsetBytes);     // u64 offset
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], requestId);  // u64 request id
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], lengthBytes); // u32 length
        BinaryPrimitives.WriteUInt32BigEndian(destination[20..], flags);     // u32 flags
        return Size;
    }

    /// <summary>
    /// Reads a message that is exactly these 24 bytes with no flags (the plain range messages:
    /// RsDataRequest, RsWriteAck, RsIsInSync, NegRsDReply, RsCancel, OvRequest).
    /// </summary>
    public static bool TryReadExact(ReadOnlySpan<byte> source, MessageType type, out ulong offsetBytes, out uint lengthBytes, out ulong requestId, out string? error)
    {
        (offsetBytes, lengthBytes, requestId) = (0, 0, 0);
        return WireFields.ExactLength(source, Size, type, out error) &&
            TryRead(source, type, 0, out offsetBytes, out lengthBytes, out requestId, out _, out error);
    }

    /// <summary>Reads and checks the 24 bytes at the start of <paramref name="source"/> (which must be at least that long).</summary>
    public static bool TryRead(
        ReadOnlySpan<byte> source, MessageType type, uint knownFlags,
        out ulong offsetBytes, out uint lengthBytes, out ulong requestId, out uint flags, out string? error)
    {
        offsetBytes = BinaryPrimitives.ReadUInt64BigEndian(source);
        requestId = BinaryPrimitives.ReadUInt64BigEndian(source[8..]);
        lengthBytes = BinaryPrimitives.ReadUInt32BigEndian(source[16..]);
        flags = BinaryPrimitives.ReadUInt32BigEndian(source[20..]);
        error = WireFields.BlockRange(type, offsetBytes, lengthBytes) ??
            (knownFlags == 0 ? WireFields.Reserved(type, flags) : WireFields.UnknownFlags(type, flags, knownFlags));
        return error is null;
    }
}

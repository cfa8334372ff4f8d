// Encoders for transmission replies: the 16-byte simple reply and the structured reply chunks
// (OFFSET_DATA, NONE, ERROR, BLOCK_STATUS). They write into caller-provided spans, so the session
// can put a header right in front of the data it already holds and send both at once.
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Nbd;

/// <summary>Writes NBD transmission replies into spans.</summary>
public static class NbdReplyWriter
{
    /// <summary>Simple reply: u32 magic, u32 error, u64 cookie.</summary>
    public const int SimpleReplySizeBytes = 16;

    /// <summary>Structured chunk header: u32 magic, u16 flags, u16 type, u64 cookie, u32 length.</summary>
    public const int ChunkHeaderSizeBytes = 20;

    /// <summary>Chunk header plus the u64 offset that starts an OFFSET_DATA payload.</summary>
    public const int OffsetDataHeaderSizeBytes = ChunkHeaderSizeBytes + 8;

    /// <summary>ERROR chunk with an empty message: header, u32 error, u16 message length.</summary>
    public const int ErrorChunkSizeBytes = ChunkHeaderSizeBytes + 4 + 2;

    /// <summary>BLOCK_STATUS chunk up to the first descriptor: header and u32 context id.</summary>
    public const int BlockStatusHeaderSizeBytes = ChunkHeaderSizeBytes + 4;

    /// <summary>One BLOCK_STATUS descriptor: u32 length, u32 status flags.</summary>
    public const int BlockDescriptorSizeBytes = 8;

    public static int WriteSimpleReply(Span<byte> destination, NbdError error, ulong cookie)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.SimpleReply);   // u32 magic
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)error);       // u32 error (0 = success)
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);            // u64 cookie
        return SimpleReplySizeBytes;
    }

    /// <summary>Writes a chunk header announcing <paramref name="payloadBytes"/> of payload after it.</summary>
    public static int WriteChunkHeader(
        Span<byte> destination, NbdChunkFlags flags, NbdChunkType type, ulong cookie, uint payloadBytes)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, NbdMagic.StructuredReply); // u32 magic
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)flags);       // u16 flags (DONE)
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], (ushort)type);        // u16 chunk type
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], cookie);              // u64 cookie
        BinaryPrimitives.WriteUInt32BigEndian(destination[16..], payloadBytes);       // u32 payload length
        return ChunkHeaderSizeBytes;
    }

    /// <summary>OFFSET_DATA chunk header for <paramref name="dataBytes"/> of data that follow it.</summary>
    public static int WriteOffsetDataHeader(
        Span<byte> destination, NbdChunkFlags flags, ulong cookie, ulong offsetBytes, uint dataBytes)
    {
        Invariant.Assert(dataBytes <= uint.MaxValue - 8, "OFFSET_DATA chunk too large");
        WriteChunkHeader(destination, flags, NbdChunkType.OffsetData, cookie, dataBytes + 8);
        BinaryPrimitives.WriteUInt64BigEndian(destination[ChunkHeaderSizeBytes..], offsetBytes); // u64 offset
        return OffsetDataHeaderSizeBytes;
    }

    /// <summary>A NONE chunk with DONE: "success, nothing more" (e.g. a zero-length structured READ).</summary>
    public static int WriteDoneChunk(Span<byte> destination, ulong cookie) =>
        WriteChunkHeader(destination, NbdChunkFlags.Done, NbdChunkType.None, cookie, 0);

    /// <summary>A final ERROR chunk with no message.</summary>
    public static int WriteErrorChunk(Span<byte> destination, NbdError error, ulong cookie)
    {
        Invariant.Assert(error != NbdError.None, "an ERROR chunk needs an error");
        WriteChunkHeader(destination, NbdChunkFlags.Done, NbdChunkType.Error, cookie, 6);
        BinaryPrimitives.WriteUInt32BigEndian(destination[ChunkHeaderSizeBytes..], (uint)error); // u32 error
        BinaryPrimitives.WriteUInt16BigEndian(destination[(ChunkHeaderSizeBytes + 4)..], 0);     // u16 message length
        return ErrorChunkSizeBytes;
    }

    /// <summary>BLOCK_STATUS chunk header and context id, for <paramref name="descriptorCount"/> descriptors.</summary>
    public static int WriteBlockStatusHeader(
        Span<byte> destination, NbdChunkFlags flags, ulong cookie, uint contextId, int descriptorCount)
    {
        Invariant.Assert(descriptorCount is > 0 and <= 1 << 20, "BLOCK_STATUS needs 1..2^20 descriptors");
        uint payloadBytes = 4 + ((uint)descriptorCount * BlockDescriptorSizeBytes);
        WriteChunkHeader(destination, flags, NbdChunkType.BlockStatus, cookie, payloadBytes);
        BinaryPrimitives.WriteUInt32BigEndian(destination[ChunkHeaderSizeBytes..], contextId); // u32 context id
        return BlockStatusHeaderSizeBytes;
    }

    /// <summary>One block status descriptor.</summary>
    public static int WriteBlockDescriptor(Span<byte> destination, uint lengthBytes, uint statusFlags)
    {
        Invariant.Assert(lengthBytes > 0, "block status descriptors are never empty");
        BinaryPrimitives.WriteUInt32BigEndian(destination, lengthBytes);       // u32 extent length
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], statusFlags);  // u32 status (HOLE=1, ZERO=2)
        return BlockDescriptorSizeBytes;
    }
}

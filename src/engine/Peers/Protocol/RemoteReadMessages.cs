// Remote reads (DRBD's P_DATA_REQUEST, P_DATA_REPLY, P_NEG_DREPLY): a Primary whose own disk is not
// UpToDate (Diskless after an I/O error, or a SyncTarget) reads from a peer that is. Unlike resync
// requests an application read need not be whole 4 KiB blocks: any non-empty byte range inside the
// device. Same 24-byte shape as the resync messages; the reply carries exactly the bytes asked for.
using System.Buffers;
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>A read of an application's request, served by a peer with an UpToDate disk (P_DATA_REQUEST). Size 24.</summary>
public readonly record struct DataRequestMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId) : IPeerMessage<DataRequestMessage>
{
    public const int Size = BlockRequestFields.Size;

    public static MessageType Type => MessageType.DataRequest;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);

    public static bool TryRead(ReadOnlySpan<byte> source, out DataRequestMessage message, out string? error)
    {
        bool ok = RemoteReadFields.TryReadExact(source, Type, out ulong offset, out uint length, out ulong id, out error);
        message = ok ? new DataRequestMessage(offset, length, id) : default;
        return ok;
    }
}

/// <summary>The peer could not serve a DataRequest (its disk is not UpToDate, or the read failed) (P_NEG_DREPLY). Size 24.</summary>
public readonly record struct NegDReplyMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId) : IPeerMessage<NegDReplyMessage>
{
    public const int Size = BlockRequestFields.Size;

    public static MessageType Type => MessageType.NegDReply;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination) => BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId);

    public static bool TryRead(ReadOnlySpan<byte> source, out NegDReplyMessage message, out string? error)
    {
        bool ok = RemoteReadFields.TryReadExact(source, Type, out ulong offset, out uint length, out ulong id, out error);
        message = ok ? new NegDReplyMessage(offset, length, id) : default;
        return ok;
    }
}

/// <summary>
/// The answer to a DataRequest: 24 bytes (the last word flags: bit 0, a digest follows), the
/// data-integrity-alg digest when one is agreed (u8 length + digest), then exactly LengthBytes of
/// data (P_DATA_REPLY).
/// </summary>
public readonly record struct DataReplyMessage(ulong OffsetBytes, uint LengthBytes, ulong RequestId, Digest IntegrityDigest = default) : IPeerMessage<DataReplyMessage>
{
    public const int Size = BlockRequestFields.Size;

    /// <summary>The flag that says a digest follows the fixed part.</summary>
    public const uint IntegrityDigestFlag = 1;

    public static MessageType Type => MessageType.DataReply;
    /// <summary>The fixed part and the digest; the data follows.</summary>
    public int EncodedLength => Size + IntegrityTrailer.Length(IntegrityDigest);

    public int Write(Span<byte> destination)
    {
        int at = BlockRequestFields.Write(destination, OffsetBytes, LengthBytes, RequestId, IntegrityDigest.LengthBytes > 0 ? IntegrityDigestFlag : 0);
        return at + IntegrityTrailer.Write(destination[at..], IntegrityDigest);
    }

    /// <summary>Parses a whole contiguous payload (fixed part, digest and data).</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out DataReplyMessage message, out string? error) =>
        TryReadHead(source, source.Length, out message, out error);

    /// <summary>Parses a possibly segmented payload; <paramref name="data"/> is the data slice, not copied.</summary>
    public static bool TryRead(in ReadOnlySequence<byte> payload, out DataReplyMessage message, out ReadOnlySequence<byte> data, out string? error)
    {
        Span<byte> scratch = stackalloc byte[IntegrityTrailer.MaxHeadBytes];
        int headLength = IntegrityTrailer.HeadLength(payload, IntegrityDigestFlag, scratch);
        bool ok = TryReadHead(FramePayload.Prefix(payload, headLength, scratch), payload.Length, out message, out error);
        data = ok ? payload.Slice(message.EncodedLength) : default;
        return ok;
    }

    private static bool TryReadHead(ReadOnlySpan<byte> head, long payloadLength, out DataReplyMessage message, out string? error)
    {
        message = default;
        if (!WireFields.MinLength(head, Size, Type, out error) ||
            !RemoteReadFields.TryRead(head, Type, IntegrityDigestFlag, out ulong offset, out uint length, out ulong id, out uint flags, out error))
        {
            return false;
        }
        Digest digest = default;
        if ((flags & IntegrityDigestFlag) != 0 && !IntegrityTrailer.TryRead(head, payloadLength, Type, out digest, out error))
        {
            return false;
        }

        var m = new DataReplyMessage(offset, length, id, digest);
        long dataBytes = payloadLength - m.EncodedLength;
        error = dataBytes == length ? null : $"DataReply of {length} bytes is followed by {dataBytes} bytes";
        message = error is null ? m : default;
        return error is null;
    }
}

/// <summary>The 24 bytes of the remote-read messages: any non-empty byte range, reserved word 0.</summary>
internal static class RemoteReadFields
{
    public static bool TryReadExact(ReadOnlySpan<byte> source, MessageType type, out ulong offsetBytes, out uint lengthBytes, out ulong requestId, out string? error)
    {
        (offsetBytes, lengthBytes, requestId) = (0, 0, 0);
        return WireFields.ExactLength(source, BlockRequestFields.Size, type, out error) &&
            TryRead(source, type, 0, out offsetBytes, out lengthBytes, out requestId, out _, out error);
    }

    /// <summary>The 24 bytes; the last word is reserved (0) unless <paramref name="knownFlags"/> names flags it may carry.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, MessageType type, uint knownFlags, out ulong offsetBytes, out uint lengthBytes, out ulong requestId, out uint flags, out string? error)
    {
        // The shared reader checks whole blocks; a remote read only needs a range inside the device.
        offsetBytes = BinaryPrimitives.ReadUInt64BigEndian(source);
        requestId = BinaryPrimitives.ReadUInt64BigEndian(source[8..]);
        lengthBytes = BinaryPrimitives.ReadUInt32BigEndian(source[16..]);
        flags = BinaryPrimitives.ReadUInt32BigEndian(source[20..]);
        error = WireFields.Range(type, offsetBytes, lengthBytes)
            ?? (knownFlags == 0 ? WireFields.Reserved(type, flags) : WireFields.UnknownFlags(type, flags, knownFlags));
        return error is null;
    }
}

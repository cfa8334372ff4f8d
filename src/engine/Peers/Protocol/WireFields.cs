// Shared field codecs and checks for peer messages: exact lengths, reserved fields, byte ranges,
// length-prefixed digests and UTF-8 text. Error strings are only built on the failure path.
using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Peers.Protocol;

internal static class WireFields
{
    /// <summary>Largest byte offset + length any message may name (the largest usable device size).</summary>
    public const ulong MaxDeviceBytes = (ulong)MetadataLayout.MaxUsableSizeBytes;

    public static bool ExactLength(ReadOnlySpan<byte> source, int size, MessageType type, out string? error)
    {
        error = source.Length == size ? null : $"{type} payload must be {size} bytes, got {source.Length}";
        return error is null;
    }

    public static bool MinLength(ReadOnlySpan<byte> source, int size, MessageType type, out string? error)
    {
        error = source.Length >= size ? null : $"{type} payload must be at least {size} bytes, got {source.Length}";
        return error is null;
    }

    public static string? Reserved(MessageType type, ulong value) =>
        value == 0 ? null : $"{type} reserved field is 0x{value:X}, must be 0";

    public static string? UnknownFlags(MessageType type, ulong flags, ulong known) =>
        (flags & ~known) == 0 ? null : $"{type} has unknown flags 0x{flags & ~known:X}";

    /// <summary>A byte range inside the largest device; <paramref name="allowEmpty"/> for flush-like requests.</summary>
    public static string? Range(MessageType type, ulong offsetBytes, uint lengthBytes, bool allowEmpty = false)
    {
        if (lengthBytes == 0 && !allowEmpty)
        {
            return $"{type} length is 0";
        }

        return offsetBytes > MaxDeviceBytes || offsetBytes + lengthBytes > MaxDeviceBytes
            ? $"{type} range {offsetBytes}+{lengthBytes} lies beyond the largest device ({MaxDeviceBytes} bytes)"
            : null;
    }

    /// <summary>A range of whole 4 KiB blocks, as resync and verify requests are.</summary>
    public static string? BlockRange(MessageType type, ulong offsetBytes, uint lengthBytes) =>
        Range(type, offsetBytes, lengthBytes) ??
        (offsetBytes % MetadataLayout.BytesPerBit == 0 && lengthBytes % MetadataLayout.BytesPerBit == 0
            ? null
            : $"{type} range {offsetBytes}+{lengthBytes} is not in whole 4 KiB blocks");

    /// <summary>True for the length of some digest algorithm (crc32c, md5, sha1, sha256, sha512).</summary>
    public static bool IsDigestLength(int length) => length is 4 or 16 or 20 or 32 or 64;

    /// <summary>Writes a u8 length and the digest bytes; returns the bytes written.</summary>
    public static int WriteDigest(Span<byte> destination, in Digest digest)
    {
        destination[0] = (byte)digest.LengthBytes;
        digest.Bytes.CopyTo(destination[1..]);
        return 1 + digest.LengthBytes;
    }

    /// <summary>Reads a u8 length and that many digest bytes, which must end <paramref name="source"/>.</summary>
    public static bool TryReadDigest(ReadOnlySpan<byte> source, MessageType type, out Digest digest, out string? error)
    {
        digest = default;
        int length = source.IsEmpty ? -1 : source[0];
        if (!IsDigestLength(length))
        {
            error = $"{type} digest length {length} is not that of any digest algorithm";
            return false;
        }

        if (source.Length != 1 + length)
        {
            error = $"{type} digest of {length} bytes does not match the {source.Length - 1} bytes that follow";
            return false;
        }

        digest = new Digest(source.Slice(1, length));
        error = null;
        return true;
    }

    /// <summary>Bytes of a text field: u16 length + UTF-8.</summary>
    public static int TextLength(string text) => 2 + Encoding.UTF8.GetByteCount(text);

    public static int WriteText(Span<byte> destination, string text)
    {
        int length = Encoding.UTF8.GetBytes(text, destination[2..]);
        BinaryPrimitives.WriteUInt16BigEndian(destination, checked((ushort)length));
        return 2 + length;
    }

    /// <summary>
    /// Reads a u16-length-prefixed UTF-8 field of at most <paramref name="maxBytes"/> bytes; valid UTF-8
    /// without control characters. Advances <paramref name="source"/> past it.
    /// </summary>
    public static bool TryReadText(ref ReadOnlySpan<byte> source, int maxBytes, string field, out string text, out string? error)
    {
        text = "";
        int length = source.Length < 2 ? -1 : BinaryPrimitives.ReadUInt16BigEndian(source);
        if (length < 0 || source.Length < 2 + length)
        {
            error = $"{field} is truncated";
            return false;
        }

        ReadOnlySpan<byte> bytes = source.Slice(2, length);
        if (length > maxBytes || !Utf8.IsValid(bytes) || bytes.ContainsAnyInRange((byte)0, (byte)0x1F) || bytes.Contains((byte)0x7F))
        {
            error = $"{field} must be valid UTF-8 of at most {maxBytes} bytes without control characters";
            return false;
        }

        text = Encoding.UTF8.GetString(bytes);
        source = source[(2 + length)..];
        error = null;
        return true;
    }
}

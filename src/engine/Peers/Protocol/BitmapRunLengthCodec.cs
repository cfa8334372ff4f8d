// Encodes a stretch of a QuickSyncBitmap into one BitmapChunk body and decodes it back, after DRBD's
// RLE+VLI bitmap compression (drbd_main.c fill_bitmap_rle_bits) with our own bytes: run lengths as
// LEB128 varints. Per chunk the encoder picks RunLength only when it is at least as dense as raw bits,
// else Raw; so a chunk's body is never larger than ceil(bits/8) bytes and a whole bitmap never takes
// more than its raw size plus one byte per chunk. Decoding validates the whole body before touching
// the bitmap, and merges by OR, as DRBD's receiver does (a peer's dirty bits add to ours).
using System.Numerics;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Peers.Protocol;

public static class BitmapRunLengthCodec
{
    /// <summary>Longest LEB128 varint of a u64.</summary>
    private const int MaxVarintBytes = 10;

    /// <summary>
    /// Encodes bits from <paramref name="firstBit"/> into <paramref name="body"/> (at least 16 bytes):
    /// as many as fit. Returns the chunk header (LastChunk set when it reaches the end) and the body length.
    /// </summary>
    public static int EncodeChunk(QuickSyncBitmap bitmap, long firstBit, Span<byte> body, out BitmapChunkMessage chunk) =>
        EncodeChunk(bitmap, firstBit, bitmap?.BitCount ?? 0, body, out chunk);

    /// <summary>
    /// As <see cref="EncodeChunk(QuickSyncBitmap, long, Span{byte}, out BitmapChunkMessage)"/>, for a
    /// bitmap that ends at <paramref name="endBit"/> (the agreed size), not at the end of <paramref name="bitmap"/>.
    /// </summary>
    public static int EncodeChunk(QuickSyncBitmap bitmap, long firstBit, long endBit, Span<byte> body, out BitmapChunkMessage chunk)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        Invariant.Assert(endBit >= 0 && endBit <= bitmap.BitCount, "the exchanged bits are inside the bitmap");
        Invariant.Assert(firstBit >= 0 && firstBit <= endBit, "chunk starts inside the bitmap");
        Invariant.Assert(body.Length >= 16, "a chunk body holds at least two varints");
        long remaining = endBit - firstBit;
        if (remaining == 0)
        {
            chunk = new BitmapChunkMessage((ulong)firstBit, 0, BitmapEncoding.RunLength, BitmapChunkFlags.LastChunk);
            return 0;
        }

        bool startsWithSet = bitmap.IsSet(firstBit);
        int rleBytes = EncodeRuns(bitmap, firstBit, endBit, startsWithSet, body, out long rleBits);
        long rawBits = Math.Min(remaining, (long)body.Length * 8);
        if (rleBits >= (long)rleBytes * 8)
        {
            var flags = (startsWithSet ? BitmapChunkFlags.StartsWithSet : 0) | (rleBits == remaining ? BitmapChunkFlags.LastChunk : 0);
            chunk = new BitmapChunkMessage((ulong)firstBit, (ulong)rleBits, BitmapEncoding.RunLength, flags);
            return rleBytes;
        }

        int rawBytes = WriteRaw(bitmap.Words, firstBit, rawBits, body);
        chunk = new BitmapChunkMessage((ulong)firstBit, (ulong)rawBits, BitmapEncoding.Raw, rawBits == remaining ? BitmapChunkFlags.LastChunk : 0);
        return rawBytes;
    }

    /// <summary>
    /// Checks a chunk body against its header and <paramref name="bitmap"/>'s size, then ORs its set bits
    /// into the bitmap. On failure the bitmap is unchanged.
    /// </summary>
    public static bool TryApply(in BitmapChunkMessage chunk, ReadOnlySpan<byte> body, QuickSyncBitmap bitmap, out string? error)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        if (chunk.FirstBit + chunk.BitCount > (ulong)bitmap.BitCount)
        {
            error = $"bitmap chunk {chunk.FirstBit}+{chunk.BitCount} ends beyond our bitmap of {bitmap.BitCount} bits";
            return false;
        }

        if (chunk.Encoding == BitmapEncoding.Raw)
        {
            error = CheckRaw(chunk.BitCount, body);
            if (error is null)
            {
                ApplyRaw(body, (long)chunk.FirstBit, bitmap);
            }
        }
        else
        {
            bool startsWithSet = (chunk.Flags & BitmapChunkFlags.StartsWithSet) != 0;
            error = WalkRuns(chunk, body, startsWithSet, null);
            if (error is null)
            {
                WalkRuns(chunk, body, startsWithSet, bitmap);
            }
        }

        return error is null;
    }

    /// <summary>Writes runs until the bitmap ends or the next varint would not fit.</summary>
    private static int EncodeRuns(QuickSyncBitmap bitmap, long firstBit, long endBit, bool set, Span<byte> body, out long coveredBits)
    {
        int written = 0;
        long bit = firstBit;
        while (bit < endBit)
        {
            long next = set ? bitmap.FindNextClear(bit) : bitmap.FindNextSet(bit);
            long end = next < 0 ? endBit : Math.Min(next, endBit);
            ulong value = (ulong)(end - bit - 1);
            if (written + VarintLength(value) > body.Length)
            {
                break;
            }

            written += WriteVarint(body[written..], value);
            bit = end;
            set = !set;
        }

        coveredBits = bit - firstBit;
        Invariant.Assert(coveredBits > 0, "the first run always fits");
        return written;
    }

    /// <summary>Walks the varint runs; with a bitmap, sets the set runs, else only validates.</summary>
    private static string? WalkRuns(in BitmapChunkMessage chunk, ReadOnlySpan<byte> body, bool set, QuickSyncBitmap? bitmap)
    {
        ulong covered = 0;
        int at = 0;
        while (at < body.Length)
        {
            int length = ReadVarint(body[at..], out ulong value);
            if (length == 0)
            {
                return $"bitmap chunk run at byte {at} is a truncated or overlong varint";
            }

            if (value >= chunk.BitCount - covered)
            {
                return $"bitmap chunk runs exceed its {chunk.BitCount} bits";
            }

            ulong run = value + 1;
            if (set && bitmap is not null)
            {
                bitmap.SetBits((long)(chunk.FirstBit + covered), (long)run);
            }

            covered += run;
            at += length;
            set = !set;
        }

        return covered == chunk.BitCount ? null : $"bitmap chunk runs cover {covered} of its {chunk.BitCount} bits";
    }

    private static string? CheckRaw(ulong bitCount, ReadOnlySpan<byte> body)
    {
        if ((ulong)body.Length != (bitCount + 7) / 8)
        {
            return $"bitmap chunk Raw of {bitCount} bits needs {(bitCount + 7) / 8} bytes, got {body.Length}";
        }

        int tailBits = (int)(bitCount & 7);
        return tailBits != 0 && (body[^1] >> tailBits) != 0 ? "bitmap chunk Raw has padding bits set" : null;
    }

    private static void ApplyRaw(ReadOnlySpan<byte> body, long firstBit, QuickSyncBitmap bitmap)
    {
        for (int i = 0; i < body.Length; i++)
        {
            uint b = body[i];
            while (b != 0)
            {
                int start = BitOperations.TrailingZeroCount(b);
                int ones = BitOperations.TrailingZeroCount(~(b >> start));
                bitmap.SetBits(firstBit + (i * 8L) + start, ones);
                b &= ~(((1u << ones) - 1) << start);
            }
        }
    }

    /// <summary>Bits [firstBit, firstBit+count) as LSB-first bytes.</summary>
    private static int WriteRaw(ReadOnlySpan<ulong> words, long firstBit, long count, Span<byte> body)
    {
        int bytes = (int)((count + 7) / 8);
        for (int j = 0; j < bytes; j++)
        {
            long p = firstBit + (j * 8L);
            int word = (int)(p >> 6), shift = (int)(p & 63);
            ulong value = words[word] >> shift;
            if (shift > 56 && word + 1 < words.Length)
            {
                value |= words[word + 1] << (64 - shift);
            }

            int bitsHere = (int)Math.Min(8, count - (j * 8L));
            body[j] = (byte)(value & ((1UL << bitsHere) - 1));
        }

        return bytes;
    }

    private static int VarintLength(ulong value) => (BitOperations.Log2(value) / 7) + 1;

    private static int WriteVarint(Span<byte> destination, ulong value)
    {
        int i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        destination[i++] = (byte)value;
        return i;
    }

    /// <summary>Reads a canonical LEB128 u64; returns its length, or 0 when truncated, overlong or overflowing.</summary>
    private static int ReadVarint(ReadOnlySpan<byte> source, out ulong value)
    {
        value = 0;
        for (int i = 0; i < Math.Min(source.Length, MaxVarintBytes); i++)
        {
            byte b = source[i];
            if (i == MaxVarintBytes - 1 && b > 1)
            {
                return 0; // more than 64 bits
            }

            value |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                return i > 0 && b == 0 ? 0 : i + 1; // a trailing zero byte is an overlong encoding
            }
        }

        return 0;
    }
}

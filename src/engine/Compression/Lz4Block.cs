// The LZ4 block format (lz4/lz4 doc/lz4_Block_format.md) for `net { compression lz4; }`, our
// extension, through K4os.Compression.LZ4 (a port of the reference lz4, fast mode). What stays ours
// is the policy around it: a peer's block is untrusted, so it must decode to exactly the length the
// sender declared, and a block that does not shrink the data is not sent at all.
using K4os.Compression.LZ4;

namespace Redundancy.Block.Engine.Compression;

/// <summary>Compresses and decompresses single LZ4 blocks (no frame, no checksum).</summary>
public static class Lz4Block
{
    /// <summary>The most bytes <see cref="TryCompress"/> can produce for <paramref name="sourceLength"/> bytes.</summary>
    public static int MaxCompressedLength(int sourceLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sourceLength);
        return LZ4Codec.MaximumOutputSize(sourceLength);
    }

    /// <summary>
    /// The most bytes <paramref name="compressedLength"/> bytes of LZ4 can decode to: a match costs at
    /// least token, offset and one length byte per 255 bytes it adds, so no block expands more than 255×.
    /// A declared size beyond this is refused before a buffer for it is allocated.
    /// </summary>
    public static long MaxDecompressedLength(long compressedLength) => 255L * compressedLength;

    /// <summary>
    /// Compresses <paramref name="source"/> into <paramref name="destination"/>. False when the block
    /// does not fit: pass a destination shorter than the source to give up as soon as compressing
    /// cannot pay, or <see cref="MaxCompressedLength"/> bytes to always succeed. False for an empty
    /// source too (nothing to gain; K4os writes no block for it).
    /// </summary>
    public static bool TryCompress(ReadOnlySpan<byte> source, Span<byte> destination, out int written)
    {
        written = source.IsEmpty ? 0 : LZ4Codec.Encode(source, destination, LZ4Level.L00_FAST);
        if (written <= 0)
        {
            written = 0;
            return false;
        }

        return true;
    }

    /// <summary>
    /// Decompresses the block <paramref name="source"/> into <paramref name="destination"/>, whose
    /// length is the size the sender declared: the block must fill it exactly. Never throws for
    /// malformed input: false with the reason.
    /// </summary>
    public static bool TryDecompress(ReadOnlySpan<byte> source, Span<byte> destination, out string? error)
    {
        if (source.IsEmpty || destination.IsEmpty)
        {
            error = source.IsEmpty ? "the LZ4 block is empty" : $"an LZ4 block of {source.Length} bytes declares an empty output";
            return false;
        }

        // The reference decoder does not refuse match offset 0, which copies the destination's own
        // unwritten bytes: cleared, a malformed block cannot carry what a rented buffer held before.
        destination.Clear();
        int decoded = LZ4Codec.Decode(source, destination);
        if (decoded < 0)
        {
            error = $"the LZ4 block ({source.Length} bytes) is malformed or decodes to more than the declared {destination.Length} bytes";
            return false;
        }

        error = decoded == destination.Length ? null : $"the LZ4 block decodes to {decoded} bytes, {destination.Length} were declared";
        return error is null;
    }
}

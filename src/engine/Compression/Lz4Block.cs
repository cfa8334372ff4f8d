// The LZ4 block format (lz4/lz4 doc/lz4_Block_format.md) for `net { compression lz4; }`, our
// extension. Hand-written from that specification because the package the design names
// (K4os.Compression.LZ4) is not in this machine's NuGet registry. Compression is LZ4's fast mode in
// spirit: one hash table of 4-byte sequences, the newest position per slot, a growing skip over
// data that does not match. Decompression reads bytes from a peer, so it trusts nothing: every
// length and offset is checked against both buffers and the output must come out exactly as long
// as the sender declared.
using System.Buffers.Binary;
using System.Numerics;

namespace Redundancy.Block.Engine.Compression;

/// <summary>Compresses and decompresses single LZ4 blocks (no frame, no checksum).</summary>
public static class Lz4Block
{
    /// <summary>The shortest match the format can express (a match-length field of 0).</summary>
    public const int MinMatchBytes = 4;

    /// <summary>The last 5 bytes of a block are always literals.</summary>
    private const int LastLiteralsBytes = 5;

    /// <summary>The last match starts at least 12 bytes before the end of the block.</summary>
    private const int LastMatchStartBytes = 12;

    /// <summary>Offsets are 2 bytes: a match reaches at most 65535 bytes back.</summary>
    private const int MaxOffset = ushort.MaxValue;

    /// <summary>A 4-bit length field of 15 means "continued in the following bytes".</summary>
    private const int LengthContinued = 15;

    /// <summary>4096 table slots (16 KiB of positions), as LZ4's default memory usage.</summary>
    private const int HashBits = 12;

    /// <summary>After every 64 misses in a row, skip one more byte per probe (incompressible data goes fast).</summary>
    private const int SkipStrengthBits = 6;

    /// <summary>The most bytes <see cref="TryCompress"/> can produce for <paramref name="sourceLength"/> bytes (all literals).</summary>
    public static int MaxCompressedLength(int sourceLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sourceLength);
        return checked(sourceLength + (sourceLength / 255) + 16);
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
    /// cannot pay, or <see cref="MaxCompressedLength"/> bytes to always succeed.
    /// </summary>
    public static bool TryCompress(ReadOnlySpan<byte> source, Span<byte> destination, out int written)
    {
        var output = new BlockWriter(destination);
        int anchor = 0;
        if (source.Length > LastMatchStartBytes)
        {
            Span<int> table = stackalloc int[1 << HashBits];
            table.Clear();
            if (!TryCompressMatches(source, table, ref output, out anchor))
            {
                written = 0;
                return false;
            }
        }

        bool fits = output.TryLiterals(source[anchor..], final: true);
        written = fits ? output.Position : 0;
        return fits;
    }

    /// <summary>
    /// Emits every sequence that ends in a match; <paramref name="anchor"/> is where the final
    /// literals start. A table slot may hold any earlier position (0 when never written): a
    /// candidate is only used once its 4 bytes are compared equal.
    /// </summary>
    private static bool TryCompressMatches(ReadOnlySpan<byte> source, scoped Span<int> table, ref BlockWriter output, out int anchor)
    {
        int lastStart = source.Length - LastMatchStartBytes;
        int matchEnd = source.Length - LastLiteralsBytes;
        int position = 1;
        int misses = 0;
        anchor = 0;
        while (position <= lastStart)
        {
            uint sequence = BinaryPrimitives.ReadUInt32LittleEndian(source[position..]);
            ref int slot = ref table[Hash(sequence)];
            int candidate = slot;
            slot = position;
            if (position - candidate > MaxOffset || BinaryPrimitives.ReadUInt32LittleEndian(source[candidate..]) != sequence)
            {
                position += 1 + (misses++ >> SkipStrengthBits);
                continue;
            }

            misses = 0;
            while (position > anchor && candidate > 0 && source[position - 1] == source[candidate - 1])
            {
                position--;
                candidate--;
            }

            int length = CommonLength(source, candidate, position, matchEnd);
            if (!output.TryLiterals(source[anchor..position], final: false) || !output.TryMatch(position - candidate, length))
            {
                return false;
            }

            position += length;
            anchor = position;
            // Remember a position inside the match too, as LZ4 does: repeated data finds itself sooner.
            table[Hash(BinaryPrimitives.ReadUInt32LittleEndian(source[(position - 2)..]))] = position - 2;
        }

        return true;
    }

    private static int Hash(uint sequence) => (int)((sequence * 2654435761u) >> (32 - HashBits));

    /// <summary>How many bytes from <paramref name="earlier"/> and <paramref name="later"/> are equal, stopping at <paramref name="limit"/>.</summary>
    private static int CommonLength(ReadOnlySpan<byte> source, int earlier, int later, int limit)
    {
        int length = 0;
        while (later + length + sizeof(ulong) <= limit)
        {
            ulong difference = BinaryPrimitives.ReadUInt64LittleEndian(source[(earlier + length)..]) ^ BinaryPrimitives.ReadUInt64LittleEndian(source[(later + length)..]);
            if (difference != 0)
            {
                return length + (BitOperations.TrailingZeroCount(difference) / 8);
            }

            length += sizeof(ulong);
        }

        while (later + length < limit && source[earlier + length] == source[later + length])
        {
            length++;
        }

        return length;
    }

    /// <summary>
    /// Decompresses the block <paramref name="source"/> into <paramref name="destination"/>, whose
    /// length is the size the sender declared: the block must fill it exactly and end with a
    /// literals-only sequence. Never throws for malformed input: false with the reason.
    /// </summary>
    public static bool TryDecompress(ReadOnlySpan<byte> source, Span<byte> destination, out string? error)
    {
        int input = 0, output = 0;
        while (true)
        {
            if (input >= source.Length)
            {
                error = input == 0 ? "the LZ4 block is empty" : $"the LZ4 block ends after a match at byte {input}, not with literals";
                return false;
            }

            int token = source[input++];
            if (!TryReadLength(source, ref input, token >> 4, destination.Length - output, "a literal run", 0, out int literals, out error))
            {
                return false;
            }

            if (literals > source.Length - input || literals > destination.Length - output)
            {
                error = literals > source.Length - input
                    ? $"{literals} literals at LZ4 block byte {input} run past its end ({source.Length} bytes)"
                    : $"{literals} literals at LZ4 output byte {output} overrun the declared {destination.Length} bytes";
                return false;
            }

            source.Slice(input, literals).CopyTo(destination[output..]);
            input += literals;
            output += literals;
            if (input == source.Length)
            {
                error = output == destination.Length ? null : $"the LZ4 block decodes to {output} bytes, {destination.Length} were declared";
                return error is null;
            }

            if (!TryMatch(source, ref input, token & 0xF, destination, ref output, out error))
            {
                return false;
            }
        }
    }

    /// <summary>Reads one match (offset, then the rest of its length) and copies it.</summary>
    private static bool TryMatch(ReadOnlySpan<byte> source, ref int input, int lengthField, Span<byte> destination, ref int output, out string? error)
    {
        if (source.Length - input < 2)
        {
            error = $"the LZ4 block is truncated in the offset at byte {input}";
            return false;
        }

        int offset = BinaryPrimitives.ReadUInt16LittleEndian(source[input..]);
        input += 2;
        if (offset == 0 || offset > output)
        {
            error = offset == 0 ? $"LZ4 match offset 0 at block byte {input - 2}" : $"LZ4 match offset {offset} reaches before the start of the output (at byte {output})";
            return false;
        }

        int room = destination.Length - output - MinMatchBytes;
        if (!TryReadLength(source, ref input, lengthField, room, "a match", MinMatchBytes, out int length, out error))
        {
            return false;
        }

        if (length > room)
        {
            error = $"an LZ4 match of {length + MinMatchBytes} bytes at output byte {output} overruns the declared {destination.Length} bytes";
            return false;
        }

        length += MinMatchBytes;
        CopyMatch(destination, output, offset, length);
        output += length;
        return true;
    }

    /// <summary>
    /// A 4-bit length field, continued by bytes while they are 255. A continued length beyond
    /// <paramref name="limit"/> fails at once, so the sum cannot overflow however many bytes follow.
    /// <paramref name="bias"/> is what the encoding leaves out (4 for a match), for the message only.
    /// </summary>
    private static bool TryReadLength(ReadOnlySpan<byte> source, ref int input, int field, int limit, string what, int bias, out int length, out string? error)
    {
        length = field;
        error = null;
        if (field != LengthContinued)
        {
            return true;
        }

        long total = field;
        while (input < source.Length)
        {
            int more = source[input++];
            total += more;
            if (total > limit)
            {
                error = $"{what} of at least {total + bias} bytes (LZ4 block byte {input - 1}) overruns the {Math.Max(0, limit + bias)} bytes left of the declared output";
                return false;
            }

            if (more != byte.MaxValue)
            {
                length = (int)total;
                return true;
            }
        }

        error = $"the LZ4 block is truncated in a length at byte {input}";
        return false;
    }

    /// <summary>
    /// Copies <paramref name="length"/> bytes from <paramref name="offset"/> back. When the match
    /// overlaps itself it repeats the last <paramref name="offset"/> bytes: copy in chunks that
    /// double and never overlap their source (the copied part is always whole periods).
    /// </summary>
    private static void CopyMatch(Span<byte> destination, int output, int offset, int length)
    {
        int from = output - offset;
        if (offset >= length)
        {
            destination.Slice(from, length).CopyTo(destination[output..]);
            return;
        }

        int copied = 0;
        while (copied < length)
        {
            int chunk = Math.Min(length - copied, offset + copied);
            destination.Slice(from, chunk).CopyTo(destination[(output + copied)..]);
            copied += chunk;
        }
    }

    /// <summary>Appends sequences to the destination, refusing (false) anything that would not fit.</summary>
    private ref struct BlockWriter(Span<byte> destination)
    {
        private readonly Span<byte> destination = destination;
        private int tokenPosition;

        public int Position { get; private set; }

        /// <summary>A token with the literal length (match field 0 until <see cref="TryMatch"/>), its extra bytes and the literals.</summary>
        public bool TryLiterals(ReadOnlySpan<byte> literals, bool final)
        {
            int needed = 1 + ExtraLengthBytes(literals.Length) + literals.Length + (final ? 0 : 2);
            if (needed > destination.Length - Position)
            {
                return false;
            }

            tokenPosition = Position;
            destination[Position++] = (byte)(Math.Min(literals.Length, LengthContinued) << 4);
            WriteExtraLength(literals.Length);
            literals.CopyTo(destination[Position..]);
            Position += literals.Length;
            return true;
        }

        /// <summary>The offset and match length that close the sequence <see cref="TryLiterals"/> started.</summary>
        public bool TryMatch(int offset, int length)
        {
            int field = length - MinMatchBytes;
            if (2 + ExtraLengthBytes(field) > destination.Length - Position)
            {
                return false;
            }

            destination[tokenPosition] |= (byte)Math.Min(field, LengthContinued);
            BinaryPrimitives.WriteUInt16LittleEndian(destination[Position..], (ushort)offset);
            Position += 2;
            WriteExtraLength(field);
            return true;
        }

        private static int ExtraLengthBytes(int value) => value < LengthContinued ? 0 : ((value - LengthContinued) / byte.MaxValue) + 1;

        private void WriteExtraLength(int value)
        {
            if (value < LengthContinued)
            {
                return;
            }

            int rest = value - LengthContinued;
            while (rest >= byte.MaxValue)
            {
                destination[Position++] = byte.MaxValue;
                rest -= byte.MaxValue;
            }

            destination[Position++] = (byte)rest;
        }
    }
}

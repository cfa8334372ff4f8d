// Byte-level mutations in the manner of AFL/libFuzzer, without coverage feedback: bit flips, random
// bytes, "interesting" integers (0, -1, 2^31, 2 GiB, the input's own length...) written big- or
// little-endian over length and offset fields, small arithmetic, truncation, insertion, deletion,
// duplication of chunks, splices with other corpus inputs and dictionary tokens (keywords, magics).
using System.Buffers.Binary;

namespace Redundancy.Block.Fuzz;

public sealed class Mutator(Random random, IReadOnlyList<byte[]> dictionary, int maxLengthBytes)
{
    private static readonly ulong[] Interesting =
    [
        0, 1, 2, 3, 4, 7, 8, 15, 16, 20, 24, 28, 31, 32, 63, 64, 127, 128, 255, 256, 511, 512, 1023, 1024,
        4095, 4096, 4097, 8192, 16384, 32767, 32768, 65535, 65536, 1 << 20, 1 << 24, 32 << 20, 64 << 20,
        0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 0x100000000, 1UL << 56, (1UL << 56) + 4096,
        0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFF0, ulong.MaxValue,
    ];

    private readonly Random _random = random;
    private readonly IReadOnlyList<byte[]> _dictionary = dictionary;
    private readonly int _maxLengthBytes = maxLengthBytes;

    /// <summary>A mutated copy of <paramref name="parent"/>: 1 to 8 stacked mutations.</summary>
    public byte[] Mutate(byte[] parent, IReadOnlyList<byte[]> corpus)
    {
        var data = new List<byte>(parent);
        int count = 1 + (int)Math.Min(7, -Math.Log(1 - _random.NextDouble()) * 1.5);
        for (int i = 0; i < count; i++)
        {
            MutateOnce(data, corpus);
        }

        if (data.Count > _maxLengthBytes)
        {
            data.RemoveRange(_maxLengthBytes, data.Count - _maxLengthBytes);
        }

        return [.. data];
    }

    private void MutateOnce(List<byte> data, IReadOnlyList<byte[]> corpus)
    {
        int kind = _random.Next(data.Count == 0 ? 6 : 13);
        switch (kind)
        {
            case 0: Insert(data, RandomBytes(1 + _random.Next(16))); break;
            case 1: Insert(data, PickOther(corpus) is { Length: > 0 } other ? Chunk(other) : RandomBytes(4)); break;
            case 2 when _dictionary.Count > 0: Insert(data, _dictionary[_random.Next(_dictionary.Count)]); break;
            case 2: Insert(data, RandomBytes(2)); break;
            case 3: Insert(data, Encode(Interesting[_random.Next(Interesting.Length)], 1 << _random.Next(4))); break;
            case 4: Splice(data, corpus); break;
            case 5: Insert(data, [(byte)_random.Next(256)]); break;
            case 6: data[_random.Next(data.Count)] ^= (byte)(1 << _random.Next(8)); break;
            case 7: data[_random.Next(data.Count)] = (byte)_random.Next(256); break;
            case 8: Overwrite(data, Encode(Interesting[_random.Next(Interesting.Length)], 1 << _random.Next(4))); break;
            case 9: AddSmall(data); break;
            case 10: Delete(data); break;
            case 11: Duplicate(data); break;
            default: Truncate(data); break;
        }
    }

    private byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        _random.NextBytes(bytes);
        return bytes;
    }

    private byte[]? PickOther(IReadOnlyList<byte[]> corpus) => corpus.Count == 0 ? null : corpus[_random.Next(corpus.Count)];

    private byte[] Chunk(byte[] source)
    {
        int start = _random.Next(source.Length);
        int length = 1 + _random.Next(Math.Min(source.Length - start, 256));
        return source.AsSpan(start, length).ToArray();
    }

    /// <summary><paramref name="value"/> as <paramref name="width"/> bytes, big- or little-endian (the input's length sometimes).</summary>
    private byte[] Encode(ulong value, int width)
    {
        if (_random.Next(8) == 0)
        {
            value = (ulong)_random.Next(-16, 16) + value;
        }

        var bytes = new byte[8];
        if (_random.Next(4) == 0)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
            return bytes[..width];
        }

        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        return bytes[(8 - width)..];
    }

    private void Insert(List<byte> data, byte[] bytes) => data.InsertRange(_random.Next(data.Count + 1), bytes);

    private void Overwrite(List<byte> data, byte[] bytes)
    {
        int at = _random.Next(data.Count);
        for (int i = 0; i < bytes.Length && at + i < data.Count; i++)
        {
            data[at + i] = bytes[i];
        }
    }

    private void AddSmall(List<byte> data)
    {
        int width = 1 << _random.Next(3);
        int at = _random.Next(data.Count);
        if (at + width > data.Count)
        {
            width = 1;
        }

        ulong value = 0;
        for (int i = 0; i < width; i++)
        {
            value = (value << 8) | data[at + i];
        }

        value += (ulong)(_random.Next(1, 36) * (_random.Next(2) == 0 ? 1 : -1));
        for (int i = width - 1; i >= 0; i--)
        {
            data[at + i] = (byte)value;
            value >>= 8;
        }
    }

    private void Delete(List<byte> data)
    {
        if (data.Count == 0)
        {
            return;
        }

        int at = _random.Next(data.Count);
        data.RemoveRange(at, 1 + _random.Next(Math.Min(data.Count - at, 64)));
    }

    private void Duplicate(List<byte> data)
    {
        int start = _random.Next(data.Count);
        int length = 1 + _random.Next(Math.Min(data.Count - start, 512));
        byte[] chunk = data.GetRange(start, length).ToArray();
        data.InsertRange(_random.Next(data.Count + 1), chunk);
    }

    private void Truncate(List<byte> data)
    {
        int keep = _random.Next(data.Count);
        data.RemoveRange(keep, data.Count - keep);
    }

    private void Splice(List<byte> data, IReadOnlyList<byte[]> corpus)
    {
        if (PickOther(corpus) is not { Length: > 0 } other)
        {
            return;
        }

        int keep = _random.Next(data.Count + 1);
        int from = _random.Next(other.Length);
        data.RemoveRange(keep, data.Count - keep);
        data.AddRange(other.AsSpan(from).ToArray());
    }
}

// Measures the LZ4 block codec (`net { compression lz4; }`, K4os underneath) on a write's payload:
// compress and decompress 4 KiB and 1 MiB of text-like (compressible) and random (incompressible)
// data. Throughput = Size / Mean. Compress into Size - 1 bytes, as the sender does: incompressible
// data gives up as soon as the output would not be smaller. [MemoryDiagnoser] must show 0 B.
using System.Text;
using BenchmarkDotNet.Attributes;
using Redundancy.Block.Engine.Compression;

namespace Redundancy.Block.Benchmarks;

[MemoryDiagnoser]
public class Lz4BlockBench
{
    private byte[] _data = [];
    private byte[] _compressed = [];
    private byte[] _output = [];
    private int _compressedLength;

    [Params(4096, 1 << 20)]
    public int Size { get; set; }

    [Params("text", "random")]
    public string Kind { get; set; } = "text";

    [GlobalSetup]
    public void Setup()
    {
        _data = new byte[Size];
        if (Kind == "random")
        {
            new Random(1).NextBytes(_data);
        }
        else
        {
            var text = new StringBuilder(Size + 80);
            for (int i = 0; text.Length < Size; i++)
            {
                text.Append(System.Globalization.CultureInfo.InvariantCulture, $"{i:D8} key={i * 7919 % 100003} value=status-ok owner=alpha\n");
            }
            _data = Encoding.ASCII.GetBytes(text.ToString(0, Size));
        }
        _compressed = new byte[Lz4Block.MaxCompressedLength(Size)];
        _output = new byte[Size];
        if (!Lz4Block.TryCompress(_data, _compressed, out _compressedLength))
        {
            throw new InvalidOperationException("the bound always fits");
        }
    }

    [Benchmark]
    public int Compress() => Lz4Block.TryCompress(_data, _compressed.AsSpan(0, Size - 1), out int written) ? written : 0;

    [Benchmark]
    public bool Decompress() => Lz4Block.TryDecompress(_compressed.AsSpan(0, _compressedLength), _output, out _);
}

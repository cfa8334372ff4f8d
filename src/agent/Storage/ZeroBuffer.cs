// One process-wide 1 MiB block of zeroes, 4096-byte aligned so O_DIRECT can write straight from it.
// Used when a disk cannot zero a range itself (no fallocate/BLKZEROOUT) and for unaligned edges.
// Allocated once on first use and never freed: it lives as long as the process.
using System.Runtime.InteropServices;

namespace Redundancy.Block.Agent.Storage;

internal static unsafe class ZeroBuffer
{
    public const int SizeBytes = 1 << 20;

    private static readonly byte* Zeroes = Allocate();

    /// <summary>A read-only view of the first <paramref name="lengthBytes"/> zero bytes.</summary>
    public static ReadOnlySpan<byte> Span(int lengthBytes) => new(Zeroes, Math.Min(lengthBytes, SizeBytes));

    private static byte* Allocate()
    {
        byte* zeroes = (byte*)NativeMemory.AlignedAlloc(SizeBytes, AlignedBufferPool.AlignmentBytes);
        NativeMemory.Clear(zeroes, SizeBytes);
        return zeroes;
    }
}

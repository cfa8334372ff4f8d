using System.Buffers;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

// Data-bearing frames and received blocks are up to 32 MiB: allocating each one would put every
// write on the large-object heap (and the GC) on both nodes. These rent from the shared pool and
// give back when done — a frame once sent (the host copies it during Send), a block once its local
// write completed.

/// <summary>A whole frame (header, message, trailing data) in a rented buffer; dispose after sending.</summary>
internal readonly struct PooledFrame : IDisposable
{
    private readonly byte[] buffer;
    private readonly int length;

    private PooledFrame(byte[] buffer, int length)
    {
        this.buffer = buffer;
        this.length = length;
    }

    public ReadOnlySpan<byte> Span => buffer.AsSpan(0, length);

    public static PooledFrame Create<T>(ushort volume, in T message, ReadOnlySpan<byte> trailing) where T : struct, IPeerMessage<T>
    {
        int total = FrameWriter.FrameLength(message) + trailing.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(total);
        int written = FrameWriter.Write(buffer, volume, message, trailing.Length);
        trailing.CopyTo(buffer.AsSpan(written));
        return new PooledFrame(buffer, total);
    }

    public void Dispose() => ArrayPool<byte>.Shared.Return(buffer);
}

/// <summary>A received block's bytes in a rented buffer, held until its local write completed.</summary>
internal sealed class PooledBlock : IDisposable
{
    private byte[]? buffer;
    private readonly int length;

    private PooledBlock(byte[] buffer, int length)
    {
        this.buffer = buffer;
        this.length = length;
    }

    public ReadOnlyMemory<byte> Memory => new(buffer ?? throw new ObjectDisposedException(nameof(PooledBlock)), 0, length);

    public static PooledBlock CopyOf(in ReadOnlySequence<byte> bytes)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)bytes.Length);
        bytes.CopyTo(buffer);
        return new PooledBlock(buffer, (int)bytes.Length);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref buffer, null) is { } rented)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}

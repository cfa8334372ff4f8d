using System.Buffers;
using Redundancy.Block.Engine.Compression;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

// Data-bearing frames and received blocks are up to 32 MiB: allocating each one would put every
// write on the large-object heap (and the GC) on both nodes. These rent from the shared pool and
// give back when done — a frame once sent (the host copies it during Send), a block once its local
// write completed. With `compression lz4` agreed, frames carry the data LZ4-compressed when that is
// smaller, and received blocks are decompressed into their pooled buffer.

/// <summary>
/// A frame in a rented buffer: whole (header, message, trailing data), or only its head when the data
/// is sent from where it is (<see cref="SendTo"/> knows which); dispose after sending.
/// </summary>
internal readonly struct PooledFrame : IDisposable
{
    private readonly byte[] buffer;
    private readonly int length;
    private readonly bool carriesPayload;

    private PooledFrame(byte[] buffer, int length, bool carriesPayload = true)
    {
        this.buffer = buffer;
        this.length = length;
        this.carriesPayload = carriesPayload;
    }

    public ReadOnlySpan<byte> Span => buffer.AsSpan(0, length);

    /// <summary>Whether <see cref="Span"/> holds the data too (compressed) or only the head of the frame.</summary>
    public bool CarriesPayload => carriesPayload;

    /// <summary>Sends the frame to <paramref name="peer"/>; <paramref name="data"/> is its payload unless the frame carries it (compressed).</summary>
    public void SendTo(IReplicaIo io, int peer, ReadOnlySpan<byte> data)
    {
        if (carriesPayload)
        {
            io.Send(peer, Span);
        }
        else
        {
            io.Send(peer, Span, data);
        }
    }

    /// <summary>Header and message of a frame whose <paramref name="payloadLengthBytes"/> of data the host sends from where they are.</summary>
    public static PooledFrame Head<T>(ushort volume, in T message, int payloadLengthBytes) where T : struct, IPeerMessage<T>
    {
        int head = FrameWriter.FrameLength(message);
        var buffer = ArrayPool<byte>.Shared.Rent(head);
        FrameWriter.Write(buffer, volume, message, payloadLengthBytes);
        return new PooledFrame(buffer, head, carriesPayload: false);
    }

    /// <summary>
    /// <paramref name="data"/> LZ4-compressed under <paramref name="compressedMessage"/> (the same
    /// message with its Compressed flag) when that is smaller; otherwise the head of
    /// <paramref name="message"/>, the data to be sent as it is. The block is compressed straight
    /// into the frame: it may use at most data.Length - 1 bytes, so incompressible data costs no
    /// more than the attempt.
    /// </summary>
    public static PooledFrame CreateCompressed<T>(ushort volume, in T message, in T compressedMessage, ReadOnlySpan<byte> data) where T : struct, IPeerMessage<T>
    {
        int head = FrameWriter.FrameLength(message);
        Invariant.Assert(head == FrameWriter.FrameLength(compressedMessage), "the compressed flag does not change the message's length");
        var buffer = ArrayPool<byte>.Shared.Rent(head + data.Length);
        if (data.Length > 1 && Lz4Block.TryCompress(data, buffer.AsSpan(head, data.Length - 1), out int compressedBytes))
        {
            FrameWriter.Write(buffer, volume, compressedMessage, compressedBytes);
            return new PooledFrame(buffer, head + compressedBytes);
        }
        FrameWriter.Write(buffer, volume, message, data.Length);
        return new PooledFrame(buffer, head, carriesPayload: false);
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

    /// <summary>
    /// Decompresses the LZ4 block <paramref name="compressed"/> into a block of exactly
    /// <paramref name="lengthBytes"/>; null with the reason when that is more than
    /// <paramref name="maxLengthBytes"/> or than the compressed bytes can decode to (nothing is
    /// allocated for it: a 16-byte payload cannot make us rent 64 MiB), or the block is malformed.
    /// </summary>
    public static PooledBlock? Decompress(in ReadOnlySequence<byte> compressed, uint lengthBytes, int maxLengthBytes, out string? error)
    {
        if (lengthBytes > maxLengthBytes)
        {
            error = $"declares {lengthBytes} bytes, more than one frame ({maxLengthBytes} bytes) carries";
            return null;
        }

        if (lengthBytes > Lz4Block.MaxDecompressedLength(compressed.Length))
        {
            error = $"declares {lengthBytes} bytes, more than {compressed.Length} bytes of LZ4 can decode to";
            return null;
        }
        var buffer = ArrayPool<byte>.Shared.Rent((int)lengthBytes);
        byte[]? joined = null;
        if (!compressed.IsSingleSegment)
        {
            joined = ArrayPool<byte>.Shared.Rent((int)compressed.Length);
            compressed.CopyTo(joined);
        }
        ReadOnlySpan<byte> source = joined is null ? compressed.FirstSpan : joined.AsSpan(0, (int)compressed.Length);
        bool ok = Lz4Block.TryDecompress(source, buffer.AsSpan(0, (int)lengthBytes), out error);
        if (joined is not null)
        {
            ArrayPool<byte>.Shared.Return(joined);
        }
        if (!ok)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return null;
        }
        return new PooledBlock(buffer, (int)lengthBytes);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref buffer, null) is { } rented)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}

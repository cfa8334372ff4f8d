// The two ends of a bitmap exchange (WFBitMapS/WFBitMapT): the sender cuts its quick-sync bitmap into
// consecutive chunks, the receiver checks that they arrive in order, cover its bitmap exactly once and
// end with LastChunk, and merges them. Pure: the caller moves the frames. Both ends exchange exactly
// the agreed size (a bigger disk's bitmap is cut there), so disks of different sizes interoperate.
using System.Buffers;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>Sends one bitmap as a sequence of BitmapChunk frames.</summary>
public sealed class BitmapSender
{
    private readonly QuickSyncBitmap _bitmap;
    private readonly long _bitCount;
    private readonly int _maxBodyBytes;

    /// <param name="bitmap">The bitmap to send.</param>
    /// <param name="bitCount">How many of its bits the exchange covers (the agreed size); -1: all.</param>
    /// <param name="maxBodyBytes">Largest chunk body.</param>
    public BitmapSender(QuickSyncBitmap bitmap, long bitCount = -1, int maxBodyBytes = BitmapChunkMessage.MaxBodyBytes)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        Invariant.Assert(maxBodyBytes is >= 16 and <= BitmapChunkMessage.MaxBodyBytes, "chunk body size within bounds");
        Invariant.Assert(bitCount >= -1 && bitCount <= bitmap.BitCount, "the exchange covers bits of the bitmap");
        _bitmap = bitmap;
        _bitCount = bitCount < 0 ? bitmap.BitCount : bitCount;
        _maxBodyBytes = maxBodyBytes;
    }

    /// <summary>First bit the next chunk covers.</summary>
    public long NextBit { get; private set; }

    /// <summary>True once the LastChunk was produced.</summary>
    public bool IsComplete { get; private set; }

    /// <summary>Largest frame <see cref="WriteNextFrame(Span{byte}, ushort)"/> writes.</summary>
    public int MaxFrameBytes => FrameHeader.Size + BitmapChunkMessage.Size + _maxBodyBytes;

    /// <summary>Writes the next chunk as a whole frame into <paramref name="destination"/>; returns its length.</summary>
    public int WriteNextFrame(Span<byte> destination, ushort volume)
    {
        Invariant.Assert(!IsComplete, "no chunk after the last");
        Invariant.Assert(destination.Length >= MaxFrameBytes, "room for a whole chunk frame");
        const int BodyAt = FrameHeader.Size + BitmapChunkMessage.Size;
        int bodyBytes = BitmapRunLengthCodec.EncodeChunk(_bitmap, NextBit, _bitCount, destination.Slice(BodyAt, _maxBodyBytes), out var chunk);
        FrameWriter.Write(destination, volume, chunk, bodyBytes);
        NextBit += (long)chunk.BitCount;
        IsComplete = chunk.IsLast;
        return BodyAt + bodyBytes;
    }

    /// <summary>Writes the next chunk frame into a pipe; returns true when it was the last.</summary>
    public bool WriteNextFrame(IBufferWriter<byte> output, ushort volume)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Advance(WriteNextFrame(output.GetSpan(MaxFrameBytes), volume));
        return IsComplete;
    }
}

/// <summary>Receives one bitmap chunk by chunk and ORs it into a local bitmap.</summary>
public sealed class BitmapReceiver
{
    private readonly QuickSyncBitmap _bitmap;
    private readonly byte[] _body = new byte[BitmapChunkMessage.MaxBodyBytes];

    public BitmapReceiver(QuickSyncBitmap bitmap)
    {
        ArgumentNullException.ThrowIfNull(bitmap);
        _bitmap = bitmap;
    }

    /// <summary>First bit the next chunk must start at.</summary>
    public long NextBit { get; private set; }

    /// <summary>True once the last chunk was merged.</summary>
    public bool IsComplete { get; private set; }

    /// <summary>Parses and merges a BitmapChunk frame payload (possibly segmented; the body is copied once).</summary>
    public bool TryApply(in ReadOnlySequence<byte> payload, out string? error)
    {
        if (!BitmapChunkMessage.TryRead(payload, out var chunk, out var body, out error))
        {
            return false;
        }

        body.CopyTo(_body);
        return TryApply(chunk, _body.AsSpan(0, (int)body.Length), out error);
    }

    /// <summary>Checks the chunk's place in the sequence and merges it.</summary>
    public bool TryApply(in BitmapChunkMessage chunk, ReadOnlySpan<byte> body, out string? error)
    {
        ulong end = chunk.FirstBit + chunk.BitCount;
        error = IsComplete ? "bitmap chunk after the last chunk"
            : chunk.FirstBit != (ulong)NextBit ? $"bitmap chunk starts at bit {chunk.FirstBit}, expected {NextBit}"
            : chunk.IsLast != (end == (ulong)_bitmap.BitCount)
            ? $"bitmap chunk ending at bit {end} is {(chunk.IsLast ? "" : "not ")}marked last but our bitmap has {_bitmap.BitCount} bits"
            : null;
        if (error is not null || !BitmapRunLengthCodec.TryApply(chunk, body, _bitmap, out error))
        {
            return false;
        }

        NextBit = (long)end;
        IsComplete = chunk.IsLast;
        return true;
    }
}

// FileBlockDevice's data path: positional reads and writes with RandomAccess (pread/pwrite), looped
// until every byte is done. With O_DIRECT, whole-block requests go to the DirectIoQueue when it takes
// them (asynchronous: many at the disk at once); the rest run here. A request whose offset, length or
// memory is not 4096-byte aligned goes through an aligned bounce buffer; a write with a partial first
// or last block reads that block, patches it and writes it back, holding a striped lock on the block so
// two writers of different bytes in one block cannot lose each other's update. A queued write cannot
// be lost that way: it covers whole blocks, so one that touches such an edge block overlaps the partial
// write's own bytes, and overlapping writes are never in flight together (the engine waits, as DRBD).
using Redundancy.Block.Engine;

namespace Redundancy.Block.Agent.Storage;

public sealed unsafe partial class FileBlockDevice
{
    private const int AlignmentBytes = AlignedBufferPool.AlignmentBytes;
    private const int BounceBufferBytes = 1 << 20;
    private const int RmwLockStripes = 64;

    private readonly AlignedBufferPool? bouncePool;
    private readonly DirectIoQueue? directQueue;
    private readonly object[]? rmwLocks;

    private void Read(long offsetBytes, Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return;
        }

        if (IsDirectIo)
        {
            fixed (byte* memory = buffer)
            {
                if (!IsAligned(offsetBytes, buffer.Length, memory))
                {
                    ReadThroughBounce(offsetBytes, buffer);
                    return;
                }
            }
        }

        ReadExactly(offsetBytes, buffer);
    }

    private void Write(long offsetBytes, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        if (IsDirectIo)
        {
            fixed (byte* memory = data)
            {
                if (!IsAligned(offsetBytes, data.Length, memory))
                {
                    WriteUnalignedDirect(offsetBytes, data);
                    return;
                }
            }
        }

        WriteAll(offsetBytes, data);
    }

    /// <summary>Reads until the buffer is full (also how the direct I/O queue finishes a short read).</summary>
    internal void ReadExactly(long offsetBytes, Span<byte> buffer)
    {
        int doneBytes = 0;
        while (doneBytes < buffer.Length)
        {
            int readBytes;
            try
            {
                readBytes = RandomAccess.Read(handle, buffer[doneBytes..], offsetBytes + doneBytes);
            }
            catch (ObjectDisposedException)
            {
                throw StorageErrors.Closed(Path, "read");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
            {
                throw StorageErrors.Io(Path, "read", offsetBytes + doneBytes, buffer.Length - doneBytes, ex);
            }

            if (readBytes == 0)
            {
                throw StorageErrors.ShortRead(Path, offsetBytes, buffer.Length, doneBytes);
            }

            doneBytes += readBytes;
        }
    }

    /// <summary>Writes every byte (also how the direct I/O queue finishes a short write).</summary>
    internal void WriteAll(long offsetBytes, ReadOnlySpan<byte> data)
    {
        try
        {
            // RandomAccess.Write loops over short writes itself and returns once every byte is written.
            RandomAccess.Write(handle, data, offsetBytes);
        }
        catch (ObjectDisposedException)
        {
            throw StorageErrors.Closed(Path, "write");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw StorageErrors.Io(Path, "write", offsetBytes, data.Length, ex);
        }
    }

    private void ReadThroughBounce(long offsetBytes, Span<byte> buffer)
    {
        long endBytes = offsetBytes + buffer.Length;
        long alignedEndBytes = AlignUp(endBytes);
        Invariant.Assert(alignedEndBytes <= SizeBytes, "direct I/O size is a multiple of the alignment");
        byte* bounce = bouncePool!.Rent();
        try
        {
            for (long chunkStart = AlignDown(offsetBytes); chunkStart < endBytes;)
            {
                int chunkBytes = (int)Math.Min(BounceBufferBytes, alignedEndBytes - chunkStart);
                ReadExactly(chunkStart, new Span<byte>(bounce, chunkBytes));
                long copyFrom = Math.Max(chunkStart, offsetBytes);
                long copyTo = Math.Min(chunkStart + chunkBytes, endBytes);
                new ReadOnlySpan<byte>(bounce + (copyFrom - chunkStart), (int)(copyTo - copyFrom))
                    .CopyTo(buffer[(int)(copyFrom - offsetBytes)..]);
                chunkStart += chunkBytes;
            }
        }
        finally
        {
            bouncePool.Return(bounce);
        }
    }

    private void WriteUnalignedDirect(long offsetBytes, ReadOnlySpan<byte> data)
    {
        long endBytes = offsetBytes + data.Length;
        bool partialHead = (offsetBytes & (AlignmentBytes - 1)) != 0;
        bool partialTail = (endBytes & (AlignmentBytes - 1)) != 0;
        if (!partialHead && !partialTail)
        {
            // Only the caller's memory is unaligned: every block is overwritten whole, no lock needed.
            WriteThroughBounce(offsetBytes, data);
            return;
        }

        // Lock the stripes of the partial edge blocks, lower stripe first so two writers cannot deadlock.
        int firstStripe = Stripe(partialHead ? offsetBytes : endBytes - 1);
        int secondStripe = Stripe(partialTail ? endBytes - 1 : offsetBytes);
        (firstStripe, secondStripe) = (Math.Min(firstStripe, secondStripe), Math.Max(firstStripe, secondStripe));
        lock (rmwLocks![firstStripe])
        {
            if (secondStripe == firstStripe)
            {
                WriteThroughBounce(offsetBytes, data);
                return;
            }

            lock (rmwLocks[secondStripe])
            {
                WriteThroughBounce(offsetBytes, data);
            }
        }
    }

    private void WriteThroughBounce(long offsetBytes, ReadOnlySpan<byte> data)
    {
        long endBytes = offsetBytes + data.Length;
        long alignedEndBytes = AlignUp(endBytes);
        Invariant.Assert(alignedEndBytes <= SizeBytes, "direct I/O size is a multiple of the alignment");
        byte* bounce = bouncePool!.Rent();
        try
        {
            for (long chunkStart = AlignDown(offsetBytes); chunkStart < endBytes;)
            {
                int chunkBytes = (int)Math.Min(BounceBufferBytes, alignedEndBytes - chunkStart);
                long copyFrom = Math.Max(chunkStart, offsetBytes);
                long copyTo = Math.Min(chunkStart + chunkBytes, endBytes);
                bool partialHead = copyFrom > chunkStart;
                if (partialHead)
                {
                    ReadExactly(chunkStart, new Span<byte>(bounce, AlignmentBytes));
                }

                // The tail block needs its own read unless it is the head block, already read.
                if (copyTo < chunkStart + chunkBytes && !(partialHead && chunkBytes == AlignmentBytes))
                {
                    long tailBlock = chunkStart + chunkBytes - AlignmentBytes;
                    ReadExactly(tailBlock, new Span<byte>(bounce + (tailBlock - chunkStart), AlignmentBytes));
                }

                data[(int)(copyFrom - offsetBytes)..(int)(copyTo - offsetBytes)]
                    .CopyTo(new Span<byte>(bounce + (copyFrom - chunkStart), (int)(copyTo - copyFrom)));
                WriteAll(chunkStart, new ReadOnlySpan<byte>(bounce, chunkBytes));
                chunkStart += chunkBytes;
            }
        }
        finally
        {
            bouncePool.Return(bounce);
        }
    }

    private static bool IsBlockAligned(long offsetBytes, long lengthBytes) =>
        lengthBytes > 0 && ((offsetBytes | lengthBytes) & (AlignmentBytes - 1)) == 0;

    private static bool IsAligned(long offsetBytes, int lengthBytes, byte* memory) =>
        (((ulong)offsetBytes | (uint)lengthBytes | (ulong)memory) & (AlignmentBytes - 1)) == 0;

    private static long AlignDown(long bytes) => bytes & ~(long)(AlignmentBytes - 1);

    private static long AlignUp(long bytes) => AlignDown(bytes + AlignmentBytes - 1);

    private static int Stripe(long offsetBytes) => (int)((offsetBytes / AlignmentBytes) % RmwLockStripes);
}

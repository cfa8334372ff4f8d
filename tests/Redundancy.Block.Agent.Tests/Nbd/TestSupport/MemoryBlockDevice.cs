// An in-memory IBlockDevice for NBD tests: sparse 4 KiB pages (so exports of many GiB cost nothing),
// exact zero/hole allocation reporting, and hooks to fail or hold operations.
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Tests.Nbd.TestSupport;

public sealed class MemoryBlockDevice(long sizeBytes, bool canFastZero = false) : IBlockDevice
{
    private const int PageBytes = 4096;
    private readonly Dictionary<long, byte[]> _pages = [];
    private readonly Lock _lock = new();

    public long SizeBytes { get; } = sizeBytes;

    public bool CanFastZero { get; } = canFastZero;

    /// <summary>When set, every operation throws this IOException.</summary>
    public bool FailWithIoError { get; set; }

    /// <summary>When set, operations wait for it (honouring cancellation) before running.</summary>
    public TaskCompletionSource? Gate { get; set; }

    /// <summary>Operations waiting at the gate or running.</summary>
    public int Started;

    public int Flushes;

    public int FuaWrites;

    public List<(long OffsetBytes, long LengthBytes, bool MayUnmap)> Zeroes { get; } = [];

    public async ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        Copy(offsetBytes, buffer.Span, write: false);
    }

    public async ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        byte[] copy = data.ToArray();
        Copy(offsetBytes, copy, write: true);
        if (fua)
        {
            Interlocked.Increment(ref FuaWrites);
        }
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        Interlocked.Increment(ref Flushes);
    }

    public async ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        Zero(offsetBytes, lengthBytes);
    }

    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        lock (_lock)
        {
            Zeroes.Add((offsetBytes, lengthBytes, mayUnmap));
        }

        Zero(offsetBytes, lengthBytes);
    }

    /// <summary>Pages never written or all zero are reported as HOLE|ZERO, others as data.</summary>
    public async ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default)
    {
        await EnterAsync(cancellationToken);
        long end = offsetBytes + lengthBytes;
        for (long position = offsetBytes; position < end;)
        {
            long pageEnd = Math.Min(end, ((position / PageBytes) + 1) * PageBytes);
            bool zero;
            lock (_lock)
            {
                zero = !_pages.TryGetValue(position / PageBytes, out byte[]? page) || !page.AsSpan().ContainsAnyExcept((byte)0);
            }

            extents.Add(new AllocationExtent(pageEnd - position, zero ? AllocationFlags.Hole | AllocationFlags.Zero : AllocationFlags.Data));
            position = pageEnd;
        }
    }

    /// <summary>Reads bytes directly (test assertions).</summary>
    public byte[] Peek(long offsetBytes, int lengthBytes)
    {
        var bytes = new byte[lengthBytes];
        Copy(offsetBytes, bytes, write: false);
        return bytes;
    }

    public void Dispose()
    {
    }

    private async ValueTask EnterAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Started);
        if (Gate is { } gate)
        {
            await gate.Task.WaitAsync(cancellationToken);
        }

        if (FailWithIoError)
        {
            throw new IOException("simulated disk failure");
        }
    }

    private void Copy(long offsetBytes, Span<byte> bytes, bool write)
    {
        Assert.True(offsetBytes >= 0 && offsetBytes + bytes.Length <= SizeBytes, "device range checked by the server");
        lock (_lock)
        {
            for (int done = 0; done < bytes.Length;)
            {
                long position = offsetBytes + done;
                int inPage = (int)(position % PageBytes);
                int step = Math.Min(PageBytes - inPage, bytes.Length - done);
                bool exists = _pages.TryGetValue(position / PageBytes, out byte[]? page);
                if (write)
                {
                    if (!exists)
                    {
                        page = new byte[PageBytes];
                        _pages[position / PageBytes] = page;
                    }

                    bytes.Slice(done, step).CopyTo(page.AsSpan(inPage));
                }
                else if (exists)
                {
                    page.AsSpan(inPage, step).CopyTo(bytes.Slice(done, step));
                }
                else
                {
                    bytes.Slice(done, step).Clear();
                }

                done += step;
            }
        }
    }

    private void Zero(long offsetBytes, long lengthBytes)
    {
        Assert.True(offsetBytes >= 0 && offsetBytes + lengthBytes <= SizeBytes, "device range checked by the server");
        lock (_lock)
        {
            for (long position = offsetBytes; position < offsetBytes + lengthBytes;)
            {
                int inPage = (int)(position % PageBytes);
                int step = (int)Math.Min(PageBytes - inPage, offsetBytes + lengthBytes - position);
                if (_pages.TryGetValue(position / PageBytes, out byte[]? page))
                {
                    page.AsSpan(inPage, step).Clear();
                }

                position += step;
            }
        }
    }
}

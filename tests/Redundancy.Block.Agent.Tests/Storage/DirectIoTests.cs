// FileBlockDevice with O_DIRECT on a file on a real disk filesystem (RB_TEST_DISK_DIR, /var/tmp by
// default): unaligned requests through bounce buffers, read-modify-write of edge blocks, concurrent
// writers inside one block, size rounding, and whole-block requests many at a time through the
// asynchronous queue (Linux AIO): data, disposal with requests in flight, a short read. If the filesystem refuses O_DIRECT the open fails with
// a message saying so, and these tests fail with it rather than pass without testing anything.
using Redundancy.Block.Agent.Storage;

namespace Redundancy.Block.Agent.Tests.Storage;

public sealed class DirectIoTests : IDisposable
{
    private const long SizeBytes = 8 << 20;
    private static readonly FileBlockDeviceOptions Direct = new() { DirectIo = true };
    private readonly TempDiskFile file = new(SizeBytes);

    public void Dispose() => file.Dispose();

    [Fact]
    public async Task UnalignedWrites_RoundTripAndLeaveNeighboursIntact()
    {
        byte[] model = TempDiskFile.Pattern((int)SizeBytes, seed: 10);
        using var device = FileBlockDevice.Open(file.Path, Direct);
        Assert.True(device.IsDirectIo);
        await device.WriteAsync(0, model, fua: false); // aligned offset and length, unaligned managed memory

        (long Offset, int Length)[] writes = [(12_289, 10_000), (4_096, 1), (8_191, 2), (511, (3 << 20) + 123), (SizeBytes - 17, 17)];
        for (int i = 0; i < writes.Length; i++)
        {
            byte[] data = TempDiskFile.Pattern(writes[i].Length, seed: 100 + i);
            await device.WriteAsync(writes[i].Offset, data, fua: i % 2 == 0);
            data.CopyTo(model, writes[i].Offset);
        }

        var whole = new byte[SizeBytes];
        await device.ReadAsync(0, whole);
        Assert.True(model.AsSpan().SequenceEqual(whole), "direct I/O contents differ from the model");
        var odd = new byte[5_555];
        await device.ReadAsync(1_000_003, odd);
        Assert.True(model.AsSpan(1_000_003, 5_555).SequenceEqual(odd));
    }

    [Fact]
    public async Task DirectWrites_AreOnDiskForABufferedReader()
    {
        byte[] data = TempDiskFile.Pattern(6_000, seed: 11);
        using (var device = FileBlockDevice.Open(file.Path, Direct))
        {
            await device.WriteAsync(70_001, data, fua: true);
        }

        byte[] onDisk = await File.ReadAllBytesAsync(file.Path);
        Assert.True(data.AsSpan().SequenceEqual(onDisk.AsSpan(70_001, 6_000)));
        Assert.True(onDisk.AsSpan(65_536, 70_001 - 65_536).IndexOfAnyExcept((byte)0) < 0, "head of the edge block must stay zero");
    }

    [Fact]
    public void ConcurrentWritersOfDifferentBytesInOneBlock_DoNotLoseUpdates()
    {
        // Each thread owns 512 bytes of one 4096-byte block and checks its bytes after every write: an
        // unlocked read-modify-write by a neighbour would write back a stale copy of them.
        using var device = FileBlockDevice.Open(file.Path, Direct);
        const int writers = 4;
        const int pieceBytes = 512;
        const int iterations = 1_500;
        using var start = new Barrier(writers);
        var lost = new int[writers];
        var threads = new Thread[writers];
        for (int w = 0; w < writers; w++)
        {
            int writer = w;
            threads[w] = new Thread(() =>
            {
                var data = new byte[pieceBytes];
                var back = new byte[pieceBytes];
                long offsetBytes = 40_960 + (writer * pieceBytes);
                start.SignalAndWait();
                for (int i = 0; i < iterations; i++)
                {
                    Array.Fill(data, (byte)(i + 1));
                    device.WriteAsync(offsetBytes, data, fua: false).AsTask().GetAwaiter().GetResult();
                    device.ReadAsync(offsetBytes, back).AsTask().GetAwaiter().GetResult();
                    lost[writer] += back.AsSpan().SequenceEqual(data) ? 0 : 1;
                }
            });
            threads[w].Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        Assert.Equal(new int[writers], lost);
    }

    [Fact]
    public async Task ZeroingAndAllocation_WorkUnderDirectIo()
    {
        using var device = FileBlockDevice.Open(file.Path, Direct);
        await device.WriteAsync(0, TempDiskFile.Pattern(1 << 20, seed: 12), fua: false);

        await device.WriteZeroesAsync(1_000, 100_000, mayUnmap: false);
        await device.DiscardAsync(200_000, 300_001);

        var contents = new byte[1 << 20];
        await device.ReadAsync(0, contents);
        byte[] expected = TempDiskFile.Pattern(1 << 20, seed: 12);
        Array.Clear(expected, 1_000, 100_000);
        Array.Clear(expected, 200_000, 300_001);
        Assert.True(expected.AsSpan().SequenceEqual(contents));
        var extents = await FileBlockDeviceTests.Allocation(device, 2 << 20, 1 << 20);
        Assert.Equal(Engine.Io.AllocationFlags.Hole | Engine.Io.AllocationFlags.Zero, Assert.Single(extents).Flags);
    }

    [Fact]
    public void Size_IsRoundedDownToWholeAlignedBlocks()
    {
        using var odd = new TempDiskFile((1 << 20) + 100);
        using var device = FileBlockDevice.Open(odd.Path, Direct);
        Assert.Equal(1 << 20, device.SizeBytes);
    }

    [Fact]
    public async Task QueuedRequests_ManyInFlightAtOnce_KeepTheirData()
    {
        using var disk = FileBlockDevice.Open(file.Path, Direct);
        Assert.True(disk.HasDirectIoQueue, "Linux AIO is available on x86_64 and arm64: whole-block requests must be queued");
        var device = new QueuedBlockDevice(disk);
        // About 250 writes (more than the queue's depth, so some fall back to synchronous I/O) of 4 KiB to
        // 1 MiB at distinct offsets, none awaited before the last is started; some with FUA.
        var model = new byte[SizeBytes];
        var writes = new List<Task>();
        long offsetBytes = 0;
        for (int i = 0; offsetBytes < SizeBytes - (1 << 20); i++)
        {
            int lengthBytes = (i % 40 == 0 ? 256 : 1 + (i % 2)) * 4096;
            byte[] data = TempDiskFile.Pattern(lengthBytes, seed: 1000 + i);
            data.CopyTo(model, offsetBytes);
            writes.Add(device.WriteAsync(offsetBytes, data, fua: i % 7 == 0).AsTask());
            offsetBytes += lengthBytes;
        }

        await Task.WhenAll(writes);
        Assert.True(writes.Count > DirectIoQueue.Depth, $"only {writes.Count} writes");

        var reads = new List<(long Offset, byte[] Buffer, Task Done)>();
        for (long at = 0; at < SizeBytes; at += 16 << 10)
        {
            var buffer = new byte[16 << 10];
            reads.Add((at, buffer, device.ReadAsync(at, buffer).AsTask()));
        }

        await Task.WhenAll(reads.Select(r => r.Done));
        foreach (var (offset, buffer, _) in reads)
        {
            Assert.True(model.AsSpan((int)offset, buffer.Length).SequenceEqual(buffer), $"queued I/O differs from the model at {offset}");
        }
    }

    [Fact]
    public async Task Dispose_WaitsForQueuedWrites()
    {
        byte[] data = TempDiskFile.Pattern(64 * 4096, seed: 13);
        var writes = new List<Task>();
        using (var disk = FileBlockDevice.Open(file.Path, Direct))
        {
            var device = new QueuedBlockDevice(disk);
            for (int block = 0; block < 64; block++)
            {
                writes.Add(device.WriteAsync(block * 8192L, data.AsMemory(block * 4096, 4096), fua: false).AsTask());
            }
        }

        await Task.WhenAll(writes);
        byte[] onDisk = await File.ReadAllBytesAsync(file.Path);
        for (int block = 0; block < 64; block++)
        {
            Assert.True(data.AsSpan(block * 4096, 4096).SequenceEqual(onDisk.AsSpan(block * 8192, 4096)), $"block {block} missing after Dispose");
        }
    }

    [Fact]
    public async Task QueuedRead_PastAFileThatShrank_FailsNamingTheDisk()
    {
        using var disk = FileBlockDevice.Open(file.Path, Direct with { Exclusive = false });
        var device = new QueuedBlockDevice(disk);
        using (var shrink = new FileStream(file.Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            shrink.SetLength(1 << 20);
        }

        var buffer = new byte[8192];
        var failure = await Assert.ThrowsAsync<IOException>(async () => await device.ReadAsync(2 << 20, buffer));
        Assert.Contains(file.Path, failure.Message);
        Assert.Contains("end of file", failure.Message);
    }

    [Fact]
    public async Task Requests_started_inside_a_send_batch_go_to_the_disk_when_it_closes()
    {
        using var disk = FileBlockDevice.Open(file.Path, Direct);
        var device = new QueuedBlockDevice(disk);
        byte[] data = TempDiskFile.Pattern(40 * 4096, seed: 14);
        var writes = new List<ValueTask>();
        Batching.SendBatch.Open();
        try
        {
            for (int block = 0; block < 40; block++)
            {
                writes.Add(device.WriteAsync(block * 4096L, data.AsMemory(block * 4096, 4096), fua: false));
            }

            // 40 requests: the first 32 were submitted together when the batch's array filled up. (No
            // await inside the batch: it belongs to this thread, and an await may resume on another.)
            Thread.Sleep(50);
            Assert.All(writes.Skip(32), w => Assert.False(w.IsCompleted, "a request held in a batch completed before the batch closed"));
        }
        finally
        {
            Batching.SendBatch.Close();
        }

        foreach (ValueTask write in writes)
        {
            await write;
        }

        var back = new byte[data.Length];
        await device.ReadAsync(0, back);
        Assert.True(data.AsSpan().SequenceEqual(back));
    }

    [Fact]
    public async Task A_request_started_by_a_completion_is_queued_too()
    {
        // As a Secondary releases the writes a barrier held back when the epoch before them completes:
        // the second write starts in the first one's continuation, on the reaper thread.
        using var disk = FileBlockDevice.Open(file.Path, Direct);
        var device = new QueuedBlockDevice(disk);
        byte[] data = TempDiskFile.Pattern(2 * 4096, seed: 16);
        var second = new TaskCompletionSource<(bool CompletedAtOnce, Task Done)>();
        // Held in a send batch, the first write cannot complete before its continuation is registered,
        // so the continuation runs where the completion happens: on the reaper thread (registered from
        // a pool thread, where no test synchronization context would take it elsewhere).
        await Task.Run(() =>
        {
            Batching.SendBatch.Open();
            ValueTask first = device.WriteAsync(0, data.AsMemory(0, 4096), fua: false);
            first.GetAwaiter().UnsafeOnCompleted(() =>
            {
                first.GetAwaiter().GetResult();
                ValueTask next = device.WriteAsync(4096, data.AsMemory(4096, 4096), fua: false);
                second.SetResult((next.IsCompleted, next.AsTask()));
            });
            Batching.SendBatch.Close();
        });
        var (completedAtOnce, done) = await second.Task;
        Assert.False(completedAtOnce, "the request was done synchronously on the reaper thread instead of being queued");
        await done;
        var back = new byte[data.Length];
        await device.ReadAsync(0, back);
        Assert.True(data.AsSpan().SequenceEqual(back));
    }
}

// Native asynchronous I/O for a disk opened with O_DIRECT. A direct read or write blocks for the
// device's latency: done synchronously on the NBD session thread, a client's queue depth never reached
// the disk (4K writes at QD32 ran near the QD1 rate). The queue submits each request with io_submit
// from the caller's thread, and one thread reaps completions with io_getevents (polling briefly
// before it sleeps while one or two requests are in the kernel) and completes each request's
// ValueTask inline.
// Data goes through 4096-aligned native bounce buffers, which the kernel reads or fills while the
// caller's managed buffer may move. A request the queue cannot take (no free slot, larger than the
// largest bounce buffer) is left to the caller to do synchronously; one that io_submit refuses is
// done synchronously here. Requests started inside the thread's send batch (a
// burst of NBD requests, the Data frames of one socket read, the completions of one reap) are
// submitted together when the batch closes: on a virtual disk every io_submit notifies the host.
// Completions come in any order: the engine orders overlapping writes itself (DRBD's wait for
// conflicting writes), as the NBD spec lets a server do with overlapping requests in flight.
using System.Numerics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Redundancy.Block.Agent.Batching;
using Redundancy.Block.Agent.Polling;
using Redundancy.Block.Engine;

namespace Redundancy.Block.Agent.Storage;

internal sealed unsafe class DirectIoQueue : IDisposable, IBatchedSender
{
    public const int Depth = 128;

    /// <summary>The largest request the queue takes; larger ones are done synchronously.</summary>
    public const int MaxRequestBytes = 1 << 20;

    private const int SmallBounceBytes = 64 * 1024;

    /// <summary>Most requests one io_submit takes from a batch.</summary>
    private const int MaxBatchedRequests = 32;
    private const int ReapBatch = 64;
    private const long ReapTimeoutNanoseconds = 100_000_000;

    /// <summary>How long the reaper polls for a completion before it sleeps: about one write of the disks measured.</summary>
    private const int PollMicroseconds = 300;

    /// <summary>
    /// The reaper polls only with this few requests in the kernel: with more, completions come often
    /// and the CPUs are busy, so waking the reaper is cheap and a poll would only take CPU from them.
    /// </summary>
    private const int MaxPolledRequests = 2;

    private readonly FileBlockDevice disk;
    private readonly SafeFileHandle handle;
    private readonly ulong context;
    private readonly Libc.Iocb* iocbs;
    private readonly DirectIoOperation[] operations = new DirectIoOperation[Depth];
    private readonly long[] busySlots = new long[Depth / 64];
    private readonly AlignedBufferPool smallBounces = new(SmallBounceBytes, Depth);
    private readonly AlignedBufferPool largeBounces = new(MaxRequestBytes, 8);
    private readonly Thread reaper;
    private int inKernel;
    private volatile bool stopping;

    // Requests started inside the calling thread's send batch, submitted together when it closes:
    // one io_submit, and one notification of the disk instead of one per request.
    [ThreadStatic]
    private static DirectIoQueue? t_batchQueue;

    [ThreadStatic]
    private static nint[]? t_batch;

    [ThreadStatic]
    private static int t_batchCount;

    private DirectIoQueue(FileBlockDevice disk, SafeFileHandle handle, ulong context)
    {
        this.disk = disk;
        this.handle = handle;
        this.context = context;
        iocbs = (Libc.Iocb*)NativeMemory.AlignedAlloc((nuint)(sizeof(Libc.Iocb) * Depth), 64);
        for (int slot = 0; slot < Depth; slot++)
        {
            operations[slot] = new DirectIoOperation(this, slot, iocbs + slot);
        }

        reaper = new Thread(Reap) { IsBackground = true, Name = "rb-aio" };
        reaper.Start();
    }

    /// <summary>A queue for <paramref name="disk"/>'s <paramref name="handle"/>, or null where the kernel has no AIO for us (then I/O stays synchronous).</summary>
    public static DirectIoQueue? TryCreate(FileBlockDevice disk, SafeFileHandle handle)
    {
        if (!Libc.HasAio)
        {
            return null;
        }

        ulong context = 0;
        // ENOSYS (no AIO in this kernel) or EAGAIN (fs.aio-max-nr reached): synchronous I/O still works.
        return Libc.IoSetup(Depth, &context) == 0 ? new DirectIoQueue(disk, handle, context) : null;
    }

    /// <summary>Starts a read of whole aligned blocks into <paramref name="buffer"/>; null when the caller must read synchronously.</summary>
    public ValueTask? TryRead(long offsetBytes, Memory<byte> buffer)
    {
        DirectIoOperation? operation = Take(buffer.Length);
        if (operation is null)
        {
            return null;
        }

        operation.ReadTarget = buffer;
        return Submit(operation, offsetBytes, isWrite: false, fua: false);
    }

    /// <summary>Starts a write of whole aligned blocks; null when the caller must write synchronously.</summary>
    public ValueTask? TryWrite(long offsetBytes, ReadOnlySpan<byte> data, bool fua)
    {
        DirectIoOperation? operation = Take(data.Length);
        if (operation is null)
        {
            return null;
        }

        data.CopyTo(new Span<byte>(operation.Bounce, data.Length));
        return Submit(operation, offsetBytes, isWrite: true, fua);
    }

    private DirectIoOperation? Take(int lengthBytes)
    {
        // A request started by a completion's continuation (writes a barrier held back, released when
        // the epoch before them completed) is queued like any other: inside the reaper's send batch it
        // goes to the kernel with the batch. So nothing may wait synchronously for a queued request (on
        // the reaper it would wait for itself): the data path awaits, the metadata never uses the queue.
        if (lengthBytes > MaxRequestBytes)
        {
            return null;
        }

        int slot = TakeSlot();
        if (slot < 0)
        {
            return null;
        }

        DirectIoOperation operation = operations[slot];
        operation.BouncePool = lengthBytes <= SmallBounceBytes ? smallBounces : largeBounces;
        operation.Bounce = operation.BouncePool.Rent();
        operation.LengthBytes = lengthBytes;
        return operation;
    }

    private ValueTask? Submit(DirectIoOperation operation, long offsetBytes, bool isWrite, bool fua)
    {
        operation.OffsetBytes = offsetBytes;
        operation.IsWrite = isWrite;
        *operation.Iocb = new Libc.Iocb
        {
            Data = (ulong)operation.Slot,
            Opcode = isWrite ? Libc.IOCB_CMD_PWRITE : Libc.IOCB_CMD_PREAD,
            RwFlags = fua ? Libc.RWF_DSYNC : 0,
            FileDescriptor = (uint)handle.DangerousGetHandle(),
            Buffer = (ulong)operation.Bounce,
            LengthBytes = (ulong)operation.LengthBytes,
            OffsetBytes = offsetBytes,
        };
        ValueTask started = operation.AsValueTask();
        // Counted before stopping is read, so the reaper, which leaves only when stopping is set and
        // nothing is in the kernel, cannot leave between this check and the submission.
        EnterKernel();
        if (stopping)
        {
            LeaveKernel();
            ReleaseBounce(operation);
            Recycle(operation);
            return null;
        }

        if (SendBatch.Hold(this))
        {
            AddToBatch(operation);
        }
        else
        {
            Libc.Iocb* request = operation.Iocb;
            SubmitNow(&request, 1);
        }

        return started;
    }

    /// <summary>Counts a request as in the kernel: for this queue's reaper, and for the node's (DiskRequestsInFlight).</summary>
    private void EnterKernel()
    {
        Interlocked.Increment(ref inKernel);
        DiskRequestsInFlight.Started();
    }

    /// <summary>Undoes <see cref="EnterKernel"/>: the request completed, or never went in.</summary>
    private void LeaveKernel()
    {
        DiskRequestsInFlight.Finished();
        Interlocked.Decrement(ref inKernel);
    }

    private void AddToBatch(DirectIoOperation operation)
    {
        if (t_batchQueue != this && t_batchCount > 0)
        {
            t_batchQueue!.FlushBatch();
        }

        t_batchQueue = this;
        var batch = t_batch ??= new nint[MaxBatchedRequests];
        batch[t_batchCount++] = (nint)operation.Iocb;
        if (t_batchCount == MaxBatchedRequests)
        {
            FlushBatch();
        }
    }

    /// <summary>Submits the requests the calling thread's batch holds for this queue.</summary>
    public void FlushBatch()
    {
        if (t_batchQueue != this || t_batchCount == 0)
        {
            return;
        }

        int count = t_batchCount;
        t_batchCount = 0;
        fixed (nint* requests = t_batch)
        {
            SubmitNow((Libc.Iocb**)requests, count);
        }
    }

    /// <summary>
    /// io_submit, looped while the kernel takes part of the array. Requests it refuses (EAGAIN when
    /// kernel resources run out, EINVAL say for RWF_DSYNC on an old kernel) are done synchronously
    /// here and completed as if reaped.
    /// </summary>
    private void SubmitNow(Libc.Iocb** requests, int count)
    {
        int done = 0;
        while (done < count)
        {
            long submitted = Libc.IoSubmit(context, count - done, requests + done);
            if (submitted > 0)
            {
                done += (int)submitted;
                continue;
            }

            if (submitted < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR)
            {
                continue;
            }

            Complete(operations[(int)requests[done]->Data], 0);
            done++;
        }
    }

    /// <summary>A free slot marked busy, or -1 when all are taken (lock-free: submitters and the reaper both get here).</summary>
    private int TakeSlot()
    {
        for (int word = 0; word < busySlots.Length; word++)
        {
            long busy = Volatile.Read(ref busySlots[word]);
            while (busy != -1L)
            {
                int bit = BitOperations.TrailingZeroCount(~busy);
                long seen = Interlocked.CompareExchange(ref busySlots[word], busy | (1L << bit), busy);
                if (seen == busy)
                {
                    return (word * 64) + bit;
                }

                busy = seen;
            }
        }

        return -1;
    }

    /// <summary>Gives a slot back once its caller has read the result.</summary>
    public void Recycle(DirectIoOperation operation)
    {
        long bit = 1L << (operation.Slot % 64);
        long before = Interlocked.And(ref busySlots[operation.Slot / 64], ~bit);
        Invariant.Assert((before & bit) != 0, "a direct I/O slot was given back twice");
    }

    private void Reap()
    {
        Libc.IoEvent* events = stackalloc Libc.IoEvent[ReapBatch];
        var timeout = new Libc.Timespec { Nanoseconds = ReapTimeoutNanoseconds };
        var poll = new BusyPoll(PollMicroseconds);
        while (!stopping || Volatile.Read(ref inKernel) > 0)
        {
            int pending = Volatile.Read(ref inKernel);
            long reaped = pending is > 0 and <= MaxPolledRequests ? Poll(poll, events) : 0;
            if (reaped == 0)
            {
                reaped = Libc.IoGetEvents(context, 1, ReapBatch, events, &timeout);
            }
            if (reaped < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                Invariant.Assert(errno == Libc.EINTR, $"io_getevents failed on disk {disk.Path}: errno {errno}");
                continue;
            }

            // Like the frames of one socket read: replies and acks that these completions produce leave
            // together, one send per socket, when the batch closes.
            SendBatch.Open();
            try
            {
                for (int i = 0; i < reaped; i++)
                {
                    Complete(operations[(int)events[i].Data], events[i].Result);
                }
            }
            finally
            {
                SendBatch.Close();
            }
        }

        TearDown();
    }

    /// <summary>
    /// With a few requests in the kernel: reaps without sleeping for up to <see cref="PollMicroseconds"/>
    /// (Polling/BusyPoll.cs), so a completion does not have to wake this thread (and, on the Secondary,
    /// its WriteAck leaves at once). Returns the events reaped, 0 when the caller must wait.
    /// </summary>
    private long Poll(BusyPoll poll, Libc.IoEvent* events)
    {
        if (!poll.Begin(out long deadline))
        {
            return 0;
        }
        var now = default(Libc.Timespec);
        long reaped;
        do
        {
            reaped = Libc.IoGetEvents(context, 0, ReapBatch, events, &now);
        }
        while (reaped == 0 && BusyPoll.KeepPolling(deadline));
        poll.Done(reaped > 0);
        return reaped > 0 ? reaped : 0;
    }

    private void Complete(DirectIoOperation operation, long result)
    {
        IOException? error = null;
        try
        {
            if (result < 0)
            {
                error = StorageErrors.Io(disk.Path, operation.IsWrite ? "write" : "read", operation.OffsetBytes, operation.LengthBytes, (int)-result);
            }
            else
            {
                FinishShort(operation, (int)result);
                if (!operation.IsWrite)
                {
                    new ReadOnlySpan<byte>(operation.Bounce, operation.LengthBytes).CopyTo(operation.ReadTarget.Span);
                }
            }
        }
        catch (IOException e)
        {
            error = e;
        }

        ReleaseBounce(operation);
        LeaveKernel();
        if (error is null)
        {
            operation.Succeed();
        }
        else
        {
            operation.Fail(error);
        }
    }

    /// <summary>A short transfer (rare with O_DIRECT) is finished synchronously from where it stopped.</summary>
    private void FinishShort(DirectIoOperation operation, int doneBytes)
    {
        if (doneBytes == operation.LengthBytes)
        {
            return;
        }

        var rest = new Span<byte>(operation.Bounce + doneBytes, operation.LengthBytes - doneBytes);
        if (operation.IsWrite)
        {
            disk.WriteAll(operation.OffsetBytes + doneBytes, rest);
        }
        else
        {
            disk.ReadExactly(operation.OffsetBytes + doneBytes, rest);
        }
    }

    private static void ReleaseBounce(DirectIoOperation operation)
    {
        operation.BouncePool!.Return(operation.Bounce);
        operation.Bounce = null;
        operation.ReadTarget = default;
    }

    /// <summary>
    /// Stops taking requests and waits for every one in the kernel to complete; the reaper then tears
    /// the context down. Called on the reaper thread itself (a completion's continuation closing the
    /// disk), it cannot wait for itself: the reaper finishes the requests still in the kernel and then
    /// tears down (the kernel holds its own reference to the file meanwhile).
    /// </summary>
    public void Dispose()
    {
        if (stopping)
        {
            return;
        }

        stopping = true;
        if (Thread.CurrentThread != reaper)
        {
            reaper.Join();
        }
    }

    private void TearDown()
    {
        Libc.IoDestroy(context);
        NativeMemory.AlignedFree(iocbs);
        smallBounces.Dispose();
        largeBounces.Dispose();
    }
}

// One request of a DirectIoQueue: its iocb slot, its aligned bounce buffer, and the ValueTask source
// its caller awaits. Pooled by the queue: the slot goes back once the caller has read the result, so
// a steady stream of requests allocates nothing.
using System.Threading.Tasks.Sources;
using Redundancy.Block.Engine;

namespace Redundancy.Block.Agent.Storage;

internal sealed unsafe class DirectIoOperation : IValueTaskSource
{
    private readonly DirectIoQueue queue;
    private ManualResetValueTaskSourceCore<bool> core;

    public DirectIoOperation(DirectIoQueue queue, int slot, Libc.Iocb* iocb)
    {
        this.queue = queue;
        Slot = slot;
        Iocb = iocb;
        // Completions run their continuation on the reaping thread: no second hop for the caller.
        core.RunContinuationsAsynchronously = false;
    }

    public int Slot { get; }

    public Libc.Iocb* Iocb { get; }

    /// <summary>The bounce buffer the kernel reads from or writes into; owned until completion.</summary>
    public byte* Bounce { get; set; }

    public AlignedBufferPool? BouncePool { get; set; }

    public bool IsWrite { get; set; }

    public long OffsetBytes { get; set; }

    public int LengthBytes { get; set; }

    /// <summary>Where a read's bytes go once they are in the bounce buffer.</summary>
    public Memory<byte> ReadTarget { get; set; }

    public ValueTask AsValueTask() => new(this, core.Version);

    public void Succeed() => core.SetResult(true);

    public void Fail(IOException error) => core.SetException(error);

    public ValueTaskSourceStatus GetStatus(short token) => core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        core.OnCompleted(continuation, state, token, flags);

    public void GetResult(short token)
    {
        // A stale token (a ValueTask awaited twice) throws in core.GetResult and must not recycle again.
        bool current = token == core.Version;
        try
        {
            core.GetResult(token);
        }
        finally
        {
            if (current)
            {
                Invariant.Assert(Bounce == null, "a direct I/O request's result is read before its bounce buffer went back");
                core.Reset();
                queue.Recycle(this);
            }
        }
    }
}

// A small pool of 4096-byte-aligned native buffers for O_DIRECT bounce I/O. Rent/Return are lock-free
// and allocate nothing managed, so the direct-I/O hot path stays allocation-free. Buffers beyond the
// pool's capacity are freed on return; Dispose frees the pooled ones (buffers still rented then are
// freed when they come back).
using System.Runtime.InteropServices;
using Redundancy.Block.Engine;

namespace Redundancy.Block.Agent.Storage;

internal sealed unsafe class AlignedBufferPool : IDisposable
{
    public const int AlignmentBytes = 4096;

    private readonly nint[] slots;
    private volatile bool disposed;

    public AlignedBufferPool(int bufferSizeBytes, int capacity)
    {
        Invariant.Assert(bufferSizeBytes > 0 && bufferSizeBytes % AlignmentBytes == 0,
            $"bounce buffer size {bufferSizeBytes} must be a positive multiple of {AlignmentBytes}");
        Invariant.Assert(capacity > 0, "pool capacity must be positive");
        BufferSizeBytes = bufferSizeBytes;
        slots = new nint[capacity];
    }

    public int BufferSizeBytes { get; }

    /// <summary>Returns a buffer of <see cref="BufferSizeBytes"/> bytes aligned to 4096.</summary>
    public byte* Rent()
    {
        for (int i = 0; i < slots.Length; i++)
        {
            nint taken = Interlocked.Exchange(ref slots[i], 0);
            if (taken != 0)
            {
                return (byte*)taken;
            }
        }

        return (byte*)NativeMemory.AlignedAlloc((nuint)BufferSizeBytes, AlignmentBytes);
    }

    public void Return(byte* buffer)
    {
        Invariant.Assert(buffer != null, "returning a null bounce buffer");
        Invariant.Assert(((nint)buffer & (AlignmentBytes - 1)) == 0, "returning an unaligned bounce buffer");
        if (!disposed)
        {
            for (int i = 0; i < slots.Length; i++)
            {
                if (Interlocked.CompareExchange(ref slots[i], (nint)buffer, 0) == 0)
                {
                    // Dispose may have swept the slots meanwhile; take it back so it is not leaked.
                    if (disposed && Interlocked.CompareExchange(ref slots[i], 0, (nint)buffer) == (nint)buffer)
                    {
                        break;
                    }

                    return;
                }
            }
        }

        NativeMemory.AlignedFree(buffer);
    }

    public void Dispose()
    {
        disposed = true;
        for (int i = 0; i < slots.Length; i++)
        {
            nint taken = Interlocked.Exchange(ref slots[i], 0);
            if (taken != 0)
            {
                NativeMemory.AlignedFree((void*)taken);
            }
        }
    }
}

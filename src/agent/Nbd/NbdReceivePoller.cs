// Brief busy-polling of a connection's socket before the session thread blocks in a receive. A
// queue-depth-1 client sends its next request a few tens of microseconds after our reply; if the
// session thread sleeps in the meantime, its CPU goes idle and waking it again (an IPI, on a VM a
// halted vCPU brought back) costs more than the request itself. So the thread first retries a
// non-blocking recv(MSG_DONTWAIT) for a short budget, then falls back to the blocking receive.
//
// Polling burns a CPU, so it is bounded: at most one poller per two CPUs in the process (none on a
// single CPU), and a connection whose polls keep missing (an idle or slow client) backs off
// exponentially. The first poll is the receive itself, so a busy connection pays no extra syscall.
// The session polls only when none of its requests is in flight (a replicated write waiting for
// its peer's ack is): only then is the client's next request what comes next.
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Redundancy.Block.Agent.Nbd;

internal sealed partial class NbdReceivePoller(Socket socket)
{
    /// <summary>How long a receive polls before it blocks.</summary>
    private static readonly long BudgetTicks = Stopwatch.Frequency * 64 / 1_000_000;

    /// <summary>Connections allowed to poll at the same time, process-wide.</summary>
    private static readonly int MaxPollers = Environment.ProcessorCount / 2;

    private const int MsgDontWait = 0x40;
    private const int EINTR = 4;
    private const int EAGAIN = 11;
    private const int MaxMissStreak = 10;

    private static int s_pollers;

    private readonly Socket _socket = socket;
    private int _skipPolls;
    private int _missStreak;

    /// <summary>A poller for <paramref name="stream"/> if it is a socket and polling can pay off; else null.</summary>
    public static NbdReceivePoller? For(Stream stream) =>
        MaxPollers > 0 && stream is NetworkStream network ? new NbdReceivePoller(network.Socket) : null;

    /// <summary>
    /// Polls for data into <paramref name="destination"/>: true with the byte count (0 at end of
    /// stream) once a receive got an answer; false when the budget ran out or polling is not allowed
    /// now, and the caller must do a blocking receive. A socket error throws an IOException.
    /// </summary>
    public bool TryReceive(Span<byte> destination, out int readBytes)
    {
        readBytes = 0;
        if (_skipPolls > 0)
        {
            _skipPolls--;
            return false;
        }

        if (Interlocked.Increment(ref s_pollers) > MaxPollers)
        {
            Interlocked.Decrement(ref s_pollers);
            return false;
        }

        bool answered;
        try
        {
            answered = Poll(destination, out readBytes);
        }
        finally
        {
            Interlocked.Decrement(ref s_pollers);
        }

        if (answered)
        {
            _missStreak = 0;
        }
        else
        {
            _missStreak = Math.Min(_missStreak + 1, MaxMissStreak);
            _skipPolls = (1 << _missStreak) - 1;
        }

        return answered;
    }

    private unsafe bool Poll(Span<byte> destination, out int readBytes)
    {
        readBytes = 0;
        SafeSocketHandle handle = _socket.SafeHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            nint fd = handle.DangerousGetHandle();
            long deadline = Stopwatch.GetTimestamp() + BudgetTicks;
            fixed (byte* buffer = destination)
            {
                while (true)
                {
                    nint result = Receive(fd, buffer, (nuint)destination.Length, MsgDontWait);
                    if (result >= 0)
                    {
                        readBytes = (int)result;
                        return true;
                    }

                    int errno = Marshal.GetLastPInvokeError();
                    if (errno != EAGAIN && errno != EINTR)
                    {
                        // Reported once by the kernel, so reported here, worded like NetworkStream does.
                        throw new IOException(
                            $"Unable to read data from the transport connection: {Marshal.GetPInvokeErrorMessage(errno)}.");
                    }

                    if (Stopwatch.GetTimestamp() >= deadline)
                    {
                        return false;
                    }

                    // Keeps this CPU awake while letting whatever else is runnable on it go first.
                    Thread.Yield();
                }
            }
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static unsafe partial nint Receive(nint fd, byte* buffer, nuint length, int flags);
}

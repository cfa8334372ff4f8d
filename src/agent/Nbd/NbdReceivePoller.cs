// Brief busy-polling of an NBD connection's socket before the session thread blocks in a receive
// (why: Polling/BusyPoll.cs). A queue-depth-1 client sends its next request a few tens of
// microseconds after our reply; if the session thread sleeps in the meantime, waking it again costs
// more than the request itself. So the thread first retries a non-blocking recv(MSG_DONTWAIT) for a
// short budget, then falls back to the blocking receive. Besides BusyPoll's bounds, at most one
// connection per two CPUs polls at a time, process-wide. The first poll is the receive itself, so a
// busy connection pays no extra syscall. The session polls only when none of its requests is in
// flight (a replicated write waiting for its peer's ack is): only then is the client's next request
// what comes next.
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Redundancy.Block.Agent.Polling;

namespace Redundancy.Block.Agent.Nbd;

internal sealed partial class NbdReceivePoller(Socket socket)
{
    /// <summary>How long a receive polls before it blocks.</summary>
    private const int BudgetMicroseconds = 64;

    /// <summary>Connections allowed to poll at the same time, process-wide.</summary>
    private static readonly int MaxPollers = Environment.ProcessorCount / 2;

    private const int MsgDontWait = 0x40;
    private const int EINTR = 4;
    private const int EAGAIN = 11;

    private static int s_pollers;

    private readonly Socket _socket = socket;
    private readonly BusyPoll _budget = new(BudgetMicroseconds);

    /// <summary>A poller for <paramref name="stream"/> if it is a socket and polling can pay off; else null.</summary>
    public static NbdReceivePoller? For(Stream stream) =>
        MaxPollers > 0 && BusyPoll.Worthwhile && stream is NetworkStream network ? new NbdReceivePoller(network.Socket) : null;

    /// <summary>
    /// Polls for data into <paramref name="destination"/>: true with the byte count (0 at end of
    /// stream) once a receive got an answer; false when the budget ran out or polling is not allowed
    /// now, and the caller must do a blocking receive. A socket error throws an IOException.
    /// </summary>
    public bool TryReceive(Span<byte> destination, out int readBytes)
    {
        readBytes = 0;
        if (!_budget.Begin(out long deadline))
        {
            return false;
        }

        if (Interlocked.Increment(ref s_pollers) > MaxPollers)
        {
            Interlocked.Decrement(ref s_pollers);
            return false; // not a miss: another connection is polling
        }

        bool answered = false;
        try
        {
            answered = Poll(destination, deadline, out readBytes);
        }
        finally
        {
            Interlocked.Decrement(ref s_pollers);
            _budget.Done(answered);
        }

        return answered;
    }

    private unsafe bool Poll(Span<byte> destination, long deadline, out int readBytes)
    {
        readBytes = 0;
        SafeSocketHandle handle = _socket.SafeHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            nint fd = handle.DangerousGetHandle();
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

                    if (!BusyPoll.KeepPolling(deadline))
                    {
                        return false;
                    }
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

// The stream a peer connection's PipeReader reads from: the socket's NetworkStream, but each read
// first busy-polls the non-blocking socket briefly (Polling/BusyPoll.cs). What a replicated write
// waits for comes from the peer within a disk write's time: its Data and Barrier on the Secondary,
// its WriteAck and BarrierAck on the Primary. Without the poll each of them wakes a receive thread
// from sleep, and on a virtual machine that wake-up, not the network, was most of what protocol C
// added to a queue-depth-1 write. Only on a quiet node, though (Polling/DiskRequestsInFlight.cs):
// under a deep queue the frames come back to back and the poll would only spin between them.
using System.Net.Sockets;
using Redundancy.Block.Agent.Polling;

namespace Redundancy.Block.Agent.Peers;

/// <param name="socket">The connection's socket (non-blocking once the connection is set up).</param>
/// <param name="pollMicroseconds">The poll budget of one read.</param>
/// <param name="mayPoll">Asked before each read's poll; by default, whether the node is quiet.</param>
internal sealed class PeerReceiveStream(Socket socket, int pollMicroseconds = PeerReceiveStream.PollMicroseconds, Func<bool>? mayPoll = null) : Stream
{
    /// <summary>About one disk write on the machines measured: the peer's answer usually comes within it.</summary>
    private const int PollMicroseconds = 300;

    private readonly NetworkStream inner = new(socket, ownsSocket: false);
    private readonly BusyPoll budget = new(pollMicroseconds);
    private readonly Func<bool> mayPoll = mayPoll ?? (static () => DiskRequestsInFlight.QuietEnoughToPoll);

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (mayPoll() && budget.Begin(out long deadline))
        {
            bool answered = false;
            try
            {
                do
                {
                    // The socket is non-blocking (PeerConnection sets it so): WouldBlock while nothing came.
                    int read = socket.Receive(buffer.Span, SocketFlags.None, out SocketError error);
                    if (error == SocketError.Success)
                    {
                        answered = true;
                        return ValueTask.FromResult(read);
                    }
                    if (error != SocketError.WouldBlock)
                    {
                        break; // the async receive reports it, as it would have without the poll
                    }
                }
                while (BusyPoll.KeepPolling(deadline));
            }
            catch (ObjectDisposedException)
            {
                // Closed meanwhile: the async receive reports it.
            }
            finally
            {
                budget.Done(answered);
            }
        }
        return inner.ReadAsync(buffer, cancellationToken);
    }

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}

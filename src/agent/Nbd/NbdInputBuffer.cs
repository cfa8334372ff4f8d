// Buffered, blocking reader over the client's byte stream, used only by the session's own thread.
// Headers are parsed straight out of one pooled buffer filled by large receives (many pipelined
// requests per syscall); big WRITE payloads are received directly into the request's buffer. Reads
// are plain blocking receives: no thread hop, no state machine, nothing allocated. A cancellation
// cannot interrupt a blocking receive by itself, so the session shuts the socket's receive side down
// when it cancels; a receive that then ends or fails surfaces as OperationCanceledException. Waiting
// for the next request, a receive first busy-polls briefly (NbdReceivePoller) so a quick client
// finds the thread awake.
using System.Buffers;
using Redundancy.Block.Engine;

namespace Redundancy.Block.Agent.Nbd;

internal sealed class NbdInputBuffer(Stream stream, int capacityBytes) : IDisposable
{
    private readonly Stream _stream = stream;
    private readonly NbdReceivePoller? _poller = NbdReceivePoller.For(stream);
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(capacityBytes);
    private int _start;
    private int _end;

    /// <summary>Bytes received and not yet consumed.</summary>
    public int Available => _end - _start;

    /// <summary>The next <paramref name="count"/> buffered bytes (must be available).</summary>
    public ReadOnlySpan<byte> Peek(int count) => _buffer.AsSpan(_start, count);

    public void Consume(int count)
    {
        Invariant.Assert(count <= Available, "consumed more than was buffered");
        _start += count;
    }

    /// <summary>
    /// Makes at least <paramref name="count"/> bytes available, blocking (after a brief poll unless
    /// <paramref name="mayPoll"/> is false). False on a clean end of stream (nothing buffered);
    /// <see cref="EndOfStreamException"/> if the stream ends inside a message.
    /// </summary>
    public bool Fill(int count, CancellationToken cancellationToken, bool mayPoll = true) =>
        Available >= count || FillSlow(count, cancellationToken, mayPoll);

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes: buffered ones first, then the stream.</summary>
    public void ReadExact(Span<byte> destination, CancellationToken cancellationToken)
    {
        int buffered = Math.Min(Available, destination.Length);
        _buffer.AsSpan(_start, buffered).CopyTo(destination);
        _start += buffered;
        if (buffered < destination.Length)
        {
            ReadDirect(destination[buffered..], cancellationToken);
        }
    }

    /// <summary>Reads and discards <paramref name="count"/> bytes (payloads we reject).</summary>
    public void Skip(long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            if (Available == 0 && !Fill(1, cancellationToken))
            {
                throw new EndOfStreamException("client closed the connection inside a payload");
            }

            int step = (int)Math.Min(count, Available);
            _start += step;
            count -= step;
        }
    }

    private bool FillSlow(int count, CancellationToken cancellationToken, bool mayPoll = true)
    {
        Invariant.Assert(count <= _buffer.Length, "fill larger than the input buffer");
        if (_start > 0 && _buffer.Length - _start < count)
        {
            _buffer.AsSpan(_start, Available).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        while (Available < count)
        {
            if (_start == _end)
            {
                _start = _end = 0;
            }

            int read = Receive(_buffer.AsSpan(_end), cancellationToken, mayPoll);
            if (read == 0)
            {
                return Available == 0 ? false : throw new EndOfStreamException("client closed the connection inside a message");
            }

            _end += read;
        }

        return true;
    }

    private void ReadDirect(Span<byte> destination, CancellationToken cancellationToken)
    {
        Invariant.Assert(Available == 0, "direct read with bytes still buffered");
        _start = _end = 0;
        if (destination.Length < _buffer.Length / 4)
        {
            // Small remainder: refill the buffer so the next headers come with the same receive.
            if (!FillSlow(destination.Length, cancellationToken))
            {
                throw new EndOfStreamException("client closed the connection inside a payload");
            }

            _buffer.AsSpan(0, destination.Length).CopyTo(destination);
            _start = destination.Length;
            return;
        }

        while (!destination.IsEmpty)
        {
            int read = Receive(destination, cancellationToken, mayPoll: false);
            if (read == 0)
            {
                throw new EndOfStreamException("client closed the connection inside a payload");
            }

            destination = destination[read..];
        }
    }

    /// <summary>
    /// One receive, blocking unless <paramref name="mayPoll"/> and a brief poll got an answer; a receive
    /// ended by the session's cancellation throws OperationCanceledException.
    /// </summary>
    private int Receive(Span<byte> destination, CancellationToken cancellationToken, bool mayPoll)
    {
        int read;
        try
        {
            if (!mayPoll || _poller is null || !_poller.TryReceive(destination, out read))
            {
                read = _stream.Read(destination);
            }
        }
        catch (Exception exception) when (exception is IOException or ObjectDisposedException && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException("reading was cancelled", exception, cancellationToken);
        }

        if (read == 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
        }

        return read;
    }

    public void Dispose()
    {
        byte[] buffer = Interlocked.Exchange(ref _buffer, []);
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

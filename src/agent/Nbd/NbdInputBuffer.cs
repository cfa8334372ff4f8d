// Buffered reader over the client's byte stream. Headers are parsed straight out of one pooled
// buffer filled by large receives (many pipelined requests per syscall); big WRITE payloads are
// read directly into the request's buffer. Slow paths use pooled async state machines, so the
// steady state allocates nothing.
using System.Buffers;
using System.Runtime.CompilerServices;
using Redundancy.Block.Engine;

namespace Redundancy.Block.Agent.Nbd;

internal sealed class NbdInputBuffer(Stream stream, int capacityBytes) : IDisposable
{
    private readonly Stream _stream = stream;
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
    /// Makes at least <paramref name="count"/> bytes available. False on a clean end of stream (nothing
    /// buffered); <see cref="EndOfStreamException"/> if the stream ends inside a message.
    /// </summary>
    public ValueTask<bool> FillAsync(int count, CancellationToken cancellationToken) =>
        Available >= count ? new ValueTask<bool>(true) : FillSlowAsync(count, cancellationToken);

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes: buffered ones first, then the stream.</summary>
    public ValueTask ReadExactAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        int buffered = Math.Min(Available, destination.Length);
        _buffer.AsSpan(_start, buffered).CopyTo(destination.Span);
        _start += buffered;
        return buffered == destination.Length
            ? ValueTask.CompletedTask
            : ReadDirectAsync(destination[buffered..], cancellationToken);
    }

    /// <summary>Reads and discards <paramref name="count"/> bytes (payloads we reject).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask SkipAsync(long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            if (Available == 0 && !await FillAsync(1, cancellationToken).ConfigureAwait(false))
            {
                throw new EndOfStreamException("client closed the connection inside a payload");
            }

            int step = (int)Math.Min(count, Available);
            _start += step;
            count -= step;
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FillSlowAsync(int count, CancellationToken cancellationToken)
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

            int read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return Available == 0 ? false : throw new EndOfStreamException("client closed the connection inside a message");
            }

            _end += read;
        }

        return true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadDirectAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        Invariant.Assert(Available == 0, "direct read with bytes still buffered");
        _start = _end = 0;
        if (destination.Length < _buffer.Length / 4)
        {
            // Small remainder: refill the buffer so the next headers come with the same receive.
            if (!await FillSlowAsync(destination.Length, cancellationToken).ConfigureAwait(false))
            {
                throw new EndOfStreamException("client closed the connection inside a payload");
            }

            _buffer.AsSpan(0, destination.Length).CopyTo(destination.Span);
            _start = destination.Length;
            return;
        }

        while (!destination.IsEmpty)
        {
            int read = await _stream.ReadAsync(destination, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new EndOfStreamException("client closed the connection inside a payload");
            }

            destination = destination[read..];
        }
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

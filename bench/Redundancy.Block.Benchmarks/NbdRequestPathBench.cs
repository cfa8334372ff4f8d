// Measures one NBD request through a real NbdSession: header parse, validation, device call on the
// session's thread, reply encode and send, for a 4 KiB READ and WRITE (simple and structured
// replies), over an in-memory duplex stream (blocking reads, like the socket) and an in-memory device. [MemoryDiagnoser] must show 0 B per operation.
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Redundancy.Block.Agent.Nbd;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Benchmarks;

[MemoryDiagnoser]
public class NbdRequestPathBench
{
    private const int BlockBytes = 4096;
    private readonly byte[] _readRequest = new byte[NbdRequestHeader.SizeBytes];
    private readonly byte[] _writeRequest = new byte[NbdRequestHeader.SizeBytes + BlockBytes];
    private InMemoryDuplexStream _transport = null!;
    private Task _session = Task.CompletedTask;

    [Params(false, true)]
    public bool StructuredReplies { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _transport = new InMemoryDuplexStream();
        var session = new NbdSession(_transport, "bench", new BenchCatalog(), new NbdServerOptions(), NullLogger.Instance);
        _session = session.RunAsync();
        _transport.Push(HandshakeBytes(StructuredReplies));
        SpinWait.SpinUntil(() => session.ExportName is not null, TimeSpan.FromSeconds(10));
        if (session.ExportName is null)
        {
            throw new InvalidOperationException("handshake did not complete");
        }

        new NbdRequestHeader(NbdCommandFlags.None, NbdCommand.Read, 1, 8192, BlockBytes).Write(_readRequest);
        new NbdRequestHeader(NbdCommandFlags.None, NbdCommand.Write, 2, 8192, BlockBytes).Write(_writeRequest);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _transport.Push(DisconnectBytes());
        _session.Wait(TimeSpan.FromSeconds(10));
    }

    [Benchmark]
    public void Read4K() => _transport.RoundTrip(_readRequest, (StructuredReplies ? NbdReplyWriter.OffsetDataHeaderSizeBytes : NbdReplyWriter.SimpleReplySizeBytes) + BlockBytes);

    [Benchmark]
    public void Write4K() => _transport.RoundTrip(_writeRequest, NbdReplyWriter.SimpleReplySizeBytes);

    private static byte[] HandshakeBytes(bool structured)
    {
        var bytes = new List<byte> { 0, 0, 0, 3 };   // client flags: FIXED_NEWSTYLE | NO_ZEROES
        if (structured)
        {
            var sr = new byte[NbdOptionHeader.SizeBytes];
            new NbdOptionHeader((uint)NbdOption.StructuredReply, 0).Write(sr);
            bytes.AddRange(sr);
        }

        byte[] go = [0, 0, 0, 1, (byte)'b', 0, 0];   // name "b", no info requests
        var header = new byte[NbdOptionHeader.SizeBytes];
        new NbdOptionHeader((uint)NbdOption.Go, (uint)go.Length).Write(header);
        bytes.AddRange(header);
        bytes.AddRange(go);
        return [.. bytes];
    }

    private static byte[] DisconnectBytes()
    {
        var bytes = new byte[NbdRequestHeader.SizeBytes];
        new NbdRequestHeader(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 0).Write(bytes);
        return bytes;
    }

    /// <summary>
    /// A duplex stream in memory: Push feeds the session's blocking reads (waking a reader waiting on
    /// the monitor), writes are counted until a round trip's reply is complete.
    /// </summary>
    private sealed class InMemoryDuplexStream : Stream
    {
        private readonly object _gate = new();
        private readonly SemaphoreSlim _replied = new(0);
        private readonly byte[] _inbound = new byte[1 << 20];
        private int _inboundStart;
        private int _inboundEnd;
        private long _written;
        private long _replyTarget = long.MaxValue;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        /// <summary>Sends a request and waits until <paramref name="replyBytes"/> more bytes were written back.</summary>
        public void RoundTrip(byte[] request, int replyBytes)
        {
            Interlocked.Exchange(ref _replyTarget, Interlocked.Read(ref _written) + replyBytes);
            Push(request);
            _replied.Wait();
        }

        public void Push(ReadOnlySpan<byte> bytes)
        {
            lock (_gate)
            {
                bytes.CopyTo(_inbound.AsSpan(_inboundEnd));
                _inboundEnd += bytes.Length;
                Monitor.PulseAll(_gate);
            }
        }

        public override int Read(Span<byte> buffer)
        {
            lock (_gate)
            {
                while (_inboundEnd == _inboundStart)
                {
                    Monitor.Wait(_gate);
                }

                return TakeInbound(buffer);
            }
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            long written = Interlocked.Add(ref _written, buffer.Length);
            if (written >= Interlocked.Read(ref _replyTarget))
            {
                Interlocked.Exchange(ref _replyTarget, long.MaxValue);
                _replied.Release();
            }
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        private int TakeInbound(Span<byte> destination)
        {
            int count = Math.Min(destination.Length, _inboundEnd - _inboundStart);
            _inbound.AsSpan(_inboundStart, count).CopyTo(destination);
            _inboundStart += count;
            if (_inboundStart == _inboundEnd)
            {
                _inboundStart = _inboundEnd = 0;
            }

            return count;
        }
    }

    private sealed class BenchCatalog : INbdExportCatalog
    {
        private readonly MemoryDevice _device = new(64L << 20);

        public IReadOnlyList<NbdExportInfo> ListExports() => [new("b", "")];

        public bool TryOpen(string name, out INbdExport? export, out string refusal)
        {
            refusal = "";
            export = new BenchExport(_device);
            return true;
        }
    }

    private sealed class BenchExport(MemoryDevice device) : INbdExport
    {
        public string Name => "b";

        public long SizeBytes => device.SizeBytes;

        public bool IsReadOnly => false;

        public IBlockDevice Device => device;

        public CancellationToken Revoked => CancellationToken.None;

        public void Dispose()
        {
        }
    }

    /// <summary>A flat in-memory disk whose operations complete synchronously.</summary>
    private sealed class MemoryDevice(long sizeBytes) : IBlockDevice
    {
        private readonly byte[] _bytes = new byte[sizeBytes];

        public long SizeBytes => _bytes.LongLength;

        public bool CanFastZero => true;

        public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _bytes.AsSpan((int)offsetBytes, buffer.Length).CopyTo(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default)
        {
            data.Span.CopyTo(_bytes.AsSpan((int)offsetBytes));
            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

        public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
            WriteZeroesAsync(offsetBytes, lengthBytes, true, cancellationToken);

        public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default)
        {
            _bytes.AsSpan((int)offsetBytes, (int)lengthBytes).Clear();
            return ValueTask.CompletedTask;
        }

        public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default)
        {
            extents.Add(new AllocationExtent(lengthBytes, AllocationFlags.Data));
            return ValueTask.CompletedTask;
        }

        public void Dispose()
        {
        }
    }
}

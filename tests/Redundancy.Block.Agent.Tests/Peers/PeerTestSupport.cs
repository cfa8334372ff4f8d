// Helpers for the peer transport tests: a connected pair of PeerConnections over real loopback
// sockets, a frame sink that copies what it receives, a Closed recorder and a log collector.
using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Tests.Peers;

internal static class PeerTestSupport
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    /// <summary>Two connected sockets on 127.0.0.1: (dialled, accepted).</summary>
    public static async Task<(Socket Client, Socket Server)> SocketPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Task<Socket> accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!);
        return (client, await accept);
    }

    /// <summary>Two unstarted PeerConnections talking to each other.</summary>
    public static async Task<(PeerConnection A, PeerConnection B)> ConnectionPairAsync(PeerConnectionOptions? options = null, ILogger? logger = null)
    {
        var (client, server) = await SocketPairAsync();
        options ??= new PeerConnectionOptions();
        logger ??= NullLogger.Instance;
        return (new PeerConnection(client, "r0 beta", options, logger), new PeerConnection(server, "r0 alpha", options, logger));
    }

    /// <summary>A started pair where A sends and B collects into the returned sink, frames up to 2 MiB accepted.</summary>
    public static async Task<(PeerConnection A, PeerConnection B, FrameSink Sink)> SendingPairAsync(PeerConnectionOptions? options = null)
    {
        var (a, b) = await ConnectionPairAsync(options);
        b.SetMaxPayloadBytes(2 << 20);
        var sink = new FrameSink();
        a.Start((in FrameHeader h, in ReadOnlySequence<byte> p) => { }, _ => { });
        b.Start(sink.OnFrame, _ => { });
        return (a, b, sink);
    }

    /// <summary>Waits (polling every 10 ms) until <paramref name="condition"/> holds; fails with <paramref name="failure"/> after <see cref="Patience"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, Func<string> failure)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure());
            await Task.Delay(10);
        }
    }

    public static byte[] Pattern(int lengthBytes, int seed)
    {
        var bytes = new byte[lengthBytes];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}

/// <summary>Copies every received frame; waits for a count.</summary>
internal sealed class FrameSink
{
    private readonly ConcurrentQueue<(FrameHeader Header, byte[] Payload)> _frames = new();
    private readonly SemaphoreSlim _arrived = new(0);

    public IReadOnlyCollection<(FrameHeader Header, byte[] Payload)> Frames => _frames;

    public void OnFrame(in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        _frames.Enqueue((header, payload.ToArray()));
        _arrived.Release();
    }

    public async Task WaitForAsync(int count)
    {
        for (int i = 0; i < count; i++)
        {
            Assert.True(await _arrived.WaitAsync(PeerTestSupport.Patience), $"only {i} of {count} frames arrived");
        }
    }
}

/// <summary>Records Closed calls.</summary>
internal sealed class CloseRecorder
{
    private readonly TaskCompletionSource<PeerCloseReason> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _calls;

    public int Calls => Volatile.Read(ref _calls);

    public void OnClosed(PeerCloseReason reason)
    {
        Interlocked.Increment(ref _calls);
        _first.TrySetResult(reason);
    }

    public Task<PeerCloseReason> FirstAsync() => _first.Task.WaitAsync(PeerTestSupport.Patience);
}

/// <summary>An ILoggerFactory that keeps every formatted message.</summary>
internal sealed class CollectingLoggerFactory : ILoggerFactory, ILogger
{
    private readonly ConcurrentQueue<string> _messages = new();

    public IReadOnlyCollection<string> Messages => _messages;

    public ILogger CreateLogger(string categoryName) => this;

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _messages.Enqueue(formatter(state, exception));

    public Task WaitForAsync(string fragment) => PeerTestSupport.WaitUntilAsync(
        () => _messages.Any(message => message.Contains(fragment, StringComparison.Ordinal)),
        () => $"no log line contains '{fragment}'; got: {string.Join(" | ", _messages)}");

    public void Dispose()
    {
    }
}

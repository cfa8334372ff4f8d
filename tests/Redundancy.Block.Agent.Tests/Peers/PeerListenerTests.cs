// PeerListener, PeerListenerPool and PeerDialer over loopback: routing by Hello, refusals with the
// reason logged, the Hello timeout, reference-counted listeners, dial failures.
using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Tests.Peers;

public sealed class PeerListenerTests
{
    private static readonly FeaturesMessage Features = new(1, 1, FeatureFlags.None, 1 << 20);

    [Fact]
    public async Task Two_resources_on_one_port_are_routed_by_Hello_with_the_frames_already_read()
    {
        var logs = new CollectingLoggerFactory();
        var options = new PeerConnectionOptions();
        await using var listener = new PeerListener("127.0.0.1:0", options, logs);
        listener.Start();
        var accepted = new ConcurrentDictionary<string, (PeerConnection Connection, IReadOnlyList<(FrameHeader Header, byte[] Payload)> Frames, FrameSink Sink)>();
        var arrived = new SemaphoreSlim(0);
        foreach (var (resource, nodeId) in new[] { ("r0", 1), ("r1", 2) })
        {
            listener.Register(resource, nodeId, (connection, frames) =>
            {
                var sink = new FrameSink();
                accepted[resource] = (connection, frames, sink);
                connection.Start(sink.OnFrame, _ => { });
                arrived.Release();
            });
        }

        var dialer = new PeerDialer(options, logs);
        var dialled = new List<PeerConnection>();
        try
        {
            foreach (var (resource, nodeId, epoch) in new[] { ("r0", (byte)1, 100UL), ("r1", (byte)2, 200UL) })
            {
                PeerConnection connection = await DialAndStartAsync(dialer, listener.LocalEndPoint!.ToString(), new CloseRecorder());
                dialled.Add(connection);
                Assert.True(connection.SendFrame(0, Features));
                Assert.True(connection.SendFrame(0, new HelloMessage(nodeId, 0, resource, "beta")));
                Assert.True(connection.SendFrame(0, new BarrierMessage(epoch))); // right behind the Hello: must not be lost
            }

            for (int i = 0; i < 2; i++)
            {
                Assert.True(await arrived.WaitAsync(PeerTestSupport.Patience));
            }

            foreach (var (resource, epoch) in new[] { ("r0", 100UL), ("r1", 200UL) })
            {
                var (connection, frames, sink) = accepted[resource];
                Assert.Equal([MessageType.Features, MessageType.Hello], frames.Select(frame => frame.Header.Type));
                Assert.True(HelloMessage.TryRead(frames[1].Payload, out HelloMessage hello, out _));
                Assert.Equal(resource, hello.ResourceName);
                Assert.Equal($"{resource} beta", connection.Name);
                await sink.WaitForAsync(1);
                Assert.True(BarrierMessage.TryRead(sink.Frames.Single().Payload, out BarrierMessage barrier, out _));
                Assert.Equal(epoch, barrier.Epoch);
                await connection.DisposeAsync();
            }
        }
        finally
        {
            foreach (PeerConnection connection in dialled)
            {
                await connection.DisposeAsync();
            }
        }
    }

    [Theory]
    [InlineData("r9", 1, "refused: unknown resource 'r9'")]
    [InlineData("r0", 5, "r0: incoming connection from")]
    public async Task A_Hello_nobody_registered_is_closed_and_logged(string resource, int nodeId, string logged)
    {
        var logs = new CollectingLoggerFactory();
        await using var listener = new PeerListener("127.0.0.1:0", new PeerConnectionOptions(), logs);
        listener.Start();
        listener.Register("r0", 1, (connection, _) => throw new InvalidOperationException("must not be routed here"));

        var closed = new CloseRecorder();
        await using PeerConnection dialled = await DialAndStartAsync(new PeerDialer(new PeerConnectionOptions(), logs), listener.LocalEndPoint!.ToString(), closed);
        Assert.True(dialled.SendFrame(0, Features));
        Assert.True(dialled.SendFrame(0, new HelloMessage((byte)nodeId, 0, resource, "beta")));

        Assert.Equal(PeerCloseKind.PeerClosed, (await closed.FirstAsync()).Kind); // a refusal is an orderly close
        await logs.WaitForAsync(logged);
        if (nodeId == 5)
        {
            await logs.WaitForAsync("unknown node-id 5");
        }
    }

    [Fact]
    public async Task A_connection_that_sends_no_Hello_is_closed_after_the_timeout()
    {
        var logs = new CollectingLoggerFactory();
        var options = new PeerConnectionOptions { HelloTimeout = TimeSpan.FromMilliseconds(200) };
        await using var listener = new PeerListener("127.0.0.1:0", options, logs);
        listener.Start();
        listener.Register("r0", 1, (connection, _) => throw new InvalidOperationException("must not be routed here"));

        var closed = new CloseRecorder();
        var watch = Stopwatch.StartNew();
        await using PeerConnection dialled = await DialAndStartAsync(new PeerDialer(options, logs), listener.LocalEndPoint!.ToString(), closed);
        Assert.True(dialled.SendFrame(0, Features));

        Assert.Equal(PeerCloseKind.PeerClosed, (await closed.FirstAsync()).Kind);
        Assert.InRange(watch.ElapsedMilliseconds, 150, 3000);
        await logs.WaitForAsync("dropped before its Hello: no Hello within 200 ms");
    }

    [Fact]
    public async Task Disposing_the_listener_closes_connections_still_waiting_for_their_Hello()
    {
        var logs = new CollectingLoggerFactory();
        var listener = new PeerListener("127.0.0.1:0", new PeerConnectionOptions(), logs);
        listener.Start();
        var closed = new CloseRecorder();
        await using PeerConnection dialled = await DialAndStartAsync(new PeerDialer(new PeerConnectionOptions(), logs), listener.LocalEndPoint!.ToString(), closed);
        // Wait until the listener has accepted it (a fixed sleep was not always enough under load:
        // a connection still in the accept backlog is reset when the listening socket closes).
        await PeerTestSupport.WaitUntilAsync(() => listener.HandshakesInProgress > 0, () => "the listener never accepted the connection");

        await listener.DisposeAsync();
        Assert.Equal(PeerCloseKind.PeerClosed, (await closed.FirstAsync()).Kind);
        await logs.WaitForAsync("dropped before its Hello: the listener is stopping");
        Assert.Equal("refused", await ConnectOutcomeAsync(listener.LocalEndPoint!));
    }

    [Fact]
    public async Task Pooled_listeners_are_shared_per_address_and_stop_with_their_last_user()
    {
        var logs = new CollectingLoggerFactory();
        await using var pool = new PeerListenerPool(new PeerConnectionOptions(), logs);
        PeerListener first = pool.Acquire("127.0.0.1:0");
        PeerListener second = pool.Acquire("ipv4 127.0.0.1:0");
        Assert.Same(first, second);
        Assert.Equal(2, pool.UserCount("127.0.0.1:0"));
        IPEndPoint bound = first.LocalEndPoint!;

        await pool.ReleaseAsync("127.0.0.1:0");
        Assert.Equal("connected", await ConnectOutcomeAsync(bound));
        await pool.ReleaseAsync("127.0.0.1:0");
        Assert.Equal(0, pool.UserCount("127.0.0.1:0"));
        Assert.Equal("refused", await ConnectOutcomeAsync(bound));
        Assert.Throws<FormatException>(() => pool.Acquire("localhost:7789"));
    }

    [Fact]
    public async Task Dialling_a_closed_port_fails_promptly_with_the_reason_logged()
    {
        var logs = new CollectingLoggerFactory();
        int port;
        using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)probe.LocalEndPoint!).Port;
        }

        var watch = Stopwatch.StartNew();
        PeerDialResult result = await new PeerDialer(new PeerConnectionOptions(), logs)
            .DialAsync($"127.0.0.1:{port}", "r0 beta", TimeSpan.FromSeconds(3), CancellationToken.None);

        Assert.Null(result.Connection);
        Assert.Equal("connection refused", result.FailureReason);
        Assert.True(watch.ElapsedMilliseconds < 1000, $"took {watch.ElapsedMilliseconds} ms");
        await logs.WaitForAsync($"r0 beta: connection to 127.0.0.1:{port} failed: connection refused");
    }

    private static async Task<PeerConnection> DialAndStartAsync(PeerDialer dialer, string address, CloseRecorder closed)
    {
        PeerDialResult result = await dialer.DialAsync(address, "r0 alpha", PeerTestSupport.Patience, CancellationToken.None);
        Assert.True(result.Connection is not null, result.FailureReason);
        result.Connection.Start((in FrameHeader h, in ReadOnlySequence<byte> p) => { }, closed.OnClosed);
        return result.Connection;
    }

    private static async Task<string> ConnectOutcomeAsync(IPEndPoint endPoint)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(endPoint);
            return "connected";
        }
        catch (SocketException exception) when (exception.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return "refused";
        }
    }
}

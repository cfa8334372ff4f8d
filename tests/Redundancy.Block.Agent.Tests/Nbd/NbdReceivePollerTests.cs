using System.Net;
using System.Net.Sockets;
using Redundancy.Block.Agent.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd;

/// <summary>The receive poller on real loopback sockets: data, end of stream, giving up, errors.</summary>
/// <remarks>
/// Each test first waits until the event it is about (data, FIN, RST) has reached the socket, then
/// retries until the poller answers or <see cref="Patience"/> ends. Retrying by count instead is
/// racy: polling is gated process-wide (one poller per two CPUs), so while an NBD session of another
/// test holds the slot — for milliseconds when its thread is preempted on a loaded machine — every
/// try answers false at once, and a thousand such tries take about a millisecond.
/// </remarks>
public sealed class NbdReceivePollerTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    private readonly Socket server;
    private readonly Socket client;

    public NbdReceivePollerTests()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        server = listener.Accept();
    }

    public void Dispose()
    {
        client.Dispose();
        server.Dispose();
    }

    [Fact]
    public void Data_already_waiting_is_returned()
    {
        RequirePolling();
        client.Send([1, 2, 3]);
        WaitUntilReadable();
        Assert.Equal(3, server.Available);
        var poller = new NbdReceivePoller(server);
        var buffer = new byte[16];
        int read = ReceiveWithPatience(poller, buffer);
        Assert.Equal([1, 2, 3], buffer[..read]);
    }

    [Fact]
    public void End_of_stream_answers_with_zero_bytes()
    {
        RequirePolling();
        client.Shutdown(SocketShutdown.Send);
        WaitUntilReadable(); // the FIN has arrived
        var poller = new NbdReceivePoller(server);
        Assert.Equal(0, ReceiveWithPatience(poller, new byte[8]));
    }

    [Fact]
    public void With_nothing_arriving_it_gives_up_and_backs_off()
    {
        RequirePolling();
        var poller = new NbdReceivePoller(server);
        var started = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(poller.TryReceive(new byte[8], out _));
        Assert.True(started.ElapsedMilliseconds < 1000, "a poll is bounded in time");
        // After a miss, the next try does not poll at all (back-off): it answers false at once.
        Assert.False(poller.TryReceive(new byte[8], out _));
    }

    [Fact]
    public void A_reset_connection_ends_the_stream_with_an_error_or_end_of_stream()
    {
        RequirePolling();
        client.LingerState = new LingerOption(true, 0);
        client.Close(); // RST
        WaitUntilReadable(); // the RST has arrived
        var poller = new NbdReceivePoller(server);
        // The kernel reports a reset once (ECONNRESET → IOException) and end of stream after that; the
        // session treats both as the end of the connection. What must not happen: data, or no answer.
        int read;
        try
        {
            read = ReceiveWithPatience(poller, new byte[8]);
        }
        catch (IOException)
        {
            return;
        }

        Assert.Equal(0, read);
    }

    /// <summary>Waits until the server socket has data, end of stream or an error to report.</summary>
    private void WaitUntilReadable() =>
        Assert.True(server.Poll(Patience, SelectMode.SelectRead), "nothing reached the server socket");

    /// <summary>
    /// Tries until the poller answers (false means "not now": the slot is taken or it is backing off)
    /// and returns the byte count; fails when it never answers although the socket has something.
    /// </summary>
    private static int ReceiveWithPatience(NbdReceivePoller poller, Span<byte> destination)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        int readBytes;
        while (!poller.TryReceive(destination, out readBytes))
        {
            Assert.True(waited.Elapsed < Patience, "the poller never answered although the socket was readable");
            Thread.Yield(); // lets a preempted slot holder on this CPU finish its poll
        }

        return readBytes;
    }

    private static void RequirePolling() => Assert.True(Environment.ProcessorCount >= 2, "the poller only runs with two or more CPUs");
}

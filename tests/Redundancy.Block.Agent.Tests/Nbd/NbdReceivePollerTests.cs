using System.Net;
using System.Net.Sockets;
using Redundancy.Block.Agent.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd;

/// <summary>The receive poller on real loopback sockets: data, end of stream, giving up, errors.</summary>
public sealed class NbdReceivePollerTests : IDisposable
{
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
        var poller = new NbdReceivePoller(server);
        var buffer = new byte[16];
        bool answered = false;
        int read = 0;
        for (int i = 0; i < 1000 && !answered; i++)
        {
            answered = poller.TryReceive(buffer, out read);
        }
        Assert.True(answered);
        Assert.Equal([1, 2, 3], buffer[..read]);
    }

    [Fact]
    public void End_of_stream_answers_with_zero_bytes()
    {
        RequirePolling();
        client.Shutdown(SocketShutdown.Send);
        var poller = new NbdReceivePoller(server);
        bool answered = false;
        int read = -1;
        for (int i = 0; i < 1000 && !answered; i++)
        {
            answered = poller.TryReceive(new byte[8], out read);
        }
        Assert.True(answered);
        Assert.Equal(0, read);
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
        var poller = new NbdReceivePoller(server);
        Thread.Sleep(50); // let the RST arrive
        // The kernel reports a reset once (ECONNRESET → IOException) and end of stream after that; the
        // session treats both as the end of the connection. What must not happen: data, or no answer.
        IOException? error = null;
        bool answered = false;
        int read = -1;
        for (int i = 0; i < 5000 && error is null && !answered; i++)
        {
            try
            {
                answered = poller.TryReceive(new byte[8], out read); // false while another connection holds the polling slot
            }
            catch (IOException e)
            {
                error = e;
            }
        }
        Assert.True(error is not null || (answered && read == 0), $"answered {answered} with {read} bytes");
    }

    private static void RequirePolling() => Assert.True(Environment.ProcessorCount >= 2, "the poller only runs with two or more CPUs");
}

// The peer receive stream's busy-poll: a read of an idle socket polls for its budget on a quiet
// node and goes straight to the asynchronous receive on a busy one (more disk requests in flight
// than DiskRequestsInFlight allows). A long budget makes the difference plain in wall time.
using System.Diagnostics;
using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Agent.Polling;

namespace Redundancy.Block.Agent.Tests.Peers;

public sealed class PeerReceiveStreamTests
{
    private const int BudgetMicroseconds = 300_000;

    [Fact]
    public async Task On_a_quiet_node_a_read_of_an_idle_socket_polls_for_its_budget_before_it_waits()
    {
        Assert.True(BusyPoll.Worthwhile, "polling needs two CPUs; the test machines have them");
        var (elapsed, received) = await ReadIdleThenSendAsync(mayPoll: true);
        Assert.True(elapsed >= TimeSpan.FromMilliseconds(250), $"returned after {elapsed.TotalMilliseconds:F1} ms, before the poll budget ran out");
        Assert.Equal(7, received);
    }

    [Fact]
    public async Task On_a_busy_node_a_read_of_an_idle_socket_waits_at_once_without_polling()
    {
        var (elapsed, received) = await ReadIdleThenSendAsync(mayPoll: false);
        Assert.True(elapsed < TimeSpan.FromMilliseconds(150), $"returned after {elapsed.TotalMilliseconds:F1} ms: it polled");
        Assert.Equal(7, received);
    }

    [Fact]
    public void More_disk_requests_in_flight_than_the_limit_make_the_node_busy()
    {
        // Other tests' disk I/O can only add to the count, so only this direction is asserted.
        for (int i = 0; i <= DiskRequestsInFlight.MaxForPolling; i++)
        {
            DiskRequestsInFlight.Started();
        }
        try
        {
            Assert.False(DiskRequestsInFlight.QuietEnoughToPoll);
        }
        finally
        {
            for (int i = 0; i <= DiskRequestsInFlight.MaxForPolling; i++)
            {
                DiskRequestsInFlight.Finished();
            }
        }
    }

    /// <summary>How long ReadAsync on an idle socket took to return, and what the read got once 7 bytes were sent.</summary>
    private static async Task<(TimeSpan Elapsed, int Received)> ReadIdleThenSendAsync(bool mayPoll)
    {
        var (client, server) = await PeerTestSupport.SocketPairAsync();
        using var _ = client;
        using var __ = server;
        using var stream = new PeerReceiveStream(server, BudgetMicroseconds, () => mayPoll);
        server.Blocking = false; // as PeerConnection sets it, after the NetworkStream is made

        var buffer = new byte[64];
        var clock = Stopwatch.StartNew();
        ValueTask<int> read = stream.ReadAsync(buffer);
        TimeSpan elapsed = clock.Elapsed;
        Assert.False(read.IsCompleted, "nothing was sent, yet the read completed");
        client.Send(new byte[7]);
        int received = await read.AsTask().WaitAsync(PeerTestSupport.Patience);
        return (elapsed, received);
    }
}

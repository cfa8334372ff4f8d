using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>ko-count: a Secondary that stops completing writes is dropped, and the Primary's writes go on.</summary>
public class ReplicaKoCountTests
{
    [Fact]
    public void A_peer_that_leaves_a_write_unanswered_for_ko_count_timeouts_is_dropped_and_the_write_completes()
    {
        // timeout 1 s, ko-count 2: dropped after 2 s; pings keep flowing, so only ko-count can drop it.
        var pair = new SimReplicaPair(5, netOptions: "timeout 10; ko-count 2; ping-int 1; ping-timeout 5; connect-int 60;");
        pair.ConnectWithAlphaPrimary();
        pair.Beta.DiskLatencyMaxMs = 0;
        pair.Beta.DiskStalled = true;
        bool? outcome = null;
        pair.Alpha.Write(0, 8192, new byte[4096], ok => outcome = ok);

        Assert.True(pair.Scheduler.RunUntil(() => outcome is not null, 10_000), pair.Logs);
        Assert.True(outcome);
        Assert.True(pair.Scheduler.NowMs >= 2_000, "not dropped before ko-count × timeout");
        Assert.Contains(pair.Alpha.Log, l => l.Contains("ko-count", StringComparison.Ordinal));
        Assert.NotEqual(ConnectionState.Connected, pair.Alpha.Replica.Links[1].State);
        Assert.Equal(4096, pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1));
    }

    [Fact]
    public void A_slow_but_answering_peer_is_not_dropped()
    {
        var pair = new SimReplicaPair(6, netOptions: "timeout 10; ko-count 2; ping-int 1; ping-timeout 5;");
        pair.ConnectWithAlphaPrimary();
        pair.Beta.DiskLatencyMaxMs = 900; // under a second per write: slow, never stuck
        int done = 0;
        for (int i = 0; i < 20; i++)
        {
            pair.Alpha.Write(0, i * 4096L, new byte[4096], ok => done += ok ? 1 : 0);
        }
        Assert.True(pair.Scheduler.RunUntil(() => done == 20, 60_000), pair.Logs);
        Assert.Equal(ConnectionState.Connected, pair.Alpha.Replica.Links[1].State);
        Assert.DoesNotContain(pair.Alpha.Log, l => l.Contains("ko-count", StringComparison.Ordinal));
    }
}

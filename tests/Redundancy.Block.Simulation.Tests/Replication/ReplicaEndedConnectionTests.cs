using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Writes of a connection that ended while they were held behind a barrier whose flush had not
/// finished (Replica.EndedConnections.cs): they must not land over a write this node acknowledged
/// after the connection ended.
/// </summary>
public class ReplicaEndedConnectionTests
{
    private const long Block = 4096;

    [Fact]
    public void A_write_held_behind_a_barrier_when_the_Primary_is_lost_lands_before_the_new_Primarys_write_to_it()
    {
        var pair = new SimReplicaPair(21);
        pair.ConnectWithAlphaPrimary();
        WriteAndWait(pair, pair.Alpha, 0, Pattern(1)); // completes the epoch: the next write follows a barrier
        pair.Beta.HoldFlushes = true;
        pair.Alpha.Write(0, Block, Pattern(2), _ => { }); // held on beta behind the barrier's flush
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 50);
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Links[0].State != ConnectionState.Connected, 30_000), pair.Logs);
        Assert.Equal(StateChangeResult.Success, pair.Beta.Replica.RequestPromotion(pair.Scheduler.NowMs, 30_000, out long token));
        Assert.Equal(0, token);
        pair.Beta.Replica.SetRole(Role.Primary);

        bool written = false;
        pair.Beta.Write(0, Block, Pattern(3), ok => written = ok);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 100);
        Assert.False(written, "the new Primary's write waits for the old Primary's write to the same block");
        pair.Beta.ReleaseFlushes();
        Assert.True(pair.Scheduler.RunUntil(() => written, 5_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 100);
        Assert.Equal(Pattern(3), pair.Beta.Disks[0].Contents.Slice((int)Block, (int)Block).ToArray());
    }

    [Fact]
    public void Two_Primaries_cut_apart_a_held_peer_write_concurrent_with_a_local_one_is_not_written_over_it()
    {
        var pair = new SimReplicaPair(22, netOptions: "allow-two-primaries yes;");
        ReplicaDualPrimaryTests.ConnectBothPrimary(pair);
        WriteAndWait(pair, pair.Alpha, 0, Pattern(1));
        pair.Beta.HoldFlushes = true;
        // beta's write never reaches alpha, alpha's reaches beta and is held behind the barrier's flush:
        // the two are concurrent, and the connection ends before either node answers the other.
        pair.Network.Partition("beta", "alpha", oneWay: true);
        bool mine = false;
        pair.Beta.Write(0, Block, Pattern(3), ok => mine = ok);
        pair.Alpha.Write(0, Block, Pattern(2), _ => { });
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Links[0].State != ConnectionState.Connected && mine, 30_000), pair.Logs);
        Assert.Contains(pair.Beta.Log, l => l.Contains("1 write(s) of the ended connection overlapped writes in flight here: not written", StringComparison.Ordinal));
        pair.Beta.ReleaseFlushes();
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 200);
        Assert.Equal(Pattern(3), pair.Beta.Disks[0].Contents.Slice((int)Block, (int)Block).ToArray());
    }

    private static void WriteAndWait(SimReplicaPair pair, SimReplicaNode node, long offsetBytes, byte[] data)
    {
        bool done = false;
        node.Write(0, offsetBytes, data, ok => done = ok);
        Assert.True(pair.Scheduler.RunUntil(() => done, 5_000), pair.Logs);
    }

    private static byte[] Pattern(byte seed) => Enumerable.Range(0, (int)Block).Select(i => (byte)(seed * 31 + i)).ToArray();
}

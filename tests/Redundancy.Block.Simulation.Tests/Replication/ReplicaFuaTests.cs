namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// FUA under protocol C: a write with FUA, once acknowledged, is in the peer's durable contents and
/// survives the peer's power loss; a plain write acknowledged at the same point is only in the peer's
/// disk cache (the control that shows the FUA check can fail).
/// </summary>
public class ReplicaFuaTests
{
    private const int BlockBytes = 4096;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Protocol_C_an_acknowledged_FUA_write_survives_the_peer_losing_its_disk_cache(bool fua)
    {
        var pair = new SimReplicaPair(31);
        pair.ConnectWithAlphaPrimary();
        var data = new byte[2 * BlockBytes];
        pair.Random.Fill(data);
        const long offset = 5 * BlockBytes;
        bool? durableAtAck = null;
        pair.Alpha.Write(0, offset, data, ok =>
        {
            Assert.True(ok);
            // At the moment the client learns of the completion.
            durableAtAck = pair.Beta.Disks[0].DurableContents.Slice((int)offset, data.Length).SequenceEqual(data);
        }, fua);
        Assert.True(pair.Scheduler.RunUntil(() => durableAtAck is not null, 10_000), pair.Logs);
        Assert.True(pair.Beta.Disks[0].Contents.Slice((int)offset, data.Length).SequenceEqual(data), "protocol C: on the peer's disk at the ack");

        pair.Beta.Crash(tear: false);
        bool survived = pair.Beta.Disks[0].Contents.Slice((int)offset, data.Length).SequenceEqual(data);
        if (fua)
        {
            Assert.True(durableAtAck, "an acknowledged FUA write is durable on the peer");
            Assert.True(survived, "an acknowledged FUA write survives the peer's power loss");
        }
        else
        {
            // The simulated disk loses every unflushed write on a crash without tearing: a plain write
            // the peer has not flushed yet (no barrier since) is gone. It is in the bitmap of the
            // Primary once the connection is lost, as any write the peer did not confirm stable.
            Assert.False(durableAtAck, "a plain write is acknowledged before the peer flushes it");
            Assert.False(survived, "a plain write not yet flushed is lost with the peer's disk cache");
        }
    }
}

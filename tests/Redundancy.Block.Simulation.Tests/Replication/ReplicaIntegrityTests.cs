using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// `net { data-integrity-alg ...; }` under simulation: every Data, RsDataReply and DataReply frame
/// carries the digest of its data, the receiver checks it, and a damaged block is never written —
/// the connection drops with DRBD's "Digest integrity check FAILED".
/// </summary>
public class ReplicaIntegrityTests
{
    private const string Sha256 = "data-integrity-alg sha256;";

    [Fact]
    public void Writes_carry_the_digest_and_arrive_intact()
    {
        var pair = new SimReplicaPair(401, netOptions: Sha256);
        pair.ConnectWithAlphaPrimary();
        var data = new byte[8192];
        pair.Random.Fill(data);
        bool done = false;
        pair.Alpha.Write(0, 65536, data, ok => done = ok);
        Assert.True(pair.Scheduler.RunUntil(() => done, 10_000), pair.Logs);
        Assert.True(pair.Beta.Disks[0].Contents.Slice(65536, 8192).SequenceEqual(data), "beta holds the write");
        var (frames, payloadBytes) = pair.Alpha.Sent[MessageType.Data];
        Assert.Equal(frames * (DataMessage.Size + 32) + 8192, payloadBytes);
        Assert.DoesNotContain(pair.Beta.Log, l => l.Contains("protocol error", StringComparison.Ordinal));
    }

    [Fact]
    public void A_block_damaged_on_the_way_is_not_written_and_drops_the_connection()
    {
        var pair = new SimReplicaPair(402, netOptions: Sha256);
        pair.ConnectWithAlphaPrimary();
        var data = new byte[4096];
        pair.Random.Fill(data);
        var digest = Digest.Compute(DigestAlgorithm.Sha256, data);
        data[100] ^= 0x10; // one bit flipped after the sender digested it
        pair.DeliverDataToBeta(new DataMessage(8192, 4096, 77, 1, DataFlags.SendWriteAck, digest), data);
        Assert.Contains(pair.Beta.Log, l => l.Contains("protocol error: Digest integrity check FAILED: 16s +4096", StringComparison.Ordinal));
        Assert.True(pair.Beta.Disks[0].Contents.Slice(8192, 4096).SequenceEqual(new byte[4096]), "nothing was written");
    }

    [Fact]
    public void Data_without_the_agreed_digest_is_refused()
    {
        var pair = new SimReplicaPair(403, netOptions: Sha256);
        pair.ConnectWithAlphaPrimary();
        pair.DeliverDataToBeta(new DataMessage(0, 4096, 77, 1, DataFlags.SendWriteAck), new byte[4096]);
        Assert.Contains(pair.Beta.Log, l => l.Contains("without the agreed data-integrity-alg sha256 digest", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("")]
    [InlineData("compression lz4;")]
    public void A_resync_reply_damaged_on_the_way_is_not_written_and_the_resync_completes_after_the_reconnect(string compression)
    {
        var pair = new SimReplicaPair(404, netOptions: Sha256 + compression, options: new Infrastructure.NetworkOptions { MaxDelayMs = 2 });
        pair.ConnectWithAlphaPrimary();
        pair.Beta.Replica.Disconnect(0);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != Engine.States.ConnectionState.Connected, 10_000), pair.Logs);
        var data = new byte[64 * 1024];
        pair.Random.Fill(data);
        bool written = false;
        pair.Alpha.Write(0, 1 << 20, data, ok => written = ok);
        Assert.True(pair.Scheduler.RunUntil(() => written, 10_000), pair.Logs);

        // The first resync reply gets one bit flipped in its last byte (data, or the compressed block).
        int damaged = 0;
        pair.Alpha.Tamper = (type, frame) =>
        {
            if (type == MessageType.RsDataReply && damaged++ == 0)
            {
                frame[^1] ^= 0x01;
            }
            return frame;
        };
        pair.Beta.Replica.Connect(pair.Scheduler.NowMs);
        Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Log.Any(l => l.Contains("Digest integrity check FAILED", StringComparison.Ordinal)), 30_000), pair.Logs);
        Assert.True(pair.Scheduler.RunUntil(() => pair.InSync() && pair.Beta.Replica.Volume(0).Disk == Engine.States.DiskState.UpToDate, 60_000), pair.Logs);
        Assert.True(damaged >= 2, "the damaged range was sent again after the reconnect");
        Assert.True(pair.Beta.Disks[0].Contents.Slice(1 << 20, data.Length).SequenceEqual(data), "beta holds the intact data after the resync");
    }
}

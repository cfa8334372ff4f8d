using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// `net { data-integrity-alg ...; }` under simulation: every Data frame carries the digest of its
/// data, the receiver checks it, and a damaged block is never written — the connection drops with
/// DRBD's "Digest integrity check FAILED".
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
}

using System.Buffers;
using System.Collections.Immutable;
using System.Text;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Compression;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// `net { compression lz4; }` under simulation: with both sides configured, compressible writes and
/// resync replies cross the wire as fewer bytes, incompressible ones as they are, and the replicas
/// end identical. Compressed payloads without agreement or malformed ones drop the connection.
/// </summary>
public class ReplicaCompressionTests
{
    private const int WriteBytes = 16 << 10;
    private const int Writes = 200;
    private const string Lz4 = "compression lz4;";

    /// <summary>Text-like data: it compresses several-fold (as logs and databases do), not trivially.</summary>
    private static byte[] Compressible(int length, int seed)
    {
        var text = new StringBuilder(length + 80);
        for (int i = 0; text.Length < length; i++)
        {
            text.Append($"{seed:D4}:{i:D6} key={(i * 7919) + seed} value=status-ok owner=alpha\n");
        }
        return Encoding.ASCII.GetBytes(text.ToString(0, length));
    }

    private static byte[] Incompressible(int length, SimRandom random)
    {
        var data = new byte[length];
        random.Fill(data);
        return data;
    }

    /// <summary>Writes <see cref="Writes"/> distinct blocks on alpha, flushes, and checks both disks are identical.</summary>
    private static (long Frames, long PayloadBytes) Replicate(SimReplicaPair pair, Func<int, byte[]> block)
    {
        pair.ConnectWithAlphaPrimary();
        int done = 0;
        for (int i = 0; i < Writes; i++)
        {
            byte[] data = block(i);
            long offset = (long)i * WriteBytes;
            pair.Scheduler.After(i, () => pair.Alpha.Write(0, offset, data, ok =>
            {
                Assert.True(ok);
                done++;
            }));
        }
        Assert.True(pair.Scheduler.RunUntil(() => done == Writes, 60_000), pair.Logs);
        bool flushed = false;
        pair.Alpha.Flush(ok => flushed = ok);
        Assert.True(pair.Scheduler.RunUntil(() => flushed, 10_000), pair.Logs);
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents), "identical disks");
        Assert.True(pair.Beta.Disks[0].Contents[..(Writes * WriteBytes)].SequenceEqual(Enumerable.Range(0, Writes).SelectMany(block).ToArray()), "beta holds what alpha wrote");
        Assert.Equal(0, pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1));
        Assert.DoesNotContain(pair.Beta.Log, l => l.Contains("protocol error", StringComparison.Ordinal));
        return pair.Alpha.Sent[MessageType.Data];
    }

    private static long DataBytes((long Frames, long PayloadBytes) sent) => sent.PayloadBytes - (sent.Frames * DataMessage.Size);

    [Fact]
    public void Compressible_writes_cross_the_wire_smaller_and_arrive_intact()
    {
        var pair = new SimReplicaPair(301, netOptions: Lz4);
        var compressed = Replicate(pair, i => Compressible(WriteBytes, i));
        Assert.Contains(pair.Beta.Log, l => l.EndsWith("LZ4 compression agreed with the peer", StringComparison.Ordinal));
        var plain = Replicate(new SimReplicaPair(301), i => Compressible(WriteBytes, i));
        long raw = (long)Writes * WriteBytes;
        Assert.Equal(raw, DataBytes(plain));
        Assert.True(DataBytes(compressed) < raw / 3, $"compressed {DataBytes(compressed)} bytes of {raw}");
        Assert.Equal(plain.Frames, compressed.Frames);
    }

    [Fact]
    public void Incompressible_writes_are_sent_as_they_are()
    {
        var random = new SimRandom(302);
        byte[][] blocks = [.. Enumerable.Range(0, Writes).Select(_ => Incompressible(WriteBytes, random))];
        var sent = Replicate(new SimReplicaPair(302, netOptions: Lz4), i => blocks[i]);
        Assert.Equal((long)Writes * WriteBytes, DataBytes(sent));
    }

    [Fact]
    public void Only_one_side_configured_connects_and_sends_uncompressed()
    {
        // compression is negotiated, not compared: beta's default "none" means nobody compresses.
        var pair = new SimReplicaPair(303, netOptions: Lz4, betaNetOptions: "");
        Assert.Equal(CompressionAlgorithm.Lz4, pair.Alpha.Replica.Links[1].Settings.Protocol.Compression);
        Assert.Equal(CompressionAlgorithm.None, pair.Beta.Replica.Links[0].Settings.Protocol.Compression);
        var sent = Replicate(pair, i => Compressible(WriteBytes, i));
        Assert.Equal((long)Writes * WriteBytes, DataBytes(sent));
        Assert.Equal(FeatureFlags.None, pair.Alpha.Replica.Links[1].AgreedFeatures & FeatureFlags.Lz4Compression);
        Assert.Contains(pair.Alpha.Log, l => l.EndsWith("compression lz4 is not configured on the peer: data is sent uncompressed", StringComparison.Ordinal));
    }

    [Fact]
    public void A_full_resync_of_compressible_data_sends_compressed_replies()
    {
        var pair = new SimReplicaPair(305, "C", new NetworkOptions { MaxDelayMs = 3 }, netOptions: Lz4,
            resyncRate: new ResyncRateSettings { CPlanAheadMs = 0, ResyncRateKibPerSec = 400 * 1024 },
            initial: node => node == "alpha"
                ? (new GenerationIds(0x7400_0000_0000_0001, ImmutableArray.Create(GenerationIds.JustCreated), ImmutableArray<ulong>.Empty), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate)
                : (new GenerationIds(GenerationIds.JustCreated, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty), MetadataFlags.None, DiskState.Inconsistent));
        // The first half compresses, the second half is random: both kinds of reply are exercised.
        var contents = new byte[SimReplicaPair.DiskBytes];
        Compressible(contents.Length / 2, 7).CopyTo(contents, 0);
        pair.Random.Fill(contents.AsSpan(contents.Length / 2));
        pair.Alpha.Disks[0].WriteAsync(0, contents, fua: true);

        pair.ConnectWithAlphaPrimary();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 120_000), pair.Logs);
        Assert.True(pair.Beta.Disks[0].Contents.SequenceEqual(contents), "beta holds alpha's data after the resync");
        Assert.Equal(DiskState.UpToDate, pair.Beta.Replica.Volume(0).Disk);
        var replies = pair.Alpha.Sent[MessageType.RsDataReply];
        long dataBytes = replies.PayloadBytes - (replies.Frames * RsDataReplyMessage.Size);
        Assert.InRange(dataBytes, SimReplicaPair.DiskBytes / 2, SimReplicaPair.DiskBytes * 3 / 4);
    }

    [Fact]
    public void Compressed_data_without_agreement_is_a_protocol_error()
    {
        var pair = new SimReplicaPair(306);
        pair.ConnectWithAlphaPrimary();
        byte[] data = Compressible(4096, 1);
        var block = new byte[4096];
        Assert.True(Lz4Block.TryCompress(data, block, out int written));
        pair.DeliverDataToBeta(new DataMessage(0, 4096, 77, 1, DataFlags.Compressed | DataFlags.SendWriteAck), block[..written]);
        Assert.Contains(pair.Beta.Log, l => l.Contains("protocol error: a COMPRESSED payload, but LZ4 compression was not agreed", StringComparison.Ordinal));
        Assert.True(pair.Beta.Disks[0].Contents[..4096].SequenceEqual(new byte[4096]), "nothing was written");
    }

    [Fact]
    public void A_malformed_compressed_block_is_a_protocol_error_and_writes_nothing()
    {
        var pair = new SimReplicaPair(307, netOptions: Lz4);
        pair.ConnectWithAlphaPrimary();
        Assert.NotEqual(FeatureFlags.None, pair.Beta.Replica.Links[0].AgreedFeatures & FeatureFlags.Lz4Compression);
        // 1 literal, then a match at offset 2 (before the start of the output); 1024 bytes declared,
        // which 10 bytes of LZ4 could decode to (more is refused before any buffer is rented).
        pair.DeliverDataToBeta(new DataMessage(0, 1024, 77, 1, DataFlags.Compressed | DataFlags.SendWriteAck), [0x10, (byte)'a', 0x02, 0x00, 0x50, 1, 2, 3, 4, 5]);
        Assert.Contains(pair.Beta.Log, l => l.Contains("protocol error: a malformed LZ4 payload: the LZ4 block (10 bytes) is malformed", StringComparison.Ordinal));
        Assert.True(pair.Beta.Disks[0].Contents[..4096].SequenceEqual(new byte[4096]), "nothing was written");
    }
}

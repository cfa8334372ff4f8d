using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// TRIM and WRITE_ZEROES are replicated (DRBD's P_DATA with DP_DISCARD / DP_ZEROES): the peer's disk
/// reads zero exactly where the Primary's does and keeps the pattern elsewhere; when the peer missed
/// them, the bitmap resync brings it the zeroes.
/// </summary>
public class ReplicaTrimZeroesTests
{
    private const int BlockBytes = 4096;
    private const int PatternBlocks = 64;

    /// <summary>Sub-ranges zeroed: 4 KiB-aligned ones, and sector-aligned ones inside and across 4 KiB blocks.</summary>
    private static readonly (long Offset, long Length, bool Trim)[] Ranges =
    [
        (4 * BlockBytes, 3 * BlockBytes, true),
        (12 * BlockBytes, 2 * BlockBytes, false),
        (20 * BlockBytes + 512, 1536, true),
        (30 * BlockBytes + 3584, 1024, false),
        (40 * BlockBytes + 1024, 9 * 512 + BlockBytes, true),
    ];

    [Theory]
    [InlineData("A")]
    [InlineData("B")]
    [InlineData("C")]
    public void Trim_and_write_zeroes_read_zero_on_the_peer_exactly_where_the_Primary_zeroed(string protocol)
    {
        var pair = new SimReplicaPair(21, protocol);
        pair.ConnectWithAlphaPrimary();
        byte[] pattern = WritePattern(pair);
        ZeroRanges(pair);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 1_000); // protocol A/B: the peer's disk writes land after the ack

        byte[] expected = Expected(pattern);
        Assert.True(pair.Alpha.Disks[0].Contents.Slice(0, expected.Length).SequenceEqual(expected), "the Primary zeroed exactly the ranges");
        Assert.True(pair.Beta.Disks[0].Contents.Slice(0, expected.Length).SequenceEqual(expected), $"protocol {protocol}: the peer zeroed exactly the ranges\n{pair.Logs}");
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents));
        Assert.True(pair.InSync(), pair.Logs);
        Assert.Equal(0, pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1));
    }

    [Fact]
    public void Trim_and_write_zeroes_the_peer_missed_reach_it_by_the_bitmap_resync()
    {
        var pair = new SimReplicaPair(22);
        pair.ConnectWithAlphaPrimary();
        byte[] pattern = WritePattern(pair);
        pair.Network.Partition("alpha", "beta");
        Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected
            && pair.Beta.Replica.Links[0].State != ConnectionState.Connected, 30_000), pair.Logs);
        ZeroRanges(pair);
        byte[] expected = Expected(pattern);
        Assert.True(pair.Beta.Disks[0].Contents.Slice(0, pattern.Length).SequenceEqual(pattern), "the peer missed the zeroing");
        long touchedBlocks = Ranges.SelectMany(r => Enumerable.Range(0, (int)((r.Offset + r.Length - 1) / BlockBytes - r.Offset / BlockBytes + 1))
            .Select(i => r.Offset / BlockBytes + i)).Distinct().Count();
        Assert.Equal(touchedBlocks * BlockBytes, pair.Alpha.Replica.Volume(0).OutOfSyncBytes(1));

        pair.Network.HealAll();
        Assert.True(pair.Scheduler.RunUntil(pair.InSync, 60_000), pair.Logs);
        Assert.True(pair.Beta.Disks[0].Contents.Slice(0, expected.Length).SequenceEqual(expected), $"the resync brought the zeroes\n{pair.Logs}");
        Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents));
        var replies = pair.Alpha.Sent[MessageType.RsDataReply];
        Assert.Equal(touchedBlocks * BlockBytes, replies.PayloadBytes - replies.Frames * RsDataReplyMessage.Size); // a bitmap resync: only those blocks
    }

    private static byte[] WritePattern(SimReplicaPair pair)
    {
        var pattern = new byte[PatternBlocks * BlockBytes];
        pair.Random.Fill(pattern);
        Array.Fill<byte>(pattern, 0xFF, 0, 16); // no block of the pattern is zero by chance
        for (int b = 0; b < PatternBlocks; b++)
        {
            pattern[b * BlockBytes] |= 1;
        }
        int done = 0;
        pair.Alpha.Write(0, 0, pattern, ok => done += ok ? 1 : 100);
        Assert.True(pair.Scheduler.RunUntil(() => done == 1, 10_000), pair.Logs);
        pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 500);
        Assert.True(pair.Beta.Disks[0].Contents.Slice(0, pattern.Length).SequenceEqual(pattern), "the pattern is on the peer");
        return pattern;
    }

    private static void ZeroRanges(SimReplicaPair pair)
    {
        int done = 0;
        foreach (var (offset, length, trim) in Ranges)
        {
            pair.Alpha.Zero(0, offset, length, trim, ok => done += ok ? 1 : 100);
        }
        Assert.True(pair.Scheduler.RunUntil(() => done == Ranges.Length, 10_000), pair.Logs);
        Assert.Equal(Ranges.Length, done);
    }

    private static byte[] Expected(byte[] pattern)
    {
        byte[] expected = (byte[])pattern.Clone();
        foreach (var (offset, length, _) in Ranges)
        {
            Array.Clear(expected, (int)offset, (int)length);
        }
        return expected;
    }
}

using System.Buffers.Binary;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Metadata;

public class SuperblockTests
{
    internal static Superblock Sample() => new()
    {
        Sequence = 41,
        NodeId = 2,
        UsableSizeBytes = 1L << 30,
        AlExtents = 3833,
        AlStripes = 2,
        AlStripeSize4k = 4,
        Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.AlClean,
        CurrentUuid = 0x1234_5678_9ABC_DEF1,
        DeviceUuid = 0xDEAD_BEEF_0000_0001,
        CreationTime = 1_700_000_000,
        Peers =
        [
            new PeerSlot(0, 0xAAAA_0000_0000_0002, PeerSlotFlags.Connected | PeerSlotFlags.DeviceSeen, 0),
            new PeerSlot(5, 0, PeerSlotFlags.Outdated, 2),
            PeerSlot.Unused,
        ],
        HistoryUuids = [0x1111, 0x2222, 0x3333],
    };

    private static byte[] Encode(Superblock sb)
    {
        byte[] block = new byte[Superblock.SizeBytes];
        sb.Write(block);
        return block;
    }

    /// <summary>Re-seals a block after tampering, so the field check (not the CRC) must catch it.</summary>
    private static void Reseal(byte[] block) =>
        BinaryPrimitives.WriteUInt32BigEndian(block.AsSpan(16), Crc32C.ComputeWithZeroedField(block, 16));

    [Fact]
    public void Round_trips_every_field()
    {
        Superblock sb = Sample();
        byte[] block = Encode(sb);
        Assert.Equal(Superblock.Magic, BinaryPrimitives.ReadUInt32BigEndian(block));
        Assert.True(Superblock.TryRead(block, out var back, out string error), error);
        Assert.Equal(sb, back);
        Assert.Equal(3, back.PeerSlots);
        Assert.Equal(sb.HistoryUuids.ToArray(), back.HistoryUuids.ToArray());
        Assert.Equal(sb.Peers[1], back.Peers[1]);
    }

    [Fact]
    public void Any_flipped_bit_is_rejected_by_the_checksum()
    {
        byte[] good = Encode(Sample());
        foreach (int offset in new[] { 8, 20, 30, 48, 60, 200, 1200, 4095 })
        {
            byte[] block = (byte[])good.Clone();
            block[offset] ^= 0x10;
            Assert.False(Superblock.TryRead(block, out _, out string error));
            Assert.Contains("checksum", error);
        }
    }

    [Fact]
    public void Magic_version_and_length_are_checked()
    {
        byte[] block = Encode(Sample());
        Assert.False(Superblock.TryRead(block.AsSpan(0, 100), out _, out string error));
        Assert.Contains("4096", error);
        Assert.False(Superblock.TryRead(new byte[4096], out _, out error));
        Assert.Contains("magic", error);
        block[5] = 2;
        Reseal(block);
        Assert.False(Superblock.TryRead(block, out _, out error));
        Assert.Contains("version 2", error);
    }

    public static TheoryData<string, int, uint, string> FieldCases() => new()
    {
        { "node-id", 20, 32, "node-id 32" },
        { "node-id negative", 20, uint.MaxValue, "node-id -1" },
        { "bytes per bit", 32, 512, "bm-byte-per-bit" },
        { "al-extents low", 36, 66, "al-extents 66" },
        { "al-extents high", 36, 65535, "al-extents" },
        { "al stripes", 40, 0, "activity log geometry" },
        { "al stripe size", 44, 100000, "activity log geometry" },
        { "flags", 48, 1 << 20, "unknown flags" },
        { "peer slots zero", 52, 0, "peer slot count 0" },
        { "peer slots many", 52, 33, "peer slot count 33" },
        { "history count", 80, 33, "history UUID count 33" },
        { "peer node-id", 128, 40, "peer[0] node-id 40" },
        { "peer is us", 128, 2, "not our own" },
        { "peer flags", 132, 1 << 9, "peer[0] unknown flags" },
        { "peer bitmap-index", 144, 3, "bitmap-index 3" },
        { "peer duplicate bitmap-index", 144 + 32, 0, "used twice" },
        { "peer duplicate node", 128 + 32, 0, "appears twice" },
        { "free peer with uuid", 128 + 64 + 12, 7, "free but has" },
        { "unused peer entry", 128 + (3 * 32), 1, "unused peer or history" },
        { "zero history entry", 1152 + 12, 0, "zero entry" },
        { "unused history entry", 1152 + (3 * 8), 9, "unused peer or history" },
    };

    [Theory]
    [MemberData(nameof(FieldCases))]
    public void Every_field_range_is_validated(string field, int offset, uint value, string expected)
    {
        byte[] block = Encode(Sample());
        BinaryPrimitives.WriteUInt32BigEndian(block.AsSpan(offset), value);
        Reseal(block);
        Assert.False(Superblock.TryRead(block, out _, out string error), field);
        Assert.Contains(expected, error);
    }

    [Theory]
    [InlineData(0L, "usable size 0")]
    [InlineData(4097L, "usable size 4097")]
    [InlineData(-4096L, "usable size -4096")]
    [InlineData(1L << 60, "usable size")]
    public void Usable_size_is_validated(long size, string expected)
    {
        byte[] block = Encode(Sample());
        BinaryPrimitives.WriteInt64BigEndian(block.AsSpan(24), size);
        Reseal(block);
        Assert.False(Superblock.TryRead(block, out _, out string error));
        Assert.Contains(expected, error);
    }

    [Fact]
    public void Al_extents_are_bounded_by_the_ring_size()
    {
        Assert.Equal(7 * ActivityLogTransaction.ContextPerTransaction, Superblock.MaxAlExtentsFor(8));
        Assert.Equal(65534, Superblock.MaxAlExtentsFor(1000));
        Assert.NotNull((Sample() with { AlStripes = 1, AlStripeSize4k = 2, AlExtents = 1000 }).ValidationError());
        Assert.Null((Sample() with { AlStripes = 1, AlStripeSize4k = 2, AlExtents = 920 }).ValidationError());
    }

    [Fact]
    public void Writing_an_invalid_superblock_is_a_bug()
    {
        Assert.Throws<InvariantViolationException>(() => Encode(Sample() with { NodeId = 99 }));
    }

    [Fact]
    public void Generation_ids_come_from_and_go_back_into_the_superblock()
    {
        Superblock sb = Sample();
        GenerationIds ids = sb.GenerationIds;
        Assert.Equal(sb.CurrentUuid, ids.Current);
        Assert.Equal([0xAAAA_0000_0000_0002UL, 0UL, 0UL], ids.Bitmap.ToArray());
        GenerationIds next = ids.NewCurrentUuid(0x5000, primary: true, [false, true, false]);
        Superblock updated = sb.WithGenerationIds(next);
        Assert.Equal(0x5001UL, updated.CurrentUuid);
        Assert.Equal(sb.CurrentUuid, updated.Peers[1].BitmapUuid);
        Assert.Equal(next, updated.GenerationIds);
        Assert.Equal(1, updated.FindPeerSlot(5));
        Assert.Equal(-1, updated.FindPeerSlot(7));
    }
}

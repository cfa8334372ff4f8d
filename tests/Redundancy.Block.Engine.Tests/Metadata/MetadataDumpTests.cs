using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Metadata;

public class MetadataDumpTests
{
    [Fact]
    public async Task Dump_shows_every_field_and_a_folded_bitmap()
    {
        var (_, store, fresh) = MetadataStoreTests.Formatted();
        Superblock sb = await store.WriteAsync(fresh with
        {
            Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate,
            CurrentUuid = 0x1234_5678_9ABC_DEF0,
            HistoryUuids = [0x1111, 0x2222],
            Peers = [new PeerSlot(1, 0xABCD, PeerSlotFlags.Connected, 0), PeerSlot.Unused],
        });
        var bitmap = new QuickSyncBitmap(store.Layout.UsableSizeBytes);
        bitmap.SetBits(0, 3);
        bitmap.SetBits(64 * 10, 64);
        var slots = Enumerable.Repeat(ActivityLogTransaction.FreeExtent, sb.AlExtents).ToArray();
        slots[0] = 7;
        await store.WriteActivityLogTransactionAsync(ActivityLogTransaction.Create(0, [new(0, 7)], slots));
        var al = await store.ReadActivityLogAsync(sb);

        string text = MetadataDump.Format(sb, store.Layout, [bitmap, new QuickSyncBitmap(store.Layout.UsableSizeBytes)], al);

        Assert.StartsWith("# Redundancy.Block metadata, format v1\n", text);
        Assert.Contains("version \"rb-v1\";\n", text);
        Assert.Contains("max-peers 2;\n", text);
        Assert.Contains("node-id 0;\n", text);
        Assert.Contains("current-uuid 0x123456789ABCDEF0; flags 0x00000011; # Consistent WasUpToDate\n", text);
        Assert.Contains("device-uuid 0x000000000000D0D0;\n", text);
        Assert.Contains("peer[0] { node-id 1; bitmap-uuid 0x000000000000ABCD; flags 0x00000001; bitmap-index 0; } # Connected\n", text);
        Assert.Contains("peer[1] { node-id -1; bitmap-uuid 0x0000000000000000; flags 0x00000000; bitmap-index -1; } # free\n", text);
        Assert.Contains("history-uuids 0x0000000000001111 0x0000000000002222;\n", text);
        Assert.Contains($"la-size-sect {store.Layout.UsableSizeBytes / 512};\n", text);
        Assert.Contains("bm-byte-per-bit 4096;\n", text);
        Assert.Contains("al-extents 1237;\n", text);
        Assert.Contains($"# layout: internal; superblock at {store.Layout.SuperblockAreaOffsetBytes}", text);
        Assert.Contains($"data 0..{store.Layout.UsableSizeBytes}", text);
        Assert.Contains("# activity log: last transaction 0, 1 valid, 1 active extent(s): 7\n", text);
        Assert.Contains("bitmap[0] {\n   # 67 bits set, 268 KiB out of sync\n", text);
        long words = (bitmap.BitCount + 63) / 64;
        Assert.Contains($"   0x0000000000000007;\n   0x0000000000000000; 9 times;\n   0xFFFFFFFFFFFFFFFF;\n   0x0000000000000000; {words - 11} times;\n}}\n", text);
        Assert.Contains($"bitmap[1] {{\n   # 0 bits set, 0 KiB out of sync\n   0x0000000000000000; {words} times;\n}}\n", text);
    }
}

using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Metadata;

public class MetadataStoreTests
{
    private const long DiskBytes = 64L << 20;

    internal static (MemoryDevice Device, MetadataStore Store, Superblock Fresh) Formatted(int peerSlots = 2, long diskBytes = DiskBytes)
    {
        var device = new MemoryDevice(diskBytes);
        Assert.True(MetadataLayout.TryCreateInternal(device.SizeBytes, peerSlots, out var layout, out string error), error);
        var options = new MetadataFormatOptions { NodeId = 0, PeerNodeIds = [1], DeviceUuid = 0xD0D0, CreationTime = 42 };
        Assert.True(Superblock.TryCreateFresh(layout, options, out var fresh, out error), error);
        var store = new MetadataStore(device, layout);
        Superblock written = store.FormatAsync(fresh).AsTask().GetAwaiter().GetResult();
        return (device, store, written);
    }

    [Fact]
    public async Task Format_writes_fresh_metadata_both_copies_zeroed_al_and_bitmaps()
    {
        var device = new MemoryDevice(DiskBytes);
        device.Data.Fill(0x5A); // old junk everywhere
        Assert.True(MetadataLayout.TryCreateInternal(device.SizeBytes, 2, out var layout, out _));
        var options = new MetadataFormatOptions { NodeId = 3, PeerNodeIds = [1], DeviceUuid = 0xD0D0, CreationTime = 42 };
        Assert.True(Superblock.TryCreateFresh(layout, options, out var fresh, out _));
        var store = new MetadataStore(device, layout);
        await store.FormatAsync(fresh);

        var result = await new MetadataStore(device, layout).ReadAsync();
        Assert.True(result.Success, result.Error);
        Superblock sb = result.Superblock;
        Assert.Equal(GenerationIds.JustCreated, sb.CurrentUuid);
        Assert.False(sb.Flags.HasFlag(MetadataFlags.Consistent));
        Assert.Equal(3, sb.NodeId);
        Assert.Equal(layout.UsableSizeBytes, sb.UsableSizeBytes);
        Assert.Equal(new PeerSlot(1, 0, PeerSlotFlags.None, 0), sb.Peers[0]);
        Assert.True(sb.Peers[1].IsFree);
        Assert.Empty(sb.HistoryUuids);
        Assert.All(result.CopyErrors, Assert.Null);
        Assert.False(device.Data.Slice((int)layout.ActivityLogOffsetBytes, (int)layout.ActivityLogSizeBytes).ContainsAnyExcept((byte)0));
        Assert.False(device.Data.Slice((int)layout.BitmapOffsetBytes, (int)layout.BitmapSizeBytes).ContainsAnyExcept((byte)0));
        Assert.True(device.Data[..(int)layout.UsableSizeBytes].IndexOfAnyExcept((byte)0x5A) < 0); // data untouched
        var al = await store.ReadActivityLogAsync(sb);
        Assert.Null(al.LastTransactionNumber);
        Assert.Empty(al.Problems);
    }

    [Fact]
    public void Fresh_superblock_rejects_too_many_peers_and_bad_node_ids()
    {
        Assert.True(MetadataLayout.TryCreateInternal(DiskBytes, 1, out var layout, out _));
        Assert.False(Superblock.TryCreateFresh(layout, new MetadataFormatOptions { NodeId = 0, PeerNodeIds = [1, 2] }, out _, out string error));
        Assert.Contains("2 peer(s) do not fit in 1 peer slot(s)", error);
        Assert.False(Superblock.TryCreateFresh(layout, new MetadataFormatOptions { NodeId = 40, PeerNodeIds = [1] }, out _, out error));
        Assert.Contains("node-id 40", error);
        Assert.False(Superblock.TryCreateFresh(layout, new MetadataFormatOptions { NodeId = 1, PeerNodeIds = [1] }, out _, out error));
        Assert.Contains("not our own", error);
    }

    [Fact]
    public async Task Writes_alternate_between_copies_with_rising_sequence()
    {
        var (device, store, fresh) = Formatted();
        Assert.Equal(2UL, fresh.Sequence);
        Superblock a = await store.WriteAsync(fresh with { Flags = MetadataFlags.Consistent });
        Superblock b = await store.WriteAsync(a with { Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate });
        Assert.Equal(3UL, a.Sequence);
        Assert.Equal(4UL, b.Sequence);
        Assert.True(Superblock.TryRead(device.Data.Slice((int)store.Layout.SuperblockOffsetBytes(0), 4096), out var copy0, out _));
        Assert.True(Superblock.TryRead(device.Data.Slice((int)store.Layout.SuperblockOffsetBytes(1), 4096), out var copy1, out _));
        Assert.Equal(a, copy0);
        Assert.Equal(b, copy1);
        var result = await new MetadataStore(device, store.Layout).ReadAsync();
        Assert.Equal(b, result.Superblock);
        Assert.Equal(1, result.Copy);
    }

    [Fact]
    public async Task A_fresh_store_continues_the_sequence_found_on_disk()
    {
        var (device, store, fresh) = Formatted();
        await store.WriteAsync(fresh);
        var reopened = new MetadataStore(device, store.Layout);
        Superblock written = await reopened.WriteAsync(fresh with { CurrentUuid = 0x77 }); // no explicit read first
        Assert.Equal(4UL, written.Sequence);
        Assert.Equal(written, (await reopened.ReadAsync()).Superblock);
    }

    [Fact]
    public async Task One_corrupt_copy_is_survived_and_overwritten_next()
    {
        var (device, store, fresh) = Formatted();
        int newer = (int)store.Layout.SuperblockOffsetBytes(1);
        device.Data[newer + 100] ^= 1;
        var reader = new MetadataStore(device, store.Layout);
        var result = await reader.ReadAsync();
        Assert.True(result.Success);
        Assert.Equal(1UL, result.Superblock.Sequence);
        Assert.Contains("checksum", result.CopyErrors[1]);
        Superblock written = await reader.WriteAsync(result.Superblock with { Flags = MetadataFlags.Consistent });
        Assert.Equal(2UL, written.Sequence);
        Assert.True(Superblock.TryRead(device.Data.Slice(newer, 4096), out var repaired, out _)); // went to the bad copy
        Assert.Equal(written, repaired);
        Assert.Equal(fresh.NodeId, repaired.NodeId);
    }

    [Fact]
    public async Task Both_copies_invalid_is_a_clear_error()
    {
        var (device, store, _) = Formatted();
        device.Data[(int)store.Layout.SuperblockOffsetBytes(0)] ^= 0xFF;
        device.Data[(int)store.Layout.SuperblockOffsetBytes(1) + 300] ^= 0xFF;
        var result = await store.ReadAsync();
        Assert.False(result.Success);
        Assert.Null(result.Superblock);
        Assert.Contains("no valid metadata", result.Error);
        Assert.Contains("copy 0: bad magic", result.Error);
        Assert.Contains("copy 1: checksum mismatch", result.Error);
    }

    [Fact]
    public async Task Open_with_both_copies_invalid_says_so_once_with_each_copy_error()
    {
        var (device, store, _) = Formatted();
        device.Data[(int)store.Layout.SuperblockOffsetBytes(0) + 9] ^= 0xFF;
        device.Data[(int)store.Layout.SuperblockOffsetBytes(1) + 4000] ^= 0xFF;
        var opened = await MetadataStore.OpenAsync(device, isInternal: true, device.SizeBytes);
        Assert.Null(opened.Store);
        Assert.True(opened.NoMetadata);
        Assert.StartsWith("no valid metadata: copy 0: checksum mismatch", opened.Error);
        Assert.Contains("; copy 1: checksum mismatch", opened.Error);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(opened.Error!, "no valid metadata"));
        var tooSmall = await MetadataStore.OpenAsync(new MemoryDevice(4096), isInternal: true, 4096);
        Assert.StartsWith("no valid metadata: device of 4096 bytes cannot hold metadata", tooSmall.Error);
    }

    [Fact]
    public async Task Both_valid_the_higher_sequence_wins_whichever_copy_holds_it()
    {
        var (device, store, fresh) = Formatted();
        byte[] block = new byte[4096];
        (fresh with { Sequence = 100, CurrentUuid = 0x100 }).Write(block);
        block.CopyTo(device.Data[(int)store.Layout.SuperblockOffsetBytes(0)..]);
        (fresh with { Sequence = 99, CurrentUuid = 0x99 }).Write(block);
        block.CopyTo(device.Data[(int)store.Layout.SuperblockOffsetBytes(1)..]);
        var result = await store.ReadAsync();
        Assert.Equal(0x100UL, result.Superblock!.CurrentUuid);
        Assert.Equal(0, result.Copy);
        Superblock next = await store.WriteAsync(result.Superblock);
        Assert.Equal(101UL, next.Sequence); // over copy 1, the older one
        Assert.True(Superblock.TryRead(device.Data.Slice((int)store.Layout.SuperblockOffsetBytes(1), 4096), out var copy1, out _));
        Assert.Equal(next, copy1);
    }

    [Fact]
    public async Task Torn_superblock_write_at_every_byte_leaves_old_or_new()
    {
        var (device, store, fresh) = Formatted();
        Superblock old = await store.WriteAsync(fresh with { Flags = MetadataFlags.Consistent, CurrentUuid = 0x1111_2222_3333_4444 });
        // The next write goes to the older copy (copy 1, sequence 2) with sequence 4.
        Superblock updated = old with
        {
            Sequence = old.Sequence + 1,
            Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.PrimaryInd,
            CurrentUuid = 0x9999_8888_7777_6665,
            HistoryUuids = [0x1111_2222_3333_4444],
            Peers = [new PeerSlot(1, 0x1111_2222_3333_4444, PeerSlotFlags.Outdated, 0), PeerSlot.Unused],
        };
        byte[] newBytes = new byte[4096];
        updated.Write(newBytes);
        int target = (int)store.Layout.SuperblockOffsetBytes(1);
        byte[] before = device.Data.Slice(target, 4096).ToArray();
        int lastDiff = 4095;
        while (newBytes[lastDiff] == before[lastDiff])
        {
            lastDiff--;
        }

        int sawOld = 0, sawNew = 0;
        for (int prefix = 0; prefix <= 4096; prefix++)
        {
            before.CopyTo(device.Data[target..]);
            newBytes.AsSpan(0, prefix).CopyTo(device.Data[target..]);
            var result = await new MetadataStore(device, store.Layout).ReadAsync();
            Assert.True(result.Success, $"prefix {prefix}: {result.Error}");
            // Only a write that reached every differing byte is the new copy; anything less is the old one.
            Assert.Equal(prefix > lastDiff ? updated : old, result.Superblock);
            if (prefix > lastDiff)
            {
                sawNew++;
            }
            else
            {
                sawOld++;
            }
        }

        Assert.Equal(lastDiff + 1, sawOld);
        Assert.True(sawOld > 1000 && sawNew > 1000, $"old {sawOld}, new {sawNew}");
    }

    [Fact]
    public async Task Read_refuses_metadata_that_does_not_fit_the_layout()
    {
        var (device, store, _) = Formatted(peerSlots: 2);
        Assert.True(MetadataLayout.TryCreateInternal(device.SizeBytes, 3, out var other, out _));
        var result = await new MetadataStore(device, other).ReadAsync();
        Assert.False(result.Success);
        Assert.Contains("2 peer slot(s)", result.Error);

        var probe = await MetadataStore.ProbeAsync(device, isInternal: true);
        Assert.True(probe.Success);
        Assert.True(MetadataLayout.TryFromSuperblock(probe.Superblock, true, device.SizeBytes, device.SizeBytes, out var derived, out _));
        Assert.Equal(store.Layout, derived);
        Assert.False((await MetadataStore.ProbeAsync(device, isInternal: false)).Success);
        Assert.False(MetadataLayout.TryFromSuperblock(probe.Superblock, true, device.SizeBytes / 2, device.SizeBytes / 2, out _, out string error));
        Assert.Contains("disk shrank", error);
    }

    [Fact]
    public async Task External_metadata_round_trips_on_its_own_device()
    {
        var meta = new MemoryDevice(1L << 20);
        Assert.True(MetadataLayout.TryCreateExternal(DiskBytes, meta.SizeBytes, 1, out var layout, out _));
        Assert.True(Superblock.TryCreateFresh(layout, new MetadataFormatOptions { NodeId = 1, PeerNodeIds = [0] }, out var fresh, out _));
        var store = new MetadataStore(meta, layout);
        await store.FormatAsync(fresh);
        Superblock written = await store.WriteAsync(fresh with { Flags = MetadataFlags.Consistent });
        var probe = await MetadataStore.ProbeAsync(meta, isInternal: false);
        Assert.Equal(written, probe.Superblock);
        Assert.Equal("Redundancy.Block metadata", FilesystemSignature.Detect(meta.Data[..8192]));
    }

    [Fact]
    public async Task Bitmap_slots_round_trip_whole_and_by_range()
    {
        var (device, store, _) = Formatted(diskBytes: 256L << 20); // 2 bitmap pages per slot
        Assert.Equal(8192, store.Layout.BitmapSlotSizeBytes);
        var bitmap = new QuickSyncBitmap(store.Layout.UsableSizeBytes);
        bitmap.SetRange(0, 4096);
        bitmap.SetRange(5L << 20, 1L << 20);
        bitmap.SetBits(bitmap.BitCount - 1, 1);
        await store.WriteBitmapAsync(1, bitmap);
        var back = await store.ReadBitmapAsync(1);
        Assert.Equal(bitmap.Words.ToArray(), back.Words.ToArray());
        Assert.Equal(bitmap.SetBitCount, back.SetBitCount);
        Assert.Equal(0, (await store.ReadBitmapAsync(0)).SetBitCount); // other slot untouched

        int writesBefore = device.Writes;
        bitmap.SetBits(40_000, 3);  // page 1 of the slot
        bitmap.SetBits(200, 1);     // page 0, but not written by the ranged call below
        await store.WriteBitmapBitsAsync(1, bitmap, 40_000, 3);
        Assert.Equal(writesBefore + 1, device.Writes);
        back = await store.ReadBitmapAsync(1);
        Assert.True(back.IsSet(40_001));
        Assert.False(back.IsSet(200));
    }

    [Fact]
    public async Task Surplus_bits_past_the_end_are_dropped_on_read()
    {
        var (device, store, _) = Formatted();
        long bits = store.Layout.BitmapBits;
        long lastByte = store.Layout.BitmapSlotOffsetBytes(0) + store.Layout.BitmapSlotSizeBytes - 1;
        device.Data[(int)lastByte] = 0xFF;
        var bitmap = await store.ReadBitmapAsync(0);
        Assert.True(bits < (store.Layout.BitmapSlotSizeBytes - 1) * 8, "the last slot byte lies past the data");
        Assert.Equal(0, bitmap.SetBitCount);
        device.Data[(int)(store.Layout.BitmapSlotOffsetBytes(0) + ((bits - 1) / 8))] = 0xFF; // byte holding the last bit
        bitmap = await store.ReadBitmapAsync(0);
        Assert.True(bitmap.IsSet(bits - 1));
        Assert.Equal(((bits - 1) % 8) + 1, bitmap.SetBitCount);
    }
}

using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Metadata;

public class GenerationIdsTests
{
    [Fact]
    public void New_current_moves_old_current_into_disconnected_empty_bitmap_slots()
    {
        var ids = new GenerationIds(0xA0, [0, 0x55, 0], []);
        GenerationIds next = ids.NewCurrentUuid(0xB1, primary: true, [true, true, false]);
        Assert.Equal(0xB1UL, next.Current); // primary bit set
        Assert.Equal([0xA0UL, 0x55UL, 0UL], next.Bitmap.ToArray()); // slot 1 keeps its older bitmap UUID
        Assert.Empty(next.History.ToArray());
    }

    [Fact]
    public void New_current_with_every_peer_connected_pushes_old_current_to_history()
    {
        var ids = new GenerationIds(0xA0, [0], [0x10, 0x20]);
        GenerationIds next = ids.NewCurrentUuid(0xC1, primary: false, [false]);
        Assert.Equal(0xC0UL, next.Current); // secondary: primary bit clear
        Assert.Equal([0UL], next.Bitmap.ToArray());
        Assert.Equal([0xA0UL, 0x10UL, 0x20UL], next.History.ToArray());
    }

    [Fact]
    public void Reserved_values_are_never_made_current()
    {
        var ids = new GenerationIds(0xA0, [0], []);
        Assert.NotEqual(GenerationIds.JustCreated, ids.NewCurrentUuid(GenerationIds.JustCreated, false, [false]).Current);
        Assert.NotEqual(0UL, ids.NewCurrentUuid(1, false, [false]).Current);
    }

    [Fact]
    public void History_is_bounded_and_clearing_a_bitmap_uuid_records_it()
    {
        var ids = new GenerationIds(1, [0x77], [.. Enumerable.Range(1, 32).Select(i => (ulong)i * 2)]);
        GenerationIds cleared = ids.ClearBitmapUuid(0);
        Assert.Equal([0UL], cleared.Bitmap.ToArray());
        Assert.Equal(32, cleared.History.Length);
        Assert.Equal(0x77UL, cleared.History[0]);
        Assert.Equal(62UL, cleared.History[^1]); // the oldest (64) fell off
        Assert.Equal(cleared, cleared.ClearBitmapUuid(0));
    }

    [Fact]
    public void Primary_bit_helpers()
    {
        var ids = new GenerationIds(0xA0, [0], []);
        Assert.Equal(0xA1UL, ids.WithPrimaryBit(true).Current);
        Assert.Equal(0xA0UL, ids.WithPrimaryBit(true).WithPrimaryBit(false).Current);
        Assert.True(GenerationIds.IsPrimaryUuid(0xA1));
        Assert.True(GenerationIds.SameGeneration(0xA0, 0xA1));
        Assert.False(GenerationIds.SameGeneration(0xA0, 0xA2));
        Assert.NotEqual(ids, ids.WithPrimaryBit(true));
    }
}

using System.Collections.Immutable;
using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Tests.Replication;

/// <summary>DRBD's size rules (drbd_new_dev_size, receive_sizes) and the agreed size of a volume.</summary>
public class SizeAgreementTests
{
    private const long MiB = 1L << 20;

    [Theory]
    [InlineData(64, 80, 0, 64)]   // the smaller disk wins, whichever side it is on
    [InlineData(80, 64, 0, 64)]
    [InlineData(80, 80, 0, 80)]
    [InlineData(80, 0, 0, 80)]    // a Diskless peer limits nothing
    [InlineData(0, 80, 0, 80)]    // nor does a Diskless local node
    [InlineData(80, 96, 72, 72)]  // a third node's limit counts too
    [InlineData(0, 0, 0, 0)]      // nobody has a disk: nothing agreed
    public void The_smallest_usable_size_wins_and_zero_means_no_disk(long local, long peer, long others, long agreed) =>
        Assert.Equal(agreed * MiB, SizeAgreement.Agree(local * MiB, peer * MiB, others * MiB));

    [Fact]
    public void Other_peers_limit_by_their_size_or_while_unreachable_by_the_last_agreed_size()
    {
        Assert.Equal(0, SizeAgreement.OtherPeersLimit([], 64 * MiB)); // two nodes: only the peer at hand counts
        Assert.Equal(96 * MiB, SizeAgreement.OtherPeersLimit([96 * MiB, 128 * MiB], 64 * MiB));
        Assert.Equal(64 * MiB, SizeAgreement.OtherPeersLimit([96 * MiB, null], 64 * MiB)); // one out of reach: no growth past la-size
        Assert.Equal(96 * MiB, SizeAgreement.OtherPeersLimit([96 * MiB, 0], 64 * MiB)); // a connected Diskless peer limits nothing
    }

    [Theory]
    [InlineData(DiskState.UpToDate, true)]
    [InlineData(DiskState.Consistent, true)]
    [InlineData(DiskState.Outdated, true)]
    [InlineData(DiskState.Inconsistent, false)] // a disk without usable data may take the smaller size
    [InlineData(DiskState.Diskless, false)]
    public void Only_a_disk_with_data_refuses_to_shrink_at_connect(DiskState disk, bool refuses)
    {
        Assert.Equal(refuses, SizeAgreement.RefusesShrink(64 * MiB, 80 * MiB, disk));
        Assert.False(SizeAgreement.RefusesShrink(80 * MiB, 80 * MiB, disk));
        Assert.False(SizeAgreement.RefusesShrink(96 * MiB, 80 * MiB, disk)); // growing is never refused here
        Assert.False(SizeAgreement.RefusesShrink(0, 80 * MiB, disk));
    }

    [Theory]
    [InlineData(Role.Primary, Role.Secondary, 1, 0, true)]    // the Primary syncs the new area
    [InlineData(Role.Secondary, Role.Primary, 0, 1, false)]
    [InlineData(Role.Secondary, Role.Secondary, 0, 1, true)]  // else the lower node-id
    [InlineData(Role.Secondary, Role.Secondary, 1, 0, false)]
    [InlineData(Role.Primary, Role.Primary, 0, 1, true)]
    [InlineData(Role.Primary, Role.Primary, 1, 0, false)]
    public void The_Primary_else_the_lower_node_id_syncs_the_new_area(Role self, Role peer, int selfId, int peerId, bool source)
    {
        Assert.Equal(source, SizeAgreement.IsGrowSyncSource(self, peer, selfId, peerId));
        Assert.NotEqual(source, SizeAgreement.IsGrowSyncSource(peer, self, peerId, selfId)); // exactly one side
    }

    [Fact]
    public void A_volume_keeps_no_bits_past_its_agreed_size()
    {
        var bitmaps = new BitmapTracker(16 * MiB, 2);
        bitmaps.SetBits(0, 0, 16 * MiB / 4096);           // a full sync of the whole disk, before sizes were agreed
        var volume = Volume(16 * MiB, bitmaps, agreed: 12 * MiB);
        Assert.Equal(12 * MiB, volume.Bitmaps.OutOfSyncBytes(0));
        Assert.Equal(16 * MiB, volume.UsableSizeBytes);
        Assert.Equal(12 * MiB / 4096, volume.AgreedBits);
    }

    [Fact]
    public void Growing_marks_the_new_area_in_every_slot_and_shrinking_drops_it()
    {
        var volume = Volume(16 * MiB, null, agreed: 8 * MiB);
        volume.Bitmaps.MarkOutOfSync(0, 0, 4096);
        volume.SetAgreedSize(12 * MiB, markNewArea: true);
        Assert.Equal((4 * MiB) + 4096, volume.Bitmaps.OutOfSyncBytes(0));
        Assert.Equal(4 * MiB, volume.Bitmaps.OutOfSyncBytes(1));
        Assert.Equal(8 * MiB / 4096, volume.Bitmaps.Bitmap(1).FindNextSet(0));

        volume.SetAgreedSize(16 * MiB, markNewArea: false); // --assume-clean
        Assert.Equal(4 * MiB, volume.Bitmaps.OutOfSyncBytes(1));

        volume.SetAgreedSize(10 * MiB, markNewArea: true);
        Assert.Equal(2 * MiB, volume.Bitmaps.OutOfSyncBytes(1));
        Assert.Equal(-1, volume.Bitmaps.Bitmap(1).FindNextSet(10 * MiB / 4096));
        Assert.Throws<InvariantViolationException>(() => volume.SetAgreedSize(20 * MiB, markNewArea: true)); // past the disk
    }

    [Fact]
    public void Growing_the_capacity_grows_the_bitmaps_and_the_activity_log_but_not_the_agreed_size()
    {
        var volume = new ReplicaVolume(0, 8 * MiB, Ids(), MetadataFlags.Consistent, DiskState.UpToDate, new Dictionary<int, int> { [1] = 0, [2] = 1 })
        {
            ActivityLog = new Engine.ActivityLog.ActivityLogTracker(67, 8 * MiB, activityLogSize4k: 8),
        };
        volume.GrowCapacity(16 * MiB);
        Assert.Equal(16 * MiB, volume.UsableSizeBytes);
        Assert.Equal(16 * MiB, volume.Bitmaps.UsableSizeBytes);
        Assert.Equal(16 * MiB, volume.ActivityLog!.UsableSizeBytes);
        Assert.Equal(8 * MiB, volume.AgreedSizeBytes);
        Assert.Throws<InvariantViolationException>(() => volume.GrowCapacity(4 * MiB));
    }

    private static ReplicaVolume Volume(long usable, BitmapTracker? bitmaps, long agreed) =>
        new(0, usable, Ids(), MetadataFlags.Consistent, DiskState.UpToDate, new Dictionary<int, int> { [1] = 0, [2] = 1 }, bitmaps, agreed);

    private static GenerationIds Ids() => new(0x1000, ImmutableArray.Create(0UL, 0UL), ImmutableArray<ulong>.Empty);
}

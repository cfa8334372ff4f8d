// Promotion and demotion rules of ResourceStateMachine (DRBD's drbd_set_role): which disk states may
// become Primary, what a refusal leaves untouched, and how the generation UUIDs move.
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.Resources.ResourceFixtures;

namespace Redundancy.Block.Engine.Tests.Resources;

public class PromoteDemoteTests
{
    private const MetadataFlags PrimaryFlags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.PrimaryInd;

    [Fact]
    public void Primary_on_an_Inconsistent_disk_is_refused_and_changes_nothing()
    {
        var random = new ScriptedRandom(FirstRandom);
        var machine = Machine(random, Beta());
        AttachPersisted(machine, 0, Fresh(1, 1));
        var before = machine.Volume(0).Metadata;

        Assert.Equal(StateChangeResult.NoUpToDateDisk, machine.Promote(force: false));

        Assert.Equal(Role.Secondary, machine.Role);
        Assert.Equal(DiskState.Inconsistent, machine.Volume(0).Disk);
        Assert.Same(before, machine.Volume(0).Metadata);
        Assert.False(machine.Volume(0).MetadataDirty);
        Assert.Empty(machine.TakeTransitions());
        Assert.Equal(0, random.Calls);
    }

    [Fact]
    public void Primary_on_an_Outdated_disk_is_refused()
    {
        var machine = Machine(new ScriptedRandom(FirstRandom));
        AttachPersisted(machine, 0, WasUpToDate(1) with { Flags = MetadataFlags.Consistent });
        Assert.Equal(DiskState.Outdated, machine.Volume(0).Disk);

        Assert.Equal(StateChangeResult.NoUpToDateDisk, machine.Promote(force: false));
        Assert.Equal(Role.Secondary, machine.Role);
        Assert.False(machine.Volume(0).MetadataDirty);
    }

    [Fact]
    public void Forced_primary_on_Inconsistent_starts_a_generation_and_remembers_the_old_one_for_the_absent_peer()
    {
        var random = new ScriptedRandom(FirstRandom);
        var machine = Machine(random, Beta());
        AttachPersisted(machine, 0, Fresh(1, 1));

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: true));

        var volume = machine.Volume(0);
        var md = volume.Metadata!;
        Assert.Equal(Role.Primary, machine.Role);
        Assert.Equal(DiskState.UpToDate, volume.Disk);
        Assert.Equal(PrimaryFlags, md.Flags);
        Assert.NotEqual(GenerationIds.JustCreated, md.CurrentUuid);
        Assert.True(GenerationIds.IsPrimaryUuid(md.CurrentUuid));
        Assert.Equal(FirstRandom | GenerationIds.PrimaryBit, md.CurrentUuid);
        Assert.Equal(GenerationIds.JustCreated, md.Peers[0].BitmapUuid); // beta missed everything since
        Assert.Empty(md.HistoryUuids);
        Assert.True(volume.MetadataDirty);
        Assert.Null(md.ValidationError());
        Assert.Equal(1, random.Calls);
        Assert.Equal(
            ["r0/0: disk( Inconsistent -> UpToDate )", "r0: role( Secondary -> Primary )"],
            Lines(machine.TakeTransitions()));
        Assert.Empty(machine.TakeTransitions());
    }

    [Fact]
    public void Forced_primary_without_peers_starts_a_generation_with_an_empty_history()
    {
        var machine = Machine(new ScriptedRandom(FirstRandom));
        AttachPersisted(machine, 0, Fresh(1));

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: true));

        var md = machine.Volume(0).Metadata!;
        Assert.Equal(FirstRandom | GenerationIds.PrimaryBit, md.CurrentUuid);
        Assert.Empty(md.HistoryUuids); // "just created" is no generation worth remembering
        Assert.Equal(0UL, md.Peers[0].BitmapUuid);
        Assert.Equal(PrimaryFlags, md.Flags);
    }

    [Fact]
    public void Forced_primary_on_Outdated_keeps_the_old_generation_as_the_peers_bitmap_uuid()
    {
        var machine = Machine(new ScriptedRandom(SecondRandom), Beta());
        AttachPersisted(machine, 0, WasUpToDate(1, 1) with { Flags = MetadataFlags.Consistent });
        Assert.Equal(DiskState.Outdated, machine.Volume(0).Disk);

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: true));

        var md = machine.Volume(0).Metadata!;
        Assert.Equal(SecondRandom | GenerationIds.PrimaryBit, md.CurrentUuid);
        Assert.Equal(UpToDateUuid, md.Peers[0].BitmapUuid);
        Assert.Equal(DiskState.UpToDate, machine.Volume(0).Disk);
    }

    [Fact]
    public void Primary_on_Consistent_with_no_connected_peer_succeeds_with_a_new_generation()
    {
        var random = new ScriptedRandom(FirstRandom);
        var machine = Machine(random, Beta());
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        Assert.Equal(DiskState.Consistent, machine.Volume(0).Disk);

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));

        var md = machine.Volume(0).Metadata!;
        Assert.Equal(Role.Primary, machine.Role);
        Assert.Equal(DiskState.UpToDate, machine.Volume(0).Disk);
        Assert.Equal(PrimaryFlags, md.Flags);
        Assert.Equal(FirstRandom | GenerationIds.PrimaryBit, md.CurrentUuid);
        Assert.Equal(UpToDateUuid, md.Peers[0].BitmapUuid);
        Assert.Equal(
            ["r0/0: disk( Consistent -> UpToDate )", "r0: role( Secondary -> Primary )"],
            Lines(machine.TakeTransitions()));
    }

    [Fact]
    public void Primary_on_UpToDate_without_peers_keeps_the_generation_and_sets_the_primary_bit()
    {
        var random = new ScriptedRandom();
        var machine = Machine(random);
        AttachPersisted(machine, 0, WasUpToDate(1));

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));

        var md = machine.Volume(0).Metadata!;
        Assert.Equal(UpToDateUuid | GenerationIds.PrimaryBit, md.CurrentUuid);
        Assert.True(GenerationIds.SameGeneration(UpToDateUuid, md.CurrentUuid));
        Assert.Empty(md.HistoryUuids);
        Assert.Equal(0UL, md.Peers[0].BitmapUuid);
        Assert.Equal(PrimaryFlags, md.Flags);
        Assert.Equal(0, random.Calls);
        Assert.Equal(["r0: role( Secondary -> Primary )"], Lines(machine.TakeTransitions()));
    }

    [Fact]
    public void Primary_with_every_peer_connected_keeps_the_generation()
    {
        var random = new ScriptedRandom(FirstRandom);
        var peer = Beta();
        var machine = Machine(random, peer);
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        machine.Promote(force: false); // beta absent: new generation
        machine.Demote(force: false, deviceOpen: false);
        ulong generation = machine.Volume(0).Metadata!.CurrentUuid;
        peer.Connection = ConnectionState.Connected;
        peer.PeerRole = Role.Secondary;
        peer.PeerDisk = DiskState.UpToDate;

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));

        Assert.Equal(generation | GenerationIds.PrimaryBit, machine.Volume(0).Metadata!.CurrentUuid);
        Assert.Equal(1, random.Calls);
    }

    [Fact]
    public void Primary_on_Consistent_with_a_connected_peer_needs_force()
    {
        var peer = ConnectedPeer("beta", 1, Role.Secondary, DiskState.Consistent);
        var random = new ScriptedRandom();
        var machine = Machine(random, peer);
        AttachPersisted(machine, 0, WasUpToDate(1, 1));

        Assert.Equal(StateChangeResult.NoUpToDateDisk, machine.Promote(force: false));
        Assert.Equal(Role.Secondary, machine.Role);

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: true));
        var md = machine.Volume(0).Metadata!;
        Assert.Equal(UpToDateUuid | GenerationIds.PrimaryBit, md.CurrentUuid); // every peer connected: same generation
        Assert.Equal(0UL, md.Peers[0].BitmapUuid);
        Assert.Equal(0, random.Calls);
    }

    [Fact]
    public void Primary_is_refused_while_a_connected_peer_is_Primary()
    {
        var machine = Machine(new ScriptedRandom(), ConnectedPeer("beta", 1, Role.Primary, DiskState.UpToDate));
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        var before = machine.Volume(0).Metadata;

        Assert.Equal(StateChangeResult.TwoPrimaries, machine.Promote(force: true));

        Assert.Equal(Role.Secondary, machine.Role);
        Assert.Same(before, machine.Volume(0).Metadata);
        Assert.Empty(machine.TakeTransitions());
    }

    [Fact]
    public void Primary_while_a_connected_peer_is_Primary_is_allowed_with_allow_two_primaries()
    {
        var peer = new PeerState("beta", 1) { Connection = ConnectionState.Connected, PeerRole = Role.Primary, PeerDisk = DiskState.UpToDate, AllowTwoPrimaries = true };
        var random = new ScriptedRandom();
        var machine = Machine(random, peer);
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        var md = machine.Volume(0).Metadata!;
        machine.AdoptReplicaState(0, md.GenerationIds, md.Flags, DiskState.UpToDate); // the handshake found both UpToDate

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));

        Assert.Equal(Role.Primary, machine.Role);
        Assert.Equal(UpToDateUuid | GenerationIds.PrimaryBit, machine.Volume(0).Metadata!.CurrentUuid); // connected: same generation as the peer
        Assert.Equal(0, random.Calls);
    }

    [Fact]
    public void Primary_without_any_disk_or_UpToDate_peer_is_refused_even_forced()
    {
        var machine = Machine(new ScriptedRandom(FirstRandom), Beta());
        Assert.Equal(StateChangeResult.NoUpToDateDisk, machine.Promote(force: true));
        Assert.Equal(Role.Secondary, machine.Role);
    }

    /// <summary>
    /// DRBD lets a diskless node become Primary when a connected peer has UpToDate data (it reads and
    /// writes through the peer). The volume stays Diskless and has no metadata to change.
    /// </summary>
    [Fact]
    public void Diskless_primary_through_an_UpToDate_peer_succeeds()
    {
        var machine = Machine(new ScriptedRandom(FirstRandom), ConnectedPeer("beta", 1, Role.Secondary, DiskState.UpToDate));

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));

        Assert.Equal(Role.Primary, machine.Role);
        Assert.Equal(DiskState.Diskless, machine.Volume(0).Disk);
        Assert.Null(machine.Volume(0).Metadata);
        Assert.Equal(["r0: role( Secondary -> Primary )"], Lines(machine.TakeTransitions()));
    }

    /// <summary>
    /// Promotion through a peer while the local disk is still Detaching must not mark that disk's
    /// final metadata Consistent|WasUpToDate: its data was Inconsistent, and the next attach would
    /// take it for good data.
    /// </summary>
    [Fact]
    public void Primary_through_a_peer_does_not_bless_a_detaching_Inconsistent_disk()
    {
        var peer = Beta();
        var machine = Machine(new ScriptedRandom(FirstRandom), peer);
        AttachPersisted(machine, 0, Fresh(1, 1));
        Assert.Equal(StateChangeResult.Success, machine.Detach(0, force: false));
        peer.Connection = ConnectionState.Connected;
        peer.PeerRole = Role.Secondary;
        peer.PeerDisk = DiskState.UpToDate;

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));

        Assert.Equal(DiskState.Detaching, machine.Volume(0).Disk);
        var flags = machine.Volume(0).Metadata!.Flags;
        Assert.False(flags.HasFlag(MetadataFlags.Consistent), $"flags {flags}");
        Assert.False(flags.HasFlag(MetadataFlags.WasUpToDate), $"flags {flags}");
    }

    [Fact]
    public void Primary_when_already_Primary_is_nothing_to_do()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));
        machine.Promote(force: false);
        machine.Volume(0).MarkMetadataPersisted();
        machine.TakeTransitions();

        Assert.Equal(StateChangeResult.NothingToDo, machine.Promote(force: true));
        Assert.False(machine.Volume(0).MetadataDirty);
        Assert.Empty(machine.TakeTransitions());
    }

    [Fact]
    public void Secondary_while_the_device_is_open_is_refused_unless_forced()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));
        machine.Promote(force: false);
        machine.Volume(0).MarkMetadataPersisted();
        machine.TakeTransitions();
        var before = machine.Volume(0).Metadata;

        Assert.Equal(StateChangeResult.DeviceInUse, machine.Demote(force: false, deviceOpen: true));
        Assert.Equal(Role.Primary, machine.Role);
        Assert.Same(before, machine.Volume(0).Metadata);
        Assert.False(machine.Volume(0).MetadataDirty);
        Assert.Empty(machine.TakeTransitions());

        Assert.Equal(StateChangeResult.Success, machine.Demote(force: true, deviceOpen: true));
        var md = machine.Volume(0).Metadata!;
        Assert.Equal(Role.Secondary, machine.Role);
        Assert.Equal(MetadataFlags.Consistent | MetadataFlags.WasUpToDate, md.Flags);
        Assert.Equal(UpToDateUuid, md.CurrentUuid); // primary bit cleared
        Assert.False(GenerationIds.IsPrimaryUuid(md.CurrentUuid));
        Assert.True(machine.Volume(0).MetadataDirty);
        Assert.Equal(DiskState.UpToDate, machine.Volume(0).Disk);
        Assert.Equal(["r0: role( Primary -> Secondary )"], Lines(machine.TakeTransitions()));
    }

    [Fact]
    public void Secondary_with_the_device_closed_needs_no_force()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));
        machine.Promote(force: false);

        Assert.Equal(StateChangeResult.Success, machine.Demote(force: false, deviceOpen: false));
        Assert.Equal(Role.Secondary, machine.Role);
        Assert.False(machine.Volume(0).Metadata!.Flags.HasFlag(MetadataFlags.PrimaryInd));
    }

    /// <summary>
    /// A peer has not yet confirmed the last writes stable (the replica's HoldsUnconfirmedWrites):
    /// the demotion keeps the primary indicator on disk, so a crash before they are confirmed comes
    /// back crashed-primary; the Primary bit of the current UUID goes as always.
    /// </summary>
    [Fact]
    public void Secondary_with_unconfirmed_writes_keeps_the_primary_indicator()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));
        machine.Promote(force: false);

        Assert.Equal(StateChangeResult.Success, machine.Demote(force: false, deviceOpen: false, writesUnconfirmed: true));

        var md = machine.Volume(0).Metadata!;
        Assert.Equal(Role.Secondary, machine.Role);
        Assert.True(md.Flags.HasFlag(MetadataFlags.PrimaryInd));
        Assert.False(GenerationIds.IsPrimaryUuid(md.CurrentUuid));
    }

    [Fact]
    public void Secondary_when_already_Secondary_is_nothing_to_do()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));
        Assert.Equal(StateChangeResult.NothingToDo, machine.Demote(force: true, deviceOpen: true));
        Assert.False(machine.Volume(0).MetadataDirty);
        Assert.Empty(machine.TakeTransitions());
    }

    [Fact]
    public void Crashed_primary_flag_survives_promotion_and_demotion()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1) with { Flags = PrimaryFlags });
        machine.Promote(force: false);
        machine.Demote(force: false, deviceOpen: false);
        Assert.True(machine.Volume(0).Metadata!.Flags.HasFlag(MetadataFlags.CrashedPrimary));
    }

    [Fact]
    public void Multi_volume_primary_is_refused_when_any_volume_lacks_UpToDate_data()
    {
        var random = new ScriptedRandom(FirstRandom);
        var machine = new ResourceStateMachine("r0", 0, [0, 1], [], random);
        AttachPersisted(machine, 0, WasUpToDate(1));
        AttachPersisted(machine, 1, Fresh(1));
        var volume0 = machine.Volume(0).Metadata;

        Assert.Equal(StateChangeResult.NoUpToDateDisk, machine.Promote(force: false));
        Assert.Equal(Role.Secondary, machine.Role);
        Assert.Same(volume0, machine.Volume(0).Metadata);
        Assert.False(machine.Volume(0).MetadataDirty);
        Assert.Equal(DiskState.Inconsistent, machine.Volume(1).Disk);
        Assert.Empty(machine.TakeTransitions());
        Assert.Equal(0, random.Calls);

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: true));
        Assert.Equal(UpToDateUuid | GenerationIds.PrimaryBit, machine.Volume(0).Metadata!.CurrentUuid);
        Assert.Equal(FirstRandom | GenerationIds.PrimaryBit, machine.Volume(1).Metadata!.CurrentUuid);
        Assert.All(machine.Volumes, v => Assert.Equal(PrimaryFlags, v.Metadata!.Flags));
        Assert.Equal(
            ["r0/1: disk( Inconsistent -> UpToDate )", "r0: role( Secondary -> Primary )"],
            Lines(machine.TakeTransitions()));
    }

    [Fact]
    public void Multi_volume_primary_is_refused_when_a_volume_is_Diskless_and_no_peer_has_data()
    {
        var machine = new ResourceStateMachine("r0", 0, [0, 1], [], new ScriptedRandom());
        AttachPersisted(machine, 1, WasUpToDate(1));

        Assert.Equal(StateChangeResult.NoUpToDateDisk, machine.Promote(force: true));
        Assert.Equal(Role.Secondary, machine.Role);
        Assert.False(machine.Volume(1).MetadataDirty);
    }
}

// Attach, detach, disk failure and peer-slot assignment of ResourceStateMachine: the disk state DRBD
// derives from the metadata flags, and the metadata the host must write afterwards.
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.Resources.ResourceFixtures;

namespace Redundancy.Block.Engine.Tests.Resources;

public class AttachDetachTests
{
    [Fact]
    public void Attach_of_fresh_metadata_is_Inconsistent_and_clears_AlClean()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        var fresh = Fresh(1, 1);
        Assert.True(fresh.Flags.HasFlag(MetadataFlags.AlClean));

        Assert.Equal(StateChangeResult.Success, machine.Attach(0, fresh));

        var volume = machine.Volume(0);
        Assert.Equal(DiskState.Inconsistent, volume.Disk);
        Assert.True(volume.MetadataDirty);
        Assert.Equal(MetadataFlags.None, volume.Metadata!.Flags);
        Assert.Equal(GenerationIds.JustCreated, volume.Metadata.CurrentUuid);
        Assert.Equal(fresh.Peers, volume.Metadata.Peers);
        Assert.Equal(
            ["r0/0: disk( Diskless -> Attaching )", "r0/0: disk( Attaching -> Inconsistent )"],
            Lines(machine.TakeTransitions()));
        Assert.Equal(Role.Secondary, machine.Role);
    }

    [Theory]
    [InlineData(MetadataFlags.Consistent | MetadataFlags.WasUpToDate, false, DiskState.UpToDate)]
    [InlineData(MetadataFlags.Consistent | MetadataFlags.WasUpToDate, true, DiskState.Consistent)]
    [InlineData(MetadataFlags.Consistent, false, DiskState.Outdated)]
    [InlineData(MetadataFlags.Consistent, true, DiskState.Outdated)]
    [InlineData(MetadataFlags.WasUpToDate, false, DiskState.Inconsistent)]
    [InlineData(MetadataFlags.None, false, DiskState.Inconsistent)]
    [InlineData(MetadataFlags.None, true, DiskState.Inconsistent)]
    public void Attach_derives_the_disk_state_from_the_flags(MetadataFlags flags, bool peerConfigured, DiskState expected)
    {
        var machine = peerConfigured ? Machine(new ScriptedRandom(), Beta()) : Machine(new ScriptedRandom());
        var metadata = Fresh(1) with { Flags = flags, CurrentUuid = UpToDateUuid };

        Assert.Equal(expected, machine.DiskStateFromMetadata(metadata));
        Assert.Equal(StateChangeResult.Success, machine.Attach(0, metadata));
        Assert.Equal(expected, machine.Volume(0).Disk);
        Assert.Equal($"r0/0: disk( Attaching -> {expected} )", Lines(machine.TakeTransitions())[^1]);
    }

    [Fact]
    public void Attach_of_metadata_needing_no_change_leaves_nothing_to_write()
    {
        var machine = Machine(new ScriptedRandom());
        var metadata = WasUpToDate(1) with { Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate };

        machine.Attach(0, metadata);

        Assert.False(machine.Volume(0).MetadataDirty);
        Assert.Same(metadata, machine.Volume(0).Metadata);
    }

    [Fact]
    public void Attach_twice_is_refused_and_keeps_the_first_disk()
    {
        var machine = Machine(new ScriptedRandom());
        var first = WasUpToDate(1);
        AttachPersisted(machine, 0, first);
        var kept = machine.Volume(0).Metadata;

        Assert.Equal(StateChangeResult.AlreadyAttached, machine.Attach(0, Fresh(1)));

        Assert.Same(kept, machine.Volume(0).Metadata);
        Assert.Equal(DiskState.UpToDate, machine.Volume(0).Disk);
        Assert.False(machine.Volume(0).MetadataDirty);
        Assert.Empty(machine.TakeTransitions());
    }

    [Fact]
    public void Attach_of_a_disk_left_Primary_marks_it_crashed_primary()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        var crashed = WasUpToDate(1, 1) with
        {
            Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.PrimaryInd,
            CurrentUuid = UpToDateUuid | GenerationIds.PrimaryBit,
        };

        machine.Attach(0, crashed);

        var md = machine.Volume(0).Metadata!;
        Assert.True(md.Flags.HasFlag(MetadataFlags.CrashedPrimary));
        Assert.False(md.Flags.HasFlag(MetadataFlags.PrimaryInd));
        Assert.Equal(MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.CrashedPrimary, md.Flags);
        Assert.True(machine.Volume(0).MetadataDirty);
        Assert.Equal(crashed.CurrentUuid, md.CurrentUuid); // attach does not touch the generation
        Assert.Equal(DiskState.Consistent, machine.Volume(0).Disk);
    }

    /// <summary>
    /// A Primary (promoted through its UpToDate peer while Diskless) that attaches a disk writes
    /// to it from then on: the disk carries the primary indicator, so a crash comes back
    /// crashed-primary and its activity log is resynced (seed 13460 crashed such a Primary and came
    /// back with nothing to resync, its lost writes unmarked).
    /// </summary>
    [Fact]
    public void Attach_to_a_Primary_sets_the_primary_indicator()
    {
        var machine = Machine(new ScriptedRandom(FirstRandom), ConnectedPeer("beta", 1, Role.Secondary, DiskState.UpToDate));
        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));

        Assert.Equal(StateChangeResult.Success, machine.Attach(0, WasUpToDate(1, 1)));

        var md = machine.Volume(0).Metadata!;
        Assert.Equal(MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.PrimaryInd, md.Flags);
        Assert.True(machine.Volume(0).MetadataDirty);
        Assert.Equal(StateChangeResult.Success, machine.Demote(force: false, deviceOpen: false));
        Assert.False(machine.Volume(0).Metadata!.Flags.HasFlag(MetadataFlags.PrimaryInd));
    }

    [Fact]
    public void Attach_of_an_unknown_volume_throws()
    {
        var machine = Machine(new ScriptedRandom());
        Assert.Throws<ArgumentOutOfRangeException>(() => machine.Attach(1, Fresh(1)));
    }

    [Fact]
    public void Detach_marks_the_activity_log_clean_and_completes_to_Diskless()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));
        Assert.False(machine.Volume(0).Metadata!.Flags.HasFlag(MetadataFlags.AlClean));

        Assert.Equal(StateChangeResult.Success, machine.Detach(0, force: false));

        var volume = machine.Volume(0);
        Assert.Equal(DiskState.Detaching, volume.Disk);
        Assert.True(volume.Metadata!.Flags.HasFlag(MetadataFlags.AlClean));
        Assert.True(volume.MetadataDirty);

        machine.CompleteDetach(0);
        Assert.Equal(DiskState.Diskless, volume.Disk);
        Assert.Null(volume.Metadata);
        Assert.False(volume.MetadataDirty);
        Assert.Equal(
            ["r0/0: disk( UpToDate -> Detaching )", "r0/0: disk( Detaching -> Diskless )"],
            Lines(machine.TakeTransitions()));
    }

    [Fact]
    public void Detach_of_a_Diskless_volume_is_nothing_to_do()
    {
        var machine = Machine(new ScriptedRandom());
        Assert.Equal(StateChangeResult.NothingToDo, machine.Detach(0, force: false));
        Assert.Empty(machine.TakeTransitions());
    }

    [Fact]
    public void Detach_of_the_only_UpToDate_disk_of_a_Primary_needs_force()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));
        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));
        machine.Volume(0).MarkMetadataPersisted();
        machine.TakeTransitions();
        var before = machine.Volume(0).Metadata;

        Assert.Equal(StateChangeResult.NoUpToDateDisk, machine.Detach(0, force: false));
        Assert.Equal(DiskState.UpToDate, machine.Volume(0).Disk);
        Assert.Same(before, machine.Volume(0).Metadata);
        Assert.False(machine.Volume(0).MetadataDirty);
        Assert.Empty(machine.TakeTransitions());

        Assert.Equal(StateChangeResult.Success, machine.Detach(0, force: true));
        Assert.Equal(DiskState.Detaching, machine.Volume(0).Disk);
        Assert.Equal(Role.Primary, machine.Role);
    }

    [Fact]
    public void Detach_as_Primary_is_allowed_when_a_connected_peer_has_UpToDate_data()
    {
        var peer = Beta();
        var machine = Machine(new ScriptedRandom(FirstRandom), peer);
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false)); // Consistent, peer not connected
        peer.Connection = ConnectionState.Connected;
        peer.PeerRole = Role.Secondary;
        peer.PeerDisk = DiskState.UpToDate;

        Assert.Equal(StateChangeResult.Success, machine.Detach(0, force: false));
        Assert.Equal(DiskState.Detaching, machine.Volume(0).Disk);
    }

    [Fact]
    public void Disk_failure_goes_Failed_then_Diskless()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));

        machine.DiskFailed(0);
        machine.DiskFailed(0); // a second error changes nothing
        Assert.Equal(DiskState.Failed, machine.Volume(0).Disk);
        Assert.NotNull(machine.Volume(0).Metadata);

        machine.CompleteDetach(0);
        Assert.Equal(DiskState.Diskless, machine.Volume(0).Disk);
        Assert.Null(machine.Volume(0).Metadata);
        Assert.Equal(
            ["r0/0: disk( UpToDate -> Failed )", "r0/0: disk( Failed -> Diskless )"],
            Lines(machine.TakeTransitions()));

        machine.DiskFailed(0); // Diskless: nothing to fail
        Assert.Equal(DiskState.Diskless, machine.Volume(0).Disk);
        Assert.Empty(machine.TakeTransitions());
    }

    [Fact]
    public void Complete_detach_without_a_detach_is_an_invariant_violation()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));
        Assert.Throws<InvariantViolationException>(() => machine.CompleteDetach(0));
    }

    [Fact]
    public void A_new_attach_after_detach_reads_the_new_metadata()
    {
        var machine = Machine(new ScriptedRandom());
        AttachPersisted(machine, 0, WasUpToDate(1));
        machine.Detach(0, force: false);
        machine.CompleteDetach(0);

        Assert.Equal(StateChangeResult.Success, machine.Attach(0, Fresh(1)));
        Assert.Equal(DiskState.Inconsistent, machine.Volume(0).Disk);
    }

    [Fact]
    public void Assign_peer_slots_gives_each_configured_peer_the_first_free_slot()
    {
        var machine = Machine(new ScriptedRandom(), new PeerState("beta", 1), new PeerState("gamma", 2));
        AttachPersisted(machine, 0, Fresh(3));

        machine.AssignPeerSlots(0);

        var peers = machine.Volume(0).Metadata!.Peers;
        Assert.Equal(new PeerSlot(1, 0, PeerSlotFlags.None, 0), peers[0]);
        Assert.Equal(new PeerSlot(2, 0, PeerSlotFlags.None, 1), peers[1]);
        Assert.True(peers[2].IsFree);
        Assert.Null(machine.Volume(0).Metadata!.ValidationError());
        Assert.True(machine.Volume(0).MetadataDirty);

        machine.Volume(0).MarkMetadataPersisted();
        machine.AssignPeerSlots(0); // every peer has a slot now: nothing changes
        Assert.False(machine.Volume(0).MetadataDirty);
    }

    [Fact]
    public void Assign_peer_slots_keeps_existing_slots()
    {
        var machine = Machine(new ScriptedRandom(), new PeerState("beta", 1), new PeerState("gamma", 2));
        AttachPersisted(machine, 0, Fresh(2, 2));

        machine.AssignPeerSlots(0);

        var md = machine.Volume(0).Metadata!;
        Assert.Equal(0, md.FindPeerSlot(2));
        Assert.Equal(1, md.FindPeerSlot(1));
        Assert.Equal(1, md.Peers[1].BitmapIndex);
        Assert.Null(md.ValidationError());
    }

    [Fact]
    public void Constructor_orders_volumes_and_checks_its_arguments()
    {
        var random = new ScriptedRandom();
        var machine = new ResourceStateMachine("r0", 0, [2, 0, 1], [], random);
        Assert.Equal([0, 1, 2], machine.Volumes.Select(v => v.Number));
        Assert.All(machine.Volumes, v => Assert.Equal(DiskState.Diskless, v.Disk));
        Assert.Equal(Role.Secondary, machine.Role);

        Assert.Throws<InvariantViolationException>(() => new ResourceStateMachine("r0", 0, [], [], random));
        Assert.Throws<InvariantViolationException>(() => new ResourceStateMachine("r0", 0, [0, 0], [], random));
        Assert.Throws<InvariantViolationException>(() => new ResourceStateMachine("r0", 0, [0], [new PeerState("self", 0)], random));
    }

    [Fact]
    public void Transition_text_is_DRBDs_log_spelling()
    {
        Assert.Equal("r0/0: disk( Inconsistent -> UpToDate )", new StateTransition("r0/0", "disk", "Inconsistent", "UpToDate").ToString());
        Assert.Equal("r0: role( Secondary -> Primary )", new StateTransition("r0", "role", "Secondary", "Primary").ToString());
    }
}

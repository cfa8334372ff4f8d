// ResourceStateMachine's part of fencing: drbdadm outdate under DRBD 9's rules (SS_LOWER_THAN_OUTDATED,
// SS_CONNECTED_OUTDATES), promotion with fencing (SS_PRIMARY_NOP until the peer is known Outdated,
// --force past a failed fence), and MDF_PEER_OUTDATED kept in the peer slots.
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.Resources.ResourceFixtures;

namespace Redundancy.Block.Engine.Tests.Resources;

public class OutdateFencingTests
{
    [Fact]
    public void Outdate_keeps_Consistent_drops_WasUpToDate_and_the_disk_comes_back_Outdated_after_a_restart()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        machine.UpdatePeer(1, ConnectionState.Connected, Role.Secondary, DiskState.UpToDate); // a Secondary peer does not forbid it

        Assert.Equal(StateChangeResult.Success, machine.Outdate(0));

        var md = machine.Volume(0).Metadata!;
        Assert.Equal(DiskState.Outdated, machine.Volume(0).Disk);
        Assert.True(md.Flags.HasFlag(MetadataFlags.Consistent));
        Assert.False(md.Flags.HasFlag(MetadataFlags.WasUpToDate));
        Assert.True(machine.Volume(0).MetadataDirty);
        Assert.Equal(["r0/0: disk( Consistent -> Outdated )"], Lines(machine.TakeTransitions()));
        Assert.Equal(StateChangeResult.NothingToDo, machine.Outdate(0));

        var restarted = Machine(new ScriptedRandom(), Beta());
        AttachPersisted(restarted, 0, md);
        Assert.Equal(DiskState.Outdated, restarted.Volume(0).Disk);
        Assert.Equal(StateChangeResult.NoUpToDateDisk, restarted.Promote(force: false));
    }

    [Fact]
    public void Outdate_is_refused_while_connected_to_a_Primary()
    {
        var machine = Machine(new ScriptedRandom(), ConnectedPeer("beta", 1, Role.Primary, DiskState.UpToDate));
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        var before = machine.Volume(0).Metadata;

        Assert.Equal(StateChangeResult.ConnectedOutdates, machine.Outdate(0));
        Assert.Same(before, machine.Volume(0).Metadata);
        Assert.Equal(DiskState.Consistent, machine.Volume(0).Disk);
        Assert.Equal("State change failed: (-6) Refusing to be Outdated while Connected", StateChangeResults.Describe(StateChangeResult.ConnectedOutdates));
    }

    [Fact]
    public void Outdate_is_refused_on_a_Primary()
    {
        var alone = Machine(new ScriptedRandom(StandaloneRandom));
        AttachPersisted(alone, 0, WasUpToDate(1));
        Assert.Equal(StateChangeResult.Success, alone.Promote(force: false));
        Assert.Equal(StateChangeResult.NoUpToDateDisk, alone.Outdate(0)); // its only UpToDate data

        var connected = Machine(new ScriptedRandom(), ConnectedPeer("beta", 1, Role.Secondary, DiskState.UpToDate));
        AttachPersisted(connected, 0, WasUpToDate(1, 1));
        UpToDateAfterHandshake(connected);
        Assert.Equal(StateChangeResult.Success, connected.Promote(force: false));
        Assert.Equal(StateChangeResult.ConnectedOutdates, connected.Outdate(0));
        Assert.Equal(DiskState.UpToDate, connected.Volume(0).Disk);
    }

    [Fact]
    public void Outdate_of_an_Inconsistent_or_absent_disk_is_lower_than_outdated()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        Assert.Equal(StateChangeResult.LowerThanOutdated, machine.Outdate(0)); // Diskless
        AttachPersisted(machine, 0, Fresh(1, 1));
        Assert.Equal(StateChangeResult.LowerThanOutdated, machine.Outdate(0));
        Assert.Equal(DiskState.Inconsistent, machine.Volume(0).Disk);
    }

    [Fact]
    public void With_fencing_a_disconnected_peer_not_known_Outdated_refuses_promotion()
    {
        var machine = Machine(new ScriptedRandom(FirstRandom), FencedBeta());
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        machine.UpdatePeer(1, ConnectionState.Connecting, Role.Unknown, DiskState.DUnknown);

        Assert.Equal(StateChangeResult.PrimaryNop, machine.Promote(force: false));
        Assert.Equal(StateChangeResult.PrimaryNop, machine.Promote(force: false, peersFenced: true));
        Assert.Equal(Role.Secondary, machine.Role);
        Assert.False(machine.Volume(0).MetadataDirty);
        Assert.Equal("State change failed: (-7) Refusing to be Primary while peer is not outdated", StateChangeResults.Describe(StateChangeResult.PrimaryNop));
    }

    [Theory]
    [InlineData(DiskState.Outdated)]
    [InlineData(DiskState.Inconsistent)]
    public void With_fencing_a_peer_known_Outdated_or_Inconsistent_lets_the_promotion_through(DiskState fenced)
    {
        var machine = Machine(new ScriptedRandom(FirstRandom), FencedBeta());
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        machine.UpdatePeer(1, ConnectionState.Connecting, Role.Unknown, fenced);

        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));
        Assert.Equal(Role.Primary, machine.Role);
        Assert.Equal(UpToDateUuid, machine.Volume(0).Metadata!.Peers[0].BitmapUuid); // the absent peer's bitmap starts at the old generation
    }

    [Fact]
    public void Force_promotes_past_a_failed_fence_only_after_fence_peer_was_tried()
    {
        var machine = Machine(new ScriptedRandom(FirstRandom), FencedBeta());
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        machine.UpdatePeer(1, ConnectionState.Connecting, Role.Unknown, DiskState.DUnknown);

        Assert.Equal(StateChangeResult.PrimaryNop, machine.Promote(force: true));
        Assert.Equal(StateChangeResult.Success, machine.Promote(force: true, peersFenced: true));
        Assert.Equal(Role.Primary, machine.Role);
    }

    [Fact]
    public void Without_fencing_a_disconnected_peer_does_not_matter()
    {
        var machine = Machine(new ScriptedRandom(FirstRandom), Beta());
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        machine.UpdatePeer(1, ConnectionState.Connecting, Role.Unknown, DiskState.DUnknown);
        Assert.Empty(machine.UnfencedPeers());
        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));
    }

    [Fact]
    public void A_connected_peer_needs_no_fencing()
    {
        var peer = new PeerState("beta", 1) { Fencing = true, Connection = ConnectionState.Connected, PeerRole = Role.Secondary, PeerDisk = DiskState.UpToDate };
        var machine = Machine(new ScriptedRandom(), peer);
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        UpToDateAfterHandshake(machine);
        Assert.Equal(StateChangeResult.Success, machine.Promote(force: false));
    }

    [Fact]
    public void The_replica_state_sets_and_clears_MDF_PEER_OUTDATED_in_the_peer_slots()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        var md = machine.Volume(0).Metadata!;

        machine.AdoptReplicaState(0, md.GenerationIds, md.Flags, DiskState.UpToDate, [1]);
        var slot = machine.Volume(0).Metadata!.Peers[0];
        Assert.Equal(1, slot.NodeId);
        Assert.True(slot.Flags.HasFlag(PeerSlotFlags.Outdated));
        Assert.True(machine.Volume(0).MetadataDirty);

        machine.AdoptReplicaState(0, md.GenerationIds, md.Flags, DiskState.UpToDate); // null: slots untouched
        Assert.True(machine.Volume(0).Metadata!.Peers[0].Flags.HasFlag(PeerSlotFlags.Outdated));

        machine.AdoptReplicaState(0, md.GenerationIds, md.Flags, DiskState.UpToDate, []);
        Assert.False(machine.Volume(0).Metadata!.Peers[0].Flags.HasFlag(PeerSlotFlags.Outdated));
    }

    private const ulong StandaloneRandom = 0x5555_0000_0000_0000;

    private static PeerState FencedBeta() => new("beta", 1) { Fencing = true };

    /// <summary>The replica found the connected peer's generation equal: the Consistent disk is UpToDate.</summary>
    private static void UpToDateAfterHandshake(ResourceStateMachine machine)
    {
        var md = machine.Volume(0).Metadata!;
        machine.AdoptReplicaState(0, md.GenerationIds, md.Flags, DiskState.UpToDate);
    }
}

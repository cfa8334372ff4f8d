// Which startup timeout wait-connect uses (DRBD's get-timeout-type and drbdsetup's choose_timeout):
// the degraded one after a Primary went down with no peer connected, the outdated one while the
// peer's disk is known Outdated; and the cuts drbdsetup makes to values that are out of order.
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.Resources.ResourceFixtures;

namespace Redundancy.Block.Engine.Tests.Resources;

public class WaitTimeoutTypeTests
{
    private static Superblock LeftPrimary(bool peerConnected)
    {
        var md = WasUpToDate(1, 1) with { Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.PrimaryInd };
        var slot = md.Peers[0];
        return md with { Peers = md.Peers.SetItem(0, slot with { Flags = peerConnected ? PeerSlotFlags.Connected : PeerSlotFlags.None }) };
    }

    [Fact]
    public void A_disk_left_Primary_with_no_peer_connected_waits_with_the_degraded_timeout()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        AttachPersisted(machine, 0, LeftPrimary(peerConnected: false));
        Assert.Equal(WaitTimeoutType.Degraded, machine.WaitTimeoutType);
    }

    [Fact]
    public void A_disk_left_Primary_while_connected_waits_with_the_default_timeout()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        AttachPersisted(machine, 0, LeftPrimary(peerConnected: true));
        Assert.Equal(WaitTimeoutType.Default, machine.WaitTimeoutType);
    }

    [Fact]
    public void A_disk_left_Secondary_waits_with_the_default_timeout()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        AttachPersisted(machine, 0, WasUpToDate(1, 1));
        Assert.Equal(WaitTimeoutType.Default, machine.WaitTimeoutType);
    }

    [Fact]
    public void A_peer_connecting_ends_the_degraded_timeout_and_is_recorded_in_its_slot()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        AttachPersisted(machine, 0, LeftPrimary(peerConnected: false));
        var md = machine.Volume(0).Metadata!;

        machine.AdoptReplicaState(0, md.GenerationIds, md.Flags, DiskState.UpToDate, outdatedPeers: [], connectedPeers: [1]);

        Assert.Equal(WaitTimeoutType.Default, machine.WaitTimeoutType);
        Assert.True(machine.Volume(0).Metadata!.Peers[0].Flags.HasFlag(PeerSlotFlags.Connected));
        Assert.True(machine.Volume(0).MetadataDirty);

        // The connection goes: the slot loses the indicator, the wait stays the default one.
        machine.AdoptReplicaState(0, md.GenerationIds, md.Flags, DiskState.UpToDate, outdatedPeers: [], connectedPeers: []);
        Assert.False(machine.Volume(0).Metadata!.Peers[0].Flags.HasFlag(PeerSlotFlags.Connected));
        Assert.Equal(WaitTimeoutType.Default, machine.WaitTimeoutType);
    }

    [Fact]
    public void A_peer_disk_known_Outdated_waits_with_the_outdated_timeout_even_when_degraded()
    {
        var machine = Machine(new ScriptedRandom(), Beta());
        AttachPersisted(machine, 0, LeftPrimary(peerConnected: false));
        machine.UpdatePeer(1, ConnectionState.Connecting, Role.Unknown, DiskState.Outdated);
        Assert.Equal(WaitTimeoutType.PeerOutdated, machine.WaitTimeoutType);
    }

    [Theory]
    // wfc, degr, outdated, type → seconds, warnings
    [InlineData(0, 0, 0, WaitTimeoutType.Default, 0, 0)]
    [InlineData(120, 0, 0, WaitTimeoutType.Default, 120, 0)] // cuts are not mentioned when the default applies
    [InlineData(120, 60, 0, WaitTimeoutType.Degraded, 60, 0)]
    [InlineData(120, 0, 0, WaitTimeoutType.Degraded, 120, 1)] // degr 0 (forever) is cut to wfc
    [InlineData(120, 300, 0, WaitTimeoutType.Degraded, 120, 1)] // degr longer than wfc is cut to wfc
    [InlineData(0, 60, 0, WaitTimeoutType.Degraded, 60, 0)] // wfc forever, degraded 60
    [InlineData(120, 60, 30, WaitTimeoutType.PeerOutdated, 30, 0)]
    [InlineData(120, 60, 0, WaitTimeoutType.PeerOutdated, 60, 1)] // outdated 0 is cut to degr
    [InlineData(120, 60, 90, WaitTimeoutType.PeerOutdated, 60, 1)]
    [InlineData(120, 0, 0, WaitTimeoutType.PeerOutdated, 120, 2)]
    [InlineData(0, 0, 30, WaitTimeoutType.PeerOutdated, 30, 0)]
    public void Choose_cuts_out_of_order_timeouts_as_drbdsetup_does(long wfc, long degr, long outdated, WaitTimeoutType type, long expectedSeconds, int expectedWarnings)
    {
        var (seconds, warnings) = new StartupTimeouts(wfc, degr, outdated).Choose(type);
        Assert.Equal(expectedSeconds, seconds);
        Assert.Equal(expectedWarnings, warnings.Count);
        Assert.All(warnings, w => Assert.Contains("implicitly set to", w));
    }
}

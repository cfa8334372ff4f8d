// `drbdadm status` text must match drbdsetup's layout character for character: scripts grep it.
using Redundancy.Block.Engine.States;
using Redundancy.Block.Engine.Status;
using static Redundancy.Block.Engine.Tests.Status.StatusSamples;

namespace Redundancy.Block.Engine.Tests.Status;

public class StatusTextTests
{
    private static string Text(ResourceStatus resource, bool verbose = false) => StatusText.Format([resource], verbose);

    [Fact]
    public void Lone_Primary_prints_role_and_disk()
    {
        Assert.Equal("r0 role:Primary\n  disk:UpToDate\n\n", Text(LonePrimary()));
    }

    [Fact]
    public void StandAlone_peer_shows_its_connection_state_and_no_peer_devices()
    {
        Assert.Equal("r0 role:Secondary\n  disk:UpToDate\n  beta connection:StandAlone\n\n", Text(WithStandAlonePeer()));
    }

    [Fact]
    public void Connecting_peer_shows_its_connection_state()
    {
        var status = WithStandAlonePeer() with
        {
            Connections = [Connection("carol", 2, ConnectionState.Connecting, Role.Unknown, PeerDevice(0, ReplicationState.Off, DiskState.DUnknown))],
        };
        Assert.Equal("r0 role:Secondary\n  disk:UpToDate\n  carol connection:Connecting\n\n", Text(status));
    }

    [Fact]
    public void Established_peer_shows_role_and_peer_disk_without_replication()
    {
        Assert.Equal("r0 role:Primary\n  disk:UpToDate\n  beta role:Secondary\n    peer-disk:UpToDate\n\n", Text(Established()));
    }

    [Fact]
    public void Resync_shows_replication_state_and_done()
    {
        Assert.Equal(
            "r0 role:Primary\n" +
            "  disk:UpToDate\n" +
            "  beta role:Secondary\n" +
            "    replication:SyncSource peer-disk:Inconsistent done:37.50\n" +
            "\n",
            Text(Syncing()));
    }

    [Theory]
    [InlineData(ReplicationState.SyncTarget, true)]
    [InlineData(ReplicationState.PausedSyncS, true)]
    [InlineData(ReplicationState.VerifyS, true)]
    [InlineData(ReplicationState.Ahead, false)]
    [InlineData(ReplicationState.WFBitMapS, false)]
    public void Done_appears_only_while_resyncing_or_verifying(ReplicationState state, bool showsDone)
    {
        var status = Established() with
        {
            Connections = [Connection("beta", 1, ConnectionState.Connected, Role.Secondary, PeerDevice(0, state, DiskState.Inconsistent, 5.5))],
        };
        string expected = $"    replication:{state} peer-disk:Inconsistent" + (showsDone ? " done:5.50" : "") + "\n";
        Assert.EndsWith(expected + "\n", Text(status));
    }

    [Fact]
    public void Documented_example_with_two_peers()
    {
        var status = Syncing() with
        {
            Connections = [.. Syncing().Connections, Connection("carol", 2, ConnectionState.Connecting, Role.Unknown)],
        };
        Assert.Equal(
            "r0 role:Primary\n" +
            "  disk:UpToDate\n" +
            "  beta role:Secondary\n" +
            "    replication:SyncSource peer-disk:Inconsistent done:37.50\n" +
            "  carol connection:Connecting\n" +
            "\n",
            Text(status));
    }

    [Fact]
    public void Multi_volume_resources_number_their_volumes()
    {
        var status = new ResourceStatus
        {
            Name = "r1",
            Role = Role.Secondary,
            Devices = [Device(0, DiskState.UpToDate), Device(1, DiskState.Inconsistent)],
            Connections = [Connection("beta", 1, ConnectionState.Connected, Role.Primary,
                PeerDevice(0, ReplicationState.Established, DiskState.UpToDate),
                PeerDevice(1, ReplicationState.SyncTarget, DiskState.UpToDate, 12.0))],
        };
        Assert.Equal(
            "r1 role:Secondary\n" +
            "  volume:0 disk:UpToDate\n" +
            "  volume:1 disk:Inconsistent\n" +
            "  beta role:Primary\n" +
            "    volume:0 peer-disk:UpToDate\n" +
            "    volume:1 replication:SyncTarget peer-disk:UpToDate done:12.00\n" +
            "\n",
            Text(status));
    }

    [Fact]
    public void Verbose_adds_node_ids_minors_and_details()
    {
        var status = Established() with { Devices = [Device(0, DiskState.UpToDate, open: true)] };
        Assert.Equal(
            "r0 node-id:0 role:Primary suspended:no\n" +
            "  volume:0 minor:0 disk:UpToDate open:yes quorum:yes blocked:no\n" +
            "  beta node-id:1 connection:Connected role:Secondary congested:no\n" +
            "    volume:0 replication:Established peer-disk:UpToDate resync-suspended:no out-of-sync:0\n" +
            "\n",
            Text(status, verbose: true));
    }

    [Fact]
    public void Verbose_shows_peer_devices_of_an_unconnected_peer()
    {
        Assert.Equal(
            "r0 node-id:0 role:Secondary suspended:no\n" +
            "  volume:0 minor:0 disk:UpToDate quorum:yes blocked:no\n" +
            "  beta node-id:1 connection:StandAlone congested:no\n" +
            "    volume:0 replication:Off peer-disk:DUnknown resync-suspended:no out-of-sync:0\n" +
            "\n",
            Text(WithStandAlonePeer(), verbose: true));
    }

    [Fact]
    public void Open_device_of_a_Primary_says_so()
    {
        var status = LonePrimary() with { Devices = [Device(0, DiskState.UpToDate, open: true)] };
        Assert.Equal("r0 role:Primary\n  disk:UpToDate open:yes\n\n", Text(status));
    }

    [Fact]
    public void Suspended_resource_says_so_without_verbose()
    {
        Assert.Equal("r0 role:Primary suspended:user\n  disk:UpToDate\n\n", Text(LonePrimary() with { Suspended = true, SuspendedUser = true }));
        Assert.Equal("r0 role:Primary suspended:user,fencing\n  disk:UpToDate\n\n",
            Text(LonePrimary() with { Suspended = true, SuspendedUser = true, SuspendedFencing = true }));
    }

    [Fact]
    public void Several_resources_are_separated_by_a_blank_line()
    {
        var second = new ResourceStatus { Name = "r1", Role = Role.Secondary, Devices = [Device(0, DiskState.Diskless)] };
        Assert.Equal(
            "r0 role:Primary\n  disk:UpToDate\n\nr1 role:Secondary\n  disk:Diskless\n\n",
            StatusText.Format([LonePrimary(), second], verbose: false));
        Assert.Equal("", StatusText.Format([], verbose: false));
    }
}

// drbdsetup events2 lines: the initial dump, the exact key:value layout of each object, and the
// create/change/destroy lines that describe a transition between two status snapshots.
using Redundancy.Block.Engine.States;
using Redundancy.Block.Engine.Status;
using static Redundancy.Block.Engine.Tests.Status.StatusSamples;

namespace Redundancy.Block.Engine.Tests.Status;

public class Events2Tests
{
    private const string ResourceLine = "resource name:r0 role:Primary suspended:no write-ordering:flush";
    private const string ConnectionLine = "connection name:r0 peer-node-id:1 conn-name:beta connection:Connected role:Secondary";
    private const string DeviceLine = "device name:r0 volume:0 minor:0 disk:UpToDate client:no open:no quorum:yes";
    private const string PeerDeviceLine = "peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no";

    [Fact]
    public void Dump_lists_every_object_then_ends_with_exists_dash()
    {
        Assert.Equal(
            [
                "exists " + ResourceLine,
                "exists " + ConnectionLine,
                "exists " + DeviceLine,
                "exists " + PeerDeviceLine,
                "exists -",
            ],
            Events2.Dump([Established()]));
    }

    [Fact]
    public void Dump_of_nothing_is_just_the_end_marker()
    {
        Assert.Equal(["exists -"], Events2.Dump([]));
        Assert.Equal("exists -", Events2.EndOfDump);
    }

    [Fact]
    public void Dump_of_several_resources_keeps_each_resource_together()
    {
        var r1 = new ResourceStatus { Name = "r1", Role = Role.Secondary, Devices = [Device(0, DiskState.Inconsistent)] };
        string[] lines = [.. Events2.Dump([LonePrimary(), r1])];
        Assert.Equal(
            [
                "exists " + ResourceLine,
                "exists " + DeviceLine,
                "exists resource name:r1 role:Secondary suspended:no write-ordering:flush",
                "exists device name:r1 volume:0 minor:0 disk:Inconsistent client:no open:no quorum:yes",
                "exists -",
            ],
            lines);
    }

    [Fact]
    public void Resyncing_peer_device_carries_done()
    {
        var r = Syncing();
        var c = r.Connections[0];
        Assert.Equal(
            "change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncSource peer-disk:Inconsistent peer-client:no resync-suspended:no done:37.50",
            Events2.PeerDevice("change", r, c, c.PeerDevices[0]));
    }

    [Fact]
    public void Unconnected_peer_lines_show_Unknown_role_and_DUnknown_disk()
    {
        var r = WithStandAlonePeer();
        var c = r.Connections[0];
        Assert.Equal("exists connection name:r0 peer-node-id:1 conn-name:beta connection:StandAlone role:Unknown", Events2.Connection("exists", r, c));
        Assert.Equal(
            "exists peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:Off peer-disk:DUnknown peer-client:no resync-suspended:no",
            Events2.PeerDevice("exists", r, c, c.PeerDevices[0]));
    }

    [Fact]
    public void Diff_of_equal_snapshots_is_empty()
    {
        Assert.Empty(Events2.Diff(Established(), Established()));
        Assert.Empty(Events2.Diff(null, null));
    }

    [Fact]
    public void Diff_reports_only_the_lines_that_changed()
    {
        Assert.Equal(
            ["change peer-device name:r0 peer-node-id:1 conn-name:beta volume:0 replication:SyncSource peer-disk:Inconsistent peer-client:no resync-suspended:no done:37.50"],
            Events2.Diff(Established(), Syncing()));

        var demoted = Established() with { Role = Role.Secondary };
        Assert.Equal(["change resource name:r0 role:Secondary suspended:no write-ordering:flush"], Events2.Diff(Established(), demoted));

        var detached = Established() with { Devices = [Device(0, DiskState.Detaching)] };
        Assert.Equal(["change device name:r0 volume:0 minor:0 disk:Detaching client:no open:no quorum:yes"], Events2.Diff(Established(), detached));
    }

    [Fact]
    public void Diff_from_nothing_creates_every_object()
    {
        Assert.Equal(
            ["create " + ResourceLine, "create " + ConnectionLine, "create " + DeviceLine, "create " + PeerDeviceLine],
            Events2.Diff(null, Established()));
    }

    [Fact]
    public void Diff_to_nothing_destroys_children_before_the_resource()
    {
        string[] lines = [.. Events2.Diff(Established(), null)];
        Assert.Equal(4, lines.Length);
        Assert.All(lines, l => Assert.StartsWith("destroy ", l, StringComparison.Ordinal));
        Assert.Equal("destroy " + PeerDeviceLine, lines[0]);
        Assert.Equal("destroy " + ResourceLine, lines[^1]);
        Assert.Contains("destroy " + ConnectionLine, lines);
        Assert.Contains("destroy " + DeviceLine, lines);
    }

    /// <summary>
    /// drbdsetup reports a connection (and its peer devices) that appears during `adjust`/`new-peer`
    /// with `create`, not `change`: a listener keyed by object must learn the object is new.
    /// </summary>
    [Fact]
    public void Diff_reports_a_new_connection_as_created()
    {
        Assert.Equal(
            ["create " + ConnectionLine, "create " + PeerDeviceLine],
            Events2.Diff(LonePrimary(), Established()));
    }

    /// <summary>drbdsetup reports a removed connection (`del-peer`) with `destroy` lines, peer devices first.</summary>
    [Fact]
    public void Diff_reports_a_removed_connection_as_destroyed()
    {
        Assert.Equal(
            ["destroy " + PeerDeviceLine, "destroy " + ConnectionLine],
            Events2.Diff(Established(), LonePrimary()));
    }
}

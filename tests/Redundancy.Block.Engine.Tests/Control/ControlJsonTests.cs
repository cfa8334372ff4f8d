// The control protocol's JSON lines (rbadm ⇄ rbagent) and drbdsetup-compatible `status --json`.
using System.Text.Json;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Engine.Status;

namespace Redundancy.Block.Engine.Tests.Control;

public class ControlJsonTests
{
    private static ResourceDefinition FullDefinition() => new()
    {
        Name = "r0",
        Nodes =
        [
            new NodeDefinition
            {
                Name = "alpha",
                NodeId = 0,
                Aliases = ["alpha.example", "alpha-2"],
                Address = "127.0.0.1:7788",
                NbdAddress = "127.0.0.1:10809",
                Volumes =
                [
                    new VolumeDefinition { Number = 0, Device = "/dev/nbd0 minor 0", Disk = "/var/lib/redundancy/alpha.img", MetaDisk = "internal" },
                    new VolumeDefinition
                    {
                        Number = 1,
                        Device = "/dev/nbd1",
                        Disk = "/var/lib/redundancy/alpha-1.img",
                        MetaDisk = "/var/lib/redundancy/alpha-md.img",
                        MetaIndex = 2,
                        DiskOptions = new Dictionary<string, string> { ["on-io-error"] = "detach", ["resync-rate"] = "10M" },
                    },
                ],
            },
            new NodeDefinition
            {
                Name = "beta",
                NodeId = 1,
                Address = "[::1]:7789",
                AddressFamily = "ipv6",
                NbdAddress = "unix:/run/rb/beta.sock",
                Volumes = [new VolumeDefinition { Number = 0, Disk = null }],
            },
        ],
        Options = new Dictionary<string, string> { ["auto-promote"] = "no", ["quorum"] = "off" },
        Net = new Dictionary<string, string> { ["protocol"] = "C", ["shared-secret"] = "change \"me\"", ["after-sb-0pri"] = "discard-zero-changes" },
        Disk = new Dictionary<string, string> { ["al-extents"] = "3389" },
        Startup = new Dictionary<string, string> { ["wfc-timeout"] = "5" },
        Handlers = new Dictionary<string, string> { ["split-brain"] = "/usr/lib/drbd/notify-split-brain.sh root" },
        Ignored = [new IgnoredKeyword("usage-count", "global", "no usage statistics are sent")],
    };

    [Fact]
    public void Request_with_a_full_definition_round_trips()
    {
        var request = new ControlRequest { Command = "up", Resource = "r0", Volume = 1, Definition = FullDefinition(), Force = true, Now = true };
        string line = ControlJson.Serialize(request);
        Assert.DoesNotContain('\n', line); // one request per line

        var back = ControlJson.ParseRequest(line, out string error);

        Assert.NotNull(back);
        Assert.Equal("", error);
        Assert.Equal("up", back.Command);
        Assert.Equal("r0", back.Resource);
        Assert.Equal(1, back.Volume);
        Assert.True(back.Force);
        Assert.True(back.Now);
        AssertSameDefinition(request.Definition!, back.Definition!);
    }

    private static void AssertSameDefinition(ResourceDefinition expected, ResourceDefinition actual)
    {
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.Options, actual.Options);
        Assert.Equal(expected.Net, actual.Net);
        Assert.Equal(expected.Disk, actual.Disk);
        Assert.Equal(expected.Startup, actual.Startup);
        Assert.Equal(expected.Handlers, actual.Handlers);
        Assert.Equal(expected.Ignored, actual.Ignored);
        Assert.Equal(expected.Nodes.Count, actual.Nodes.Count);
        for (int n = 0; n < expected.Nodes.Count; n++)
        {
            NodeDefinition e = expected.Nodes[n], a = actual.Nodes[n];
            Assert.Equal((e.Name, e.NodeId, e.Address, e.AddressFamily, e.NbdAddress), (a.Name, a.NodeId, a.Address, a.AddressFamily, a.NbdAddress));
            Assert.Equal(e.Aliases, a.Aliases);
            Assert.Equal(e.Volumes.Count, a.Volumes.Count);
            for (int v = 0; v < e.Volumes.Count; v++)
            {
                VolumeDefinition ev = e.Volumes[v], av = a.Volumes[v];
                Assert.Equal((ev.Number, ev.Device, ev.Disk, ev.MetaDisk, ev.MetaIndex), (av.Number, av.Device, av.Disk, av.MetaDisk, av.MetaIndex));
                Assert.Equal((ev.DevicePath, ev.DeviceMinor, ev.IsInternalMetadata), (av.DevicePath, av.DeviceMinor, av.IsInternalMetadata));
                Assert.Equal(ev.DiskOptions, av.DiskOptions);
            }
        }
        Assert.Same(actual.Nodes[1], actual.FindNode("beta"));
        Assert.Same(actual.Nodes[0], actual.FindNode("alpha-2"));
    }

    [Fact]
    public void Minimal_request_omits_what_is_not_set()
    {
        string line = ControlJson.Serialize(new ControlRequest { Command = "status" });
        using var doc = JsonDocument.Parse(line);
        Assert.Equal("status", doc.RootElement.GetProperty("command").GetString());
        Assert.False(doc.RootElement.TryGetProperty("resource", out _));
        Assert.False(doc.RootElement.TryGetProperty("volume", out _));
        Assert.False(doc.RootElement.TryGetProperty("definition", out _));

        var back = ControlJson.ParseRequest(line, out _);
        Assert.NotNull(back);
        Assert.Null(back.Resource);
        Assert.Null(back.Volume);
        Assert.Null(back.Definition);
        Assert.False(back.Force);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("[1,2]")]
    [InlineData("{\"resource\":\"r0\"}")] // command is required
    [InlineData("{\"command\":5}")]
    [InlineData("{\"command\":\"up\",\"volume\":99999999999}")]
    [InlineData("{\"command\":\"up\",\"force\":\"yes\"}")]
    [InlineData("{\"command\":\"up\"}{\"command\":\"down\"}")]
    [InlineData("{\"command\":\"up\",\"definition\":{\"name\":\"r0\"}}")] // definition without nodes
    public void Malformed_request_lines_are_refused_with_a_reason(string line)
    {
        Assert.Null(ControlJson.ParseRequest(line, out string error));
        Assert.StartsWith("malformed request: ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Json_null_is_an_empty_request()
    {
        Assert.Null(ControlJson.ParseRequest("null", out string error));
        Assert.Equal("empty request", error);
    }

    [Fact]
    public void Response_round_trips_with_status()
    {
        var response = new ControlResponse { Ok = true, Status = [Syncing()], Done = false, Line = "exists -" };
        string line = ControlJson.Serialize(response);
        Assert.DoesNotContain('\n', line);
        Assert.Contains("\"role\":\"Primary\"", line, StringComparison.Ordinal);

        var back = ControlJson.ParseResponse(line)!;
        Assert.True(back.Ok);
        Assert.False(back.Done);
        Assert.Equal("exists -", back.Line);
        var status = Assert.Single(back.Status!);
        Assert.Equal(Role.Primary, status.Role);
        Assert.Equal(DiskState.UpToDate, status.Devices[0].DiskState);
        var peerDevice = status.Connections[0].PeerDevices[0];
        Assert.Equal(ReplicationState.SyncSource, peerDevice.ReplicationState);
        Assert.Equal(DiskState.Inconsistent, peerDevice.PeerDiskState);
        Assert.Equal(40_960, peerDevice.OutOfSyncKib);
        Assert.Equal(37.5, peerDevice.PercentInSync);
    }

    [Fact]
    public void Failure_response_carries_reason_and_exit_code()
    {
        string reason = StateChangeResults.Describe(StateChangeResult.NoUpToDateDisk);
        var back = ControlJson.ParseResponse(ControlJson.Serialize(ControlResponse.Failure(reason)))!;
        Assert.False(back.Ok);
        Assert.Equal(reason, back.Error);
        Assert.Equal(ExitCodes.StateChangeFailed, back.ExitCode);
        Assert.True(back.Done);

        var ok = ControlJson.ParseResponse(ControlJson.Serialize(ControlResponse.Success()))!;
        Assert.True(ok.Ok);
        Assert.Null(ok.Error);
        Assert.Equal(ExitCodes.Success, ok.ExitCode);
    }

    [Fact]
    public void Status_json_uses_drbdsetup_names_and_values()
    {
        string json = ControlJson.FormatStatus([Syncing()]);
        Assert.Contains('\n', json); // indented, as drbdsetup prints it

        using var doc = JsonDocument.Parse(json);
        var resource = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal("r0", resource.GetProperty("name").GetString());
        Assert.Equal(0, resource.GetProperty("node-id").GetInt32());
        Assert.Equal("Primary", resource.GetProperty("role").GetString());
        Assert.False(resource.GetProperty("suspended").GetBoolean());
        Assert.Equal("flush", resource.GetProperty("write-ordering").GetString());

        var device = resource.GetProperty("devices")[0];
        Assert.Equal(0, device.GetProperty("volume").GetInt32());
        Assert.Equal("UpToDate", device.GetProperty("disk-state").GetString());
        Assert.Equal(65_536, device.GetProperty("size").GetInt64());
        Assert.True(device.GetProperty("quorum").GetBoolean());
        Assert.False(device.TryGetProperty("nbd-export", out _)); // null extensions are left out

        var connection = resource.GetProperty("connections")[0];
        Assert.Equal(1, connection.GetProperty("peer-node-id").GetInt32());
        Assert.Equal("beta", connection.GetProperty("name").GetString());
        Assert.Equal("Connected", connection.GetProperty("connection-state").GetString());
        Assert.Equal("Secondary", connection.GetProperty("peer-role").GetString());

        var peerDevice = connection.GetProperty("peer_devices")[0];
        Assert.Equal(0, peerDevice.GetProperty("volume").GetInt32());
        Assert.Equal("SyncSource", peerDevice.GetProperty("replication-state").GetString());
        Assert.Equal("Inconsistent", peerDevice.GetProperty("peer-disk-state").GetString());
        Assert.Equal(40_960, peerDevice.GetProperty("out-of-sync").GetInt64());
        Assert.Equal(37.5, peerDevice.GetProperty("percent-in-sync").GetDouble());
    }

    [Fact]
    public void Status_json_of_no_resources_is_an_empty_array()
    {
        using var doc = JsonDocument.Parse(ControlJson.FormatStatus([]));
        Assert.Equal(JsonValueKind.Array, doc.RootElement.ValueKind);
        Assert.Equal(0, doc.RootElement.GetArrayLength());
    }

    private static ResourceStatus Syncing() => new()
    {
        Name = "r0",
        NodeId = 0,
        Role = Role.Primary,
        Devices = [new DeviceStatus { Volume = 0, Minor = 0, DiskState = DiskState.UpToDate, SizeKib = 65_536 }],
        Connections =
        [
            new ConnectionStatus
            {
                Name = "beta",
                PeerNodeId = 1,
                ConnectionState = ConnectionState.Connected,
                PeerRole = Role.Secondary,
                PeerDevices =
                [
                    new PeerDeviceStatus
                    {
                        Volume = 0,
                        ReplicationState = ReplicationState.SyncSource,
                        PeerDiskState = DiskState.Inconsistent,
                        OutOfSyncKib = 40_960,
                        PercentInSync = 37.5,
                    },
                ],
            },
        ],
    };
}

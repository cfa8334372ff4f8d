// Handlers get the variables drbdadm sets, so DRBD's own scripts work unchanged: a volume's handler
// its volume, minor and lower-level disk; a resource's handler the lists of all of them; DRBD_CONF
// the configuration file the resource came from.
using Redundancy.Block.Agent.Resources;
using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Agent.Tests.Resources;

public sealed class HandlerEnvironmentTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("rb-handler-env-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    private ResourceDefinition Load()
    {
        string path = Path.Combine(directory, "r0.res");
        File.WriteAllText(path, """
            resource r0 {
              on alpha { node-id 0; address 10.1.1.31:7789;
                volume 0 { device minor 7; disk /dev/vg/a0; meta-disk internal; }
                volume 1 { device /dev/drbd12; disk /dev/vg/a1; meta-disk internal; } }
              on beta { node-id 1; address 10.1.1.32:7789;
                volume 0 { disk /dev/vg/b0; meta-disk internal; }
                volume 1 { disk /dev/vg/b1; meta-disk internal; } }
            }
            """);
        return ConfigParser.Parse(path).Resources.Single();
    }

    [Fact]
    public void A_volume_handler_gets_its_volume_minor_disk_and_peer()
    {
        var definition = Load();
        var environment = HandlerEnvironment.For(definition, definition.FindNode("alpha")!, volume: 1, peerNodeId: 1);

        Assert.Equal("r0", environment["DRBD_RESOURCE"]);
        Assert.Equal(Path.Combine(directory, "r0.res"), environment["DRBD_CONF"]);
        Assert.Equal("1", environment["DRBD_VOLUME"]);
        Assert.Equal("12", environment["DRBD_MINOR"]);
        Assert.Equal("12", environment["DRBD_MINOR_1"]);
        Assert.Equal("/dev/vg/a1", environment["DRBD_LL_DISK"]);
        Assert.Equal("/dev/vg/a1", environment["DRBD_BACKING_DEV"]);
        Assert.Equal("/dev/vg/a1", environment["DRBD_BACKING_DEV_1"]);
        Assert.False(environment.ContainsKey("DRBD_MINOR_0"), "only the handler's own volume");
        Assert.Equal("0", environment["DRBD_MY_NODE_ID"]);
        Assert.Equal("10.1.1.31", environment["DRBD_MY_ADDRESS"]);
        Assert.Equal("ipv4", environment["DRBD_MY_AF"]);
        Assert.Equal("1", environment["DRBD_PEER_NODE_ID"]);
        Assert.Equal("10.1.1.32", environment["DRBD_PEER_ADDRESS"]);
        Assert.Equal("ipv4", environment["DRBD_PEER_AF"]);
        Assert.Equal("beta", environment["DRBD_PEERS"]);
        Assert.Equal("beta", environment["DRBD_PEER"]);
        Assert.Equal("alpha", environment["DRBD_NODE_ID_0"]);
        Assert.Equal("beta", environment["DRBD_NODE_ID_1"]);
    }

    [Fact]
    public void A_resource_handler_gets_the_lists_of_all_volumes()
    {
        var definition = Load();
        var environment = HandlerEnvironment.For(definition, definition.FindNode("alpha")!, volume: -1, peerNodeId: 1);

        Assert.Equal("0 1", environment["DRBD_VOLUME"]);
        Assert.Equal("7 12", environment["DRBD_MINOR"]);
        Assert.Equal("/dev/vg/a0 /dev/vg/a1", environment["DRBD_LL_DISK"]);
        Assert.Equal("7", environment["DRBD_MINOR_0"]);
        Assert.Equal("/dev/vg/a0", environment["DRBD_BACKING_DEV_0"]);
        Assert.Equal("12", environment["DRBD_MINOR_1"]);
    }

    [Fact]
    public void Without_a_peer_or_a_file_those_variables_are_absent_and_the_minor_is_the_volume()
    {
        var definition = ConfigParser.ParseText("""
            resource r0 { on alpha { node-id 0; address 127.0.0.1:7789; volume 3 { disk /tmp/d3; meta-disk internal; } } }
            """, "<text>").Resources.Single();
        var environment = HandlerEnvironment.For(definition, definition.FindNode("alpha")!, volume: 3, peerNodeId: -1);

        Assert.Equal("3", environment["DRBD_MINOR"]);
        Assert.False(environment.ContainsKey("DRBD_CONF"), "a configuration read from text has no file");
        Assert.False(environment.ContainsKey("DRBD_PEER_NODE_ID"), "no peer");
        Assert.False(environment.ContainsKey("DRBD_PEER"), "no peer");
    }
}

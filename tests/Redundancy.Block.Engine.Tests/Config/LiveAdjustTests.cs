using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Engine.Tests.Config;

public class LiveAdjustTests
{
    private static ResourceDefinition Parse(string net = "", string disk = "", string volumeDisk = "", string betaAddress = "127.0.0.2:7789") =>
        ConfigParser.ParseText($$"""
            resource r0 {
              net { protocol C; {{net}} }
              disk { resync-rate 10M; {{disk}} }
              handlers { split-brain "/bin/true"; }
              on alpha { node-id 0; address 127.0.0.1:7789; volume 0 { disk /dev/loop0; meta-disk internal; disk { {{volumeDisk}} } } }
              on beta  { node-id 1; address {{betaAddress}}; volume 0 { disk /dev/loop1; meta-disk internal; } }
            }
            """, "t.conf").Resources.Single();

    [Fact]
    public void Net_options_and_the_resync_rate_apply_to_running_replication()
    {
        Assert.Empty(LiveAdjust.RestartNeededFor(Parse(), Parse(net: "ping-int 3; after-sb-0pri discard-zero-changes;")));
        Assert.Empty(LiveAdjust.RestartNeededFor(Parse(), Parse(disk: "c-plan-ahead 0; c-max-rate 50M; on-io-error pass_on;")));
        Assert.Empty(LiveAdjust.RestartNeededFor(Parse(), Parse(volumeDisk: "resync-rate 1M;")));
    }

    [Fact]
    public void Options_read_at_attach_and_the_nodes_need_a_restart()
    {
        Assert.Equal(["direct-io"], LiveAdjust.RestartNeededFor(Parse(), Parse(disk: "direct-io yes;")));
        Assert.Equal(["al-updates"], LiveAdjust.RestartNeededFor(Parse(), Parse(volumeDisk: "al-updates no;")));
        Assert.Equal(["the nodes or volumes"], LiveAdjust.RestartNeededFor(Parse(), Parse(betaAddress: "127.0.0.3:7789")));
    }
}

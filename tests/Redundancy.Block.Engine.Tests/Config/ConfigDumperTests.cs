// `rbadm dump` output: drbd.conf syntax that parses back to the same resolved resource.
using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Engine.Tests.Config;

public class ConfigDumperTests
{
    public static TheoryData<string, string> Configs => new()
    {
        { ConfigParserTests.Minimal, "r0" },
        { ConfigParserTests.Drbd9, "data" },
        { ConfigParserTests.Drbd84, "r0" },
        {
            """
            resource "odd" {
              handlers { split-brain "/bin/echo \"split\" \\ done"; }
              net { shared-secret "with space;{}#"; }
              startup { become-primary-on a b; }
              on a b { node-id 3; address ipv6 [::1]:7000; nbd-address unix:/run/rb/odd.sock;
                       volume 2 { device minor 7; disk "/srv/a b.img"; meta-disk /dev/meta[3]; } }
              on c { node-id 9; address 127.0.0.1:7001; volume 2 { disk none; } }
            }
            """, "odd"
        },
        {
            // A quoted name may hold what the syntax does not allow bare (found by scripts/fuzz config).
            """
            resource "odd{name};#" {
              on a { node-id 1; address 127.0.0.1:7000; volume 0 { disk /dev/a; meta-disk internal; } }
              on b { node-id 2; address 127.0.0.1:7001; volume 0 { disk /dev/b; meta-disk internal; } }
            }
            """, "odd{name};#"
        },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void Dump_parses_back_to_the_same_resource(string text, string name)
    {
        var original = ConfigParser.ParseText(text, "orig.res").Resolve(name);
        string dumped = ConfigDumper.Dump(original);
        var reparsed = ConfigParser.ParseText(dumped, "dump.res").Resolve(name);

        AssertSameResource(original, reparsed);
        Assert.Equal(Body(dumped), Body(ConfigDumper.Dump(reparsed)));
    }

    [Fact]
    public void Dump_renders_drbd_syntax_and_lists_ignored_keywords()
    {
        var r = ConfigParser.ParseText(ConfigParserTests.Drbd84, "r0.res").Resolve("r0");
        string expected = """
            resource r0 {
                net {
                    protocol C;
                    verify-alg sha1;
                    csums-alg md5;
                    fencing resource-only;
                    allow-two-primaries yes;
                    after-sb-0pri discard-least-changes;
                }
                disk {
                    resync-rate 40M;
                    al-extents 3389;
                    on-io-error detach;
                    disk-flushes no;
                }
                startup {
                    wfc-timeout 15;
                    become-primary-on both;
                }
                on node-a {
                    node-id 0;
                    address ipv4 127.0.0.1:7788;
                    nbd-address 127.0.0.1:10809;
                    volume 0 {
                        device /dev/drbd0;
                        disk /dev/sdb1;
                        meta-disk internal;
                    }
                }
                on node-b {
                    node-id 1;
                    address ipv4 127.0.0.1:7789;
                    nbd-address 127.0.0.1:10809;
                    volume 0 {
                        device /dev/drbd0;
                        disk /dev/sdb1;
                        meta-disk /dev/sdc1;
                    }
                }
            }
            # ignored: become-primary-on (r0.res:3): promotion at boot is left to the cluster manager

            """;
        Assert.Equal(expected, ConfigDumper.Dump(r));
    }

    private static string Body(string dump) =>
        string.Join('\n', dump.Split('\n').Where(l => !l.StartsWith("# ignored:", StringComparison.Ordinal)));

    private static void AssertSameResource(ResourceDefinition expected, ResourceDefinition actual)
    {
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.Options, actual.Options);
        Assert.Equal(expected.Net, actual.Net);
        Assert.Equal(expected.Disk, actual.Disk);
        Assert.Equal(expected.Startup, actual.Startup);
        Assert.Equal(expected.Handlers, actual.Handlers);
        // Option-level ignores come back (same keyword and reason); structural ones survive only as comments.
        Assert.Equal(
            expected.Ignored.Where(i => actual.Ignored.Any(a => a.Keyword == i.Keyword)).Select(i => (i.Keyword, i.Reason)),
            actual.Ignored.Select(i => (i.Keyword, i.Reason)));
        Assert.Equal(expected.Nodes.Count, actual.Nodes.Count);
        foreach (var (e, a) in expected.Nodes.Zip(actual.Nodes))
        {
            Assert.Equal(e with { Aliases = [], Volumes = [] }, a with { Aliases = [], Volumes = [] });
            Assert.Equal(e.Aliases, a.Aliases);
            Assert.Equal(e.Volumes.Count, a.Volumes.Count);
            foreach (var (ev, av) in e.Volumes.Zip(a.Volumes))
            {
                Assert.Equal(ev with { DiskOptions = ResourceDefinition.Empty }, av with { DiskOptions = ResourceDefinition.Empty });
                Assert.Equal(ev.DiskOptions, av.DiskOptions);
            }
        }
    }
}

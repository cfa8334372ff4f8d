// Parsing and resolving whole configurations: the design's minimal example, a realistic DRBD 9
// config and an 8.4 config as real clusters still carry them.
using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Engine.Tests.Config;

public class ConfigParserTests
{
    internal const string Minimal = """
        resource r0 {
          net { protocol C; cram-hmac-alg sha256; shared-secret "change-me";
                after-sb-0pri discard-zero-changes; after-sb-1pri discard-secondary;
                after-sb-2pri disconnect; }
          on alpha { node-id 0; address 127.0.0.1:7788; nbd-address 127.0.0.1:10809;
                     volume 0 { disk /var/lib/redundancy/alpha.img; meta-disk internal; } }
          on beta  { node-id 1; address 127.0.0.1:7789; nbd-address 127.0.0.1:10810;
                     volume 0 { disk /var/lib/redundancy/beta.img;  meta-disk internal; } }
        }
        """;

    internal const string Drbd9 = """
        # /etc/drbd.conf as the DRBD 9 packages write it
        global { usage-count no; udev-always-use-vnr; }
        common {
          options { auto-promote yes; quorum majority; on-no-quorum io-error; cpu-mask ff; }
          net { protocol B; timeout 90; max-buffers 8000; sndbuf-size 0; }
          disk { on-io-error detach; resync-rate 100M; c-plan-ahead 0; read-balancing prefer-local; }
          startup { wfc-timeout 120; degr-wfc-timeout 60; }
          handlers {
            split-brain "/usr/lib/drbd/notify-split-brain.sh root";
            quorum-lost "/usr/lib/drbd/notify-quorum-lost.sh root";
          }
        }
        resource data {
          net { protocol C; verify-alg sha256; }
          disk { al-extents 6007; }
          volume 0 { device minor 0; disk /dev/vg/data0; meta-disk internal; }
          volume 1 { device /dev/drbd1 minor 1; disk /dev/vg/data1; meta-disk /dev/vg/meta [0];
                     disk { resync-rate 20M; } }
          on alpha { node-id 0; address ipv4 127.0.0.1:7000; }
          on beta  { node-id 1; address 127.0.0.2:7000; nbd-address 127.0.0.2:10809; }
          on gamma { node-id 2; address 127.0.0.3:7000; volume 1 { disk none; } }
          connection-mesh { hosts alpha beta gamma; net { ping-timeout 10; } }
        }
        """;

    internal const string Drbd84 = """
        resource r0 {
          protocol C;
          startup { wfc-timeout 15; become-primary-on both; }
          syncer { rate 40M; al-extents 3389; verify-alg sha1; csums-alg md5; }
          disk { on-io-error detach; fencing resource-only; no-disk-flushes; }
          net { allow-two-primaries; after-sb-0pri discard-least-changes; }
          on node-a {
            device /dev/drbd0;
            disk /dev/sdb1;
            address 127.0.0.1:7788;
            meta-disk internal;
          }
          on node-b {
            device /dev/drbd0;
            disk /dev/sdb1;
            address 127.0.0.1:7789;
            flexible-meta-disk /dev/sdc1;
          }
        }
        """;

    [Fact]
    public void Design_minimal_example_resolves()
    {
        var config = ConfigParser.ParseText(Minimal, "r0.res");
        var r = config.Resolve("r0");
        Assert.Equal('C', r.Protocol());
        Assert.Equal("change-me", r.SharedSecret());
        Assert.Equal("sha256", r.CramHmacAlg());
        Assert.Equal("discard-zero-changes", r.AfterSb0Pri());
        Assert.Equal("discard-secondary", r.AfterSb1Pri());
        Assert.Equal("disconnect", r.AfterSb2Pri());
        Assert.Equal(["alpha", "beta"], r.Nodes.Select(n => n.Name));
        var beta = r.FindNode("beta")!;
        Assert.Equal(1, beta.NodeId);
        Assert.Equal("127.0.0.1:7789", beta.Address);
        Assert.Equal("127.0.0.1:10810", beta.NbdAddress);
        var volume = Assert.Single(beta.Volumes);
        Assert.Equal(0, volume.Number);
        Assert.Equal("/var/lib/redundancy/beta.img", volume.Disk);
        Assert.True(volume.IsInternalMetadata);
        Assert.Null(volume.Device);
        Assert.Empty(r.Ignored);
        Assert.True(config.TryGetResource("r0", out _));
        Assert.False(config.TryGetResource("r1", out _));
    }

    [Fact]
    public void Drbd9_config_inherits_common_and_merges_mesh_and_volumes()
    {
        var config = ConfigParser.ParseText(Drbd9, "drbd.conf");
        Assert.Equal("no", config.GlobalOptions["usage-count"]);
        Assert.Equal("yes", config.GlobalOptions["udev-always-use-vnr"]);
        var r = config.Resolve("data");
        Assert.Equal('C', r.Protocol());                      // resource overrides common
        Assert.Equal(9000, r.TimeoutMs());                    // inherited from common, tenths of a second
        Assert.Equal(1000, r.PingTimeoutMs());                // from connection-mesh net
        Assert.Equal("sha256", r.VerifyAlg());
        Assert.Equal("majority", r.Quorum());
        Assert.Equal("io-error", r.OnNoQuorum());
        Assert.Equal(102400, r.ResyncRateKibPerSec());
        Assert.Equal(6007, r.AlExtents());
        Assert.Equal(0, r.CPlanAheadMs());
        Assert.Equal(120, r.WfcTimeoutSec());
        Assert.Equal("/usr/lib/drbd/notify-split-brain.sh root", r.Handler("split-brain"));
        Assert.Equal(["alpha", "beta", "gamma"], r.Nodes.Select(n => n.Name));
        Assert.Equal(NodeDefinition.DefaultNbdAddress, r.FindNode("alpha")!.NbdAddress);
        Assert.Equal("127.0.0.2:10809", r.FindNode("beta")!.NbdAddress);

        var gamma = r.FindNode("gamma")!;
        Assert.Equal(2, gamma.NodeId);
        Assert.Equal([0, 1], gamma.Volumes.Select(v => v.Number));
        Assert.Equal("/dev/vg/data0", gamma.Volumes[0].Disk);
        Assert.Null(gamma.Volumes[1].Disk);                   // diskless on gamma only
        Assert.Equal("/dev/drbd1 minor 1", gamma.Volumes[1].Device);
        Assert.Equal("/dev/drbd1", gamma.Volumes[1].DevicePath);
        Assert.Equal(1, gamma.Volumes[1].DeviceMinor);
        Assert.Equal("/dev/vg/meta", gamma.Volumes[1].MetaDisk);
        Assert.Equal(0, gamma.Volumes[1].MetaIndex);
        Assert.Null(gamma.Volumes[0].DevicePath);
        Assert.Equal(0, gamma.Volumes[0].DeviceMinor);

        var alpha = r.FindNode("alpha")!;
        Assert.Equal(20480, r.ResyncRateKibPerSec(alpha.Volumes[1]));   // per-volume override
        Assert.Equal(102400, r.ResyncRateKibPerSec(alpha.Volumes[0]));

        var ignored = r.Ignored.Select(i => i.Keyword).ToHashSet();
        // sndbuf-size bounds protocol A; wfc-timeout and degr-wfc-timeout are wait-connect's timeouts
        Assert.Equal(new HashSet<string> { "cpu-mask", "max-buffers", "read-balancing", "auto-promote", "quorum", "on-no-quorum" }, ignored);
        Assert.Contains(r.Ignored, i => i.Keyword == "cpu-mask" && i.Location == "drbd.conf:4");
        Assert.Contains(config.Ignored, i => i.Keyword == "usage-count" && i.Location == "drbd.conf:2");
    }

    [Fact]
    public void Drbd84_config_maps_syncer_protocol_and_implicit_volume()
    {
        var r = ConfigParser.ParseText(Drbd84, "r0.res").Resolve("r0");
        Assert.Equal("C", r.Net["protocol"]);
        Assert.Equal("40M", r.Disk["resync-rate"]);
        Assert.Equal(40960, r.ResyncRateKibPerSec());
        Assert.Equal("3389", r.Disk["al-extents"]);
        Assert.Equal("sha1", r.Net["verify-alg"]);
        Assert.Equal("md5", r.Net["csums-alg"]);
        Assert.Equal("resource-only", r.Net["fencing"]);      // 8.4 disk fencing lands in DRBD 9's net
        Assert.False(r.Disk.ContainsKey("fencing"));
        Assert.Equal("no", r.Disk["disk-flushes"]);          // 8.3 no-KEYWORD spelling
        Assert.False(r.DiskFlushes());
        Assert.True(r.AllowTwoPrimaries());
        Assert.Equal("detach", r.OnIoError());
        Assert.Equal([0, 1], r.Nodes.Select(n => n.NodeId)); // no node-id: section order
        var a = r.FindNode("node-a")!;
        var volume = Assert.Single(a.Volumes);
        Assert.Equal((0, "/dev/drbd0", "/dev/sdb1", "internal"), (volume.Number, volume.Device!, volume.Disk!, volume.MetaDisk));
        var b = r.FindNode("node-b")!.Volumes[0];
        Assert.Equal("/dev/sdc1", b.MetaDisk);
        Assert.Null(b.MetaIndex);
        Assert.Contains(r.Ignored, i => i.Keyword == "become-primary-on" && i.Location == "r0.res:3");
    }

    [Fact]
    public void Resource_level_statements_are_inherited_and_host_overrides()
    {
        const string text = """
            resource r0 {
              device /dev/nbd0; disk /srv/shared.img; meta-disk internal;
              nbd-address unix:/run/rb/r0.sock;
              on a { address 127.0.0.1:7000; disk /srv/a.img; }
              on b { address 127.0.0.1:7001; nbd-address 127.0.0.1:10900; }
            }
            """;
        var r = ConfigParser.ParseText(text, "t.res").Resolve("r0");
        Assert.Equal("/srv/a.img", r.FindNode("a")!.Volumes[0].Disk);
        Assert.Equal("/srv/shared.img", r.FindNode("b")!.Volumes[0].Disk);
        Assert.Equal("/dev/nbd0", r.FindNode("b")!.Volumes[0].Device);
        Assert.Equal("unix:/run/rb/r0.sock", r.FindNode("a")!.NbdAddress);
        Assert.Equal("127.0.0.1:10900", r.FindNode("b")!.NbdAddress);
    }

    [Fact]
    public void Quoted_strings_keep_escapes_and_comments_are_dropped()
    {
        const string text = """
            resource "r0" { # a comment { with braces }
              net { shared-secret "a \"quoted\" s#cret\\ with\nnewline"; }
              handlers { fence-peer "/bin/sh -c \"echo $DRBD_RESOURCE\" \$x"; }
              on a { address 127.0.0.1:7000; disk "/srv/with space.img"; } # trailing
              on b { address 127.0.0.1:7001; disk /srv/b.img; }
            }
            """;
        var r = ConfigParser.ParseText(text, "q.res").Resolve("r0");
        Assert.Equal("a \"quoted\" s#cret\\ with\nnewline", r.SharedSecret());
        Assert.Equal("/bin/sh -c \"echo $DRBD_RESOURCE\" \\$x", r.Handler("fence-peer"));
        Assert.Equal("/srv/with space.img", r.FindNode("a")!.Volumes[0].Disk);
    }

    [Fact]
    public void Connection_sections_supply_addresses_and_net_options()
    {
        const string text = """
            resource r0 {
              on a { node-id 0; volume 0 { disk /srv/a.img; } }
              on b { node-id 1; address 127.0.0.1:7001; volume 0 { disk /srv/b.img; } }
              connection {
                path { host a address 127.0.0.1:7000; host b address 127.0.0.1:7099; }
                net { protocol A; transport tcp; }
                disk { c-max-rate 200M; }
              }
            }
            """;
        var r = ConfigParser.ParseText(text, "c.res").Resolve("r0");
        Assert.Equal("127.0.0.1:7000", r.FindNode("a")!.Address);
        Assert.Equal("127.0.0.1:7001", r.FindNode("b")!.Address);   // `on` wins; the difference is reported
        Assert.Equal('A', r.Protocol());
        Assert.Equal(204800, r.CMaxRateKibPerSec());
        Assert.Contains(r.Ignored, i => i.Keyword == "host b address" && i.Location == "c.res:5");
        Assert.Contains(r.Ignored, i => i.Keyword == "transport" && i.Location == "c.res:6");
    }

    [Fact]
    public void Structural_ignores_are_reported_with_location()
    {
        const string text = """
            skip resource old { on x { disk /dev/x; } }
            require-drbd-module-version-ge 9.0.0;
            resource r0 {
              floating 127.0.0.9:7000 { disk /dev/z; }
              stacked-on-top-of lower { device /dev/drbd10; }
              on a b { address 127.0.0.1:7000; disk /srv/a.img; }
              on c { address ipv6 [::1]:7001; disk none; }
              connection named { host a; host c; }
            }
            """;
        var config = ConfigParser.ParseText(text, "s.res");
        Assert.Contains(config.Ignored, i => i.Keyword == "skip" && i.Location == "s.res:1");
        Assert.Contains(config.Ignored, i => i.Keyword == "require-drbd-module-version-ge" && i.Location == "s.res:2");
        var r = config.Resolve("r0");
        Assert.Contains(r.Ignored, i => i.Keyword == "floating" && i.Location == "s.res:4");
        Assert.Contains(r.Ignored, i => i.Keyword == "stacked-on-top-of" && i.Location == "s.res:5");
        Assert.Contains(r.Ignored, i => i.Keyword == "connection named" && i.Location == "s.res:8");
        Assert.Equal(2, r.Nodes.Count);
        Assert.Same(r.FindNode("a"), r.FindNode("b"));          // one node known by two names
        Assert.Equal(["b"], r.FindNode("a")!.Aliases);
        Assert.Equal(("ipv6", "[::1]:7001"), (r.FindNode("c")!.AddressFamily, r.FindNode("c")!.Address!));
    }
}

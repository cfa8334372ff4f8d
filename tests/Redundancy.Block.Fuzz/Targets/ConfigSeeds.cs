// drbd.conf texts for the config seed corpus (the design's minimal example, a DRBD 9 and an 8.4
// configuration, quoting and escapes, includes split with "#@file", skip blocks and connections)
// and the keywords the mutator inserts.
using System.Text;

namespace Redundancy.Block.Fuzz.Targets;

public static class ConfigSeeds
{
    public static readonly string[] Keywords =
    [
        "resource", "on", "volume", "device", "disk", "meta-disk", "flexible-meta-disk", "address", "node-id", "nbd-address",
        "net", "protocol", "options", "startup", "handlers", "common", "global", "include", "skip", "connection", "connection-mesh",
        "hosts", "host", "path", "floating", "internal", "minor", "none", "ipv4", "ipv6", "{", "}", ";", "\"", "\n", "#", "\\",
        "7788", "10M", "512k", "1G", "[0]", "127.0.0.1:7788", "[::1]:7000", "unix:/run/rb.sock", "al-extents", "resync-rate",
        "after-sb-0pri", "shared-secret", "cram-hmac-alg", "sha256", "size", "c-plan-ahead", "ping-timeout", "yes", "no",
        "require-drbd-module-version-eq", "*.res", "conf.d/*", "[a-z]*", "[!x]", "[z-a]", "?", "_this_host", "drbd.conf",
    ];

    private const string Minimal = """
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

    private const string Drbd9 = """
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

    private const string Drbd84 = """
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

    private const string Odd = """
        resource "odd" {
          handlers { split-brain "/bin/echo \"split\" \\ done"; }
          net { shared-secret "with space;{}#"; }
          startup { become-primary-on a b; }
          on a b { node-id 3; address ipv6 [::1]:7000; nbd-address unix:/run/rb/odd.sock;
                   volume 2 { device minor 7; disk "/srv/a b.img"; meta-disk /dev/meta[3]; } }
          on c { node-id 9; address 127.0.0.1:7001; volume 2 { disk none; } }
        }
        """;

    private const string Includes = """
        # conf.d/*.res
        include "global_common.conf";
        include "conf.d/*.res";
        skip resource old { on x { anything goes { here; } } }
        require-drbd-module-version-eq 9.2.0;
        #@file global_common.conf
        global { usage-count no; }
        common { net { protocol C; connect-int 5; } disk { c-max-rate 200M; } }
        #@file conf.d/*.res
        resource r1 {
          on alpha { node-id 0; address 127.0.0.1:7100; volume 0 { disk /dev/a; meta-disk /dev/m [1]; } }
          on beta { node-id 1; address 127.0.0.1:7101; volume 0 { disk /dev/b; } }
          connection { host alpha address 127.0.0.1:7100; host beta address 127.0.0.1:7101; net { ko-count 3; } }
        }
        """;

    public static IReadOnlyList<(string Name, byte[] Input)> All() =>
    [
        ("minimal", Encoding.UTF8.GetBytes(Minimal)),
        ("drbd9", Encoding.UTF8.GetBytes(Drbd9)),
        ("drbd84", Encoding.UTF8.GetBytes(Drbd84)),
        ("quoting", Encoding.UTF8.GetBytes(Odd)),
        ("includes", Encoding.UTF8.GetBytes(Includes)),
    ];
}

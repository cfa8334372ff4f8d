// Every kind of configuration error, with the exact FILE:LINE and message the operator sees.
using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Engine.Tests.Config;

public class ConfigErrorTests
{
    private const string Hosts = """
          on a { node-id 0; address 127.0.0.1:7000; disk /srv/a.img; }
          on b { node-id 1; address 127.0.0.1:7001; disk /srv/b.img; }
        """;

    private static string Error(string text, string file = "r0.res") =>
        Assert.Throws<ConfigException>(() => ConfigParser.ParseText(text, file)).Message;

    /// <summary>A resource whose line 2 is <paramref name="line"/>, followed by two valid hosts.</summary>
    private static string InResource(string line) => "resource r0 {\n" + line + "\n" + Hosts + "\n}\n";

    [Theory]
    // syntax
    [InlineData("  net { protocol C }", "r0.res:2: expected ';' after value of 'protocol', found '}'")]
    [InlineData("  net { protocol ; }", "r0.res:2: expected a value for 'protocol', found ';'")]
    [InlineData("  net { protocol C D; }", "r0.res:2: expected ';' after value of 'protocol', found 'D'")]
    [InlineData("  net { allow-two-primaries }", "r0.res:2: expected ';' after 'allow-two-primaries', found '}'")]
    [InlineData("  net { \"protocol\" C; }", "r0.res:2: expected a net keyword or '}', found \"protocol\"")]
    [InlineData("  net protocol C;", "r0.res:2: expected '{' after 'net', found 'protocol'")]
    [InlineData("  colour blue;", "r0.res:2: 'colour' is not valid in resource 'r0', expected options, net, disk, startup, handlers, syncer, protocol, volume, on, connection, connection-mesh, device, meta-disk or skip")]
    // unknown keywords in known sections
    [InlineData("  net { frobnicate yes; }", "r0.res:2: unknown keyword 'frobnicate' in net section, expected a DRBD net option")]
    [InlineData("  disk { protocol C; }", "r0.res:2: unknown keyword 'protocol' in disk section, expected a DRBD disk option")]
    [InlineData("  syncer { delay-probe-volume 16K; }", "r0.res:2: expected a syncer keyword (rate, al-extents, verify-alg, csums-alg, c-*, ...) or '}', found 'delay-probe-volume'")]
    [InlineData("  net { no-protocol; }", "r0.res:2: unknown keyword 'no-protocol' in net section, expected a DRBD net option")]
    // values
    [InlineData("  protocol D;", "r0.res:2: 'D' is not a valid value for 'protocol', expected one of A, B, C")]
    [InlineData("  net { after-sb-0pri consensus; }", "r0.res:2: 'consensus' is not a valid value for 'after-sb-0pri', expected one of disconnect, discard-younger-primary, discard-older-primary, discard-zero-changes, discard-least-changes, discard-local, discard-remote, discard-node-NAME")]
    [InlineData("  net { after-sb-1pri discard-local; }", "r0.res:2: 'discard-local' is not a valid value for 'after-sb-1pri', expected one of disconnect, consensus, violently-as0p, discard-secondary, call-pri-lost-after-sb")]
    [InlineData("  net { after-sb-2pri discard-secondary; }", "r0.res:2: 'discard-secondary' is not a valid value for 'after-sb-2pri', expected one of disconnect, violently-as0p, call-pri-lost-after-sb")]
    [InlineData("  disk { on-io-error panic; }", "r0.res:2: 'panic' is not a valid value for 'on-io-error', expected one of pass_on, call-local-io-error, detach")]
    [InlineData("  net { timeout 601; }", "r0.res:2: value 601 of 'timeout' is out of range, expected 1..600")]
    [InlineData("  net { ping-int ten; }", "r0.res:2: 'ten' is not a valid value for 'ping-int', expected a number")]
    [InlineData("  disk { resync-rate 10X; }", "r0.res:2: '10X' is not a valid value for 'resync-rate', expected a number with optional unit suffix (s, K, M, G, T)")]
    [InlineData("  disk { resync-rate 5G; }", "r0.res:2: value 5G of 'resync-rate' is out of range, expected 1..4194304 KiB")]
    [InlineData("  net { allow-two-primaries maybe; }", "r0.res:2: 'maybe' is not a valid value for 'allow-two-primaries', expected yes or no")]
    [InlineData("  net { shared-secret \"12345678901234567890123456789012345678901234567890123456789012345\"; }", "r0.res:2: value of 'shared-secret' is 65 characters long, expected at most 64")]
    [InlineData("  options { quorum 33; }", "r0.res:2: '33' is not a valid value for 'quorum', expected one of off, majority, all, 1..32")]
    [InlineData("  volume 0 { meta-disk /dev/x [y]; }", "r0.res:2: '/dev/x [y]' is not a valid meta-disk, expected internal, PATH or PATH [INDEX]")]
    [InlineData("  device /dev/drbd0 minor 9999999;", "r0.res:2: '9999999' is not a valid minor number, expected 0..1048575")]
    [InlineData("  nbd-address unix:;", "r0.res:2: 'unix:' has no path, expected unix:PATH")]
    [InlineData("  volume 70000 { disk /x; }", "r0.res:2: '70000' is not a valid volume number, expected an integer in 0..65534")]
    [InlineData("  volume 0 { disk /x; } volume 0 { disk /y; }", "r0.res:2: volume 0 defined twice in this section, expected unique volume numbers")]
    public void Statement_errors_name_file_and_line(string line, string expected) =>
        Assert.Equal(expected, Error(InResource(line)));

    [Theory]
    [InlineData("on c { node-id 32; address 127.0.0.1:7002; disk /x; }", "r0.res:5: '32' is not a valid node-id, expected an integer in 0..31")]
    [InlineData("on c { node-id 2; address 127.0.0.1:0; disk /x; }", "r0.res:5: '0' is not a valid port, expected 1..65535")]
    [InlineData("on c { node-id 2; address 127.0.0.1:65536; disk /x; }", "r0.res:5: '65536' is not a valid port, expected 1..65535")]
    [InlineData("on c { node-id 2; address alpha.example:7000; disk /x; }", "r0.res:5: 'alpha.example:7000' is not a valid address, expected [ipv4|ipv6] IP:PORT")]
    [InlineData("on c { node-id 2; address ipv6 ::1:7000; disk /x; }", "r0.res:5: '::1:7000' is not a valid address, expected ipv6 [IP]:PORT")]
    [InlineData("on c { node-id 2; colour red; }", "r0.res:5: expected node-id, address, nbd-address, volume, device, disk, meta-disk or '}' in host section, found 'colour'")]
    [InlineData("on c { node-id 1; address 127.0.0.1:7002; disk /x; }", "r0.res:5: node-id 1 of host 'c' is already used by host 'b', expected unique node-ids")]
    [InlineData("on a { node-id 2; address 127.0.0.1:7002; disk /x; }", "r0.res:5: host 'a' defined twice in resource 'r0' (first at r0.res:3), expected unique host names")]
    [InlineData("on c { address 127.0.0.1:7002; disk /x; }", "r0.res:5: host 'c' has no node-id, expected 'node-id N;' in every host section when any has one")]
    [InlineData("on c { node-id 2; address 127.0.0.1:7002; volume 0 { meta-disk internal; } }", "r0.res:5: volume 0 of host 'c' has no 'disk', expected 'disk PATH;' or 'disk none;'")]
    [InlineData("on c { node-id 2; address 127.0.0.1:7002; }", "r0.res:5: host 'c' of resource 'r0' has no volume, expected 'volume N { disk ...; }' or 'disk ...;'")]
    [InlineData("connection-mesh { hosts a b zed; }", "r0.res:5: host 'zed' has no 'on' section in resource 'r0', expected one of: a, b")]
    [InlineData("connection { host a; host zed address 127.0.0.1:7009; }", "r0.res:5: host 'zed' has no 'on' section in resource 'r0', expected one of: a, b")]
    public void Host_and_cross_section_errors_name_file_and_line(string line, string expected) =>
        // Hosts a and b are on lines 3 and 4; the statement under test is on line 5.
        Assert.Equal(expected, Error("resource r0 {\n\n" + Hosts + "\n" + line + "\n}\n"));

    [Theory]
    [InlineData("resorce r0 { }", "t.res:1: expected global, common, resource, skip or include at top level, found 'resorce'")]
    [InlineData("resource r0 {\n  on a { disk /x; }\n", "t.res:3: expected a section or statement in resource 'r0', found end of file")]
    [InlineData("resource r0/1 { }", "t.res:1: 'r0/1' is not a valid resource name, expected a name without '/' or blanks")]
    [InlineData("resource r0 { }", "t.res:1: resource 'r0' has no 'on HOST' section, expected at least one")]
    [InlineData("global { usage-count maybe; }", "t.res:1: 'maybe' is not a valid value for 'usage-count', expected one of yes, no, ask")]
    [InlineData("global { colour red; }", "t.res:1: unknown keyword 'colour' in global section, expected a DRBD global option")]
    [InlineData("common { on a { disk /x; } }", "t.res:1: 'on' is not allowed in the common section, expected options, net, disk, startup, handlers, syncer or protocol")]
    [InlineData("common { }\ncommon { }", "t.res:2: second 'common' section (first at t.res:1), expected only one")]
    [InlineData("skip {\n", "t.res:2: expected '}' to close the 'skip' block of line 1, found end of file")]
    [InlineData("resource r0 {\n  net { shared-secret \"open\n}", "t.res:2: quoted string not closed before end of line, expected '\"'")]
    [InlineData("include \"other.res\";", "t.res:1: included file 'other.res' does not exist, expected an existing file or a glob")]
    [InlineData("include \"other.res\"", "t.res:1: expected ';' after the file name of 'include', found end of file")]
    public void Top_level_errors_name_file_and_line(string text, string expected) =>
        Assert.Equal(expected, Error(text, "t.res"));

    [Fact]
    public void Three_hosts_without_node_id_are_refused()
    {
        const string text = """
            resource r0 {
              on a { address 127.0.0.1:7000; disk /a; }
              on b { address 127.0.0.1:7001; disk /b; }
              on c { address 127.0.0.1:7002; disk /c; }
            }
            """;
        Assert.Equal("t.res:1: resource 'r0' has 3 hosts but no node-id, expected 'node-id N;' in every host section", Error(text, "t.res"));
    }

    [Fact]
    public void Duplicate_resource_is_refused()
    {
        string text = InResource("") + InResource("");
        Assert.Equal("r0.res:6: resource 'r0' defined again (first at r0.res:1), expected unique resource names", Error(text));
    }

    [Fact]
    public void Unknown_resource_names_the_file()
    {
        var config = ConfigParser.ParseText(InResource(""), "r0.res");
        var e = Assert.Throws<ConfigException>(() => config.Resolve("r9"));
        Assert.Equal("r0.res: resource 'r9' is not defined, expected one of: r0", e.Message);
        Assert.Null(e.Line);
    }
}

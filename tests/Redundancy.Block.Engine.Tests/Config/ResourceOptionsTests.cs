// Typed option accessors (defaults and DRBD units) and DRBD number suffixes.
using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Engine.Tests.Config;

public class ResourceOptionsTests
{
    private static ResourceDefinition Parse(string sections) => ConfigParser.ParseText($$"""
        resource r0 {
          {{sections}}
          on a { address 127.0.0.1:7000; disk /a; }
          on b { address 127.0.0.1:7001; disk /b; }
        }
        """, "r0.res").Resolve("r0");

    [Fact]
    public void Defaults_are_drbd9_defaults()
    {
        var r = Parse("");
        Assert.Equal('C', r.Protocol());
        Assert.Null(r.SharedSecret());
        Assert.Equal(("disconnect", "disconnect", "disconnect"), (r.AfterSb0Pri(), r.AfterSb1Pri(), r.AfterSb2Pri()));
        Assert.False(r.AllowTwoPrimaries());
        Assert.Equal("detach", r.OnIoError());
        Assert.Equal(250, r.ResyncRateKibPerSec());
        Assert.Equal(10_000, r.ConnectIntMs());
        Assert.Equal(10_000, r.PingIntMs());
        Assert.Equal(500, r.PingTimeoutMs());
        Assert.Equal(6_000, r.TimeoutMs());
        Assert.Equal(7, r.KoCount());
        Assert.Equal(1237, r.AlExtents());
        Assert.Equal(2_000, r.CPlanAheadMs());
        Assert.Equal(1_000, r.CDelayTargetMs());
        Assert.Equal(51_200, r.CFillTargetBytes());
        Assert.Equal(102_400, r.CMaxRateKibPerSec());
        Assert.Equal(250, r.CMinRateKibPerSec());
        Assert.Equal("none", r.Compression());
        Assert.True(r.AutoPromote());
        Assert.Equal("off", r.Quorum());
        Assert.Equal("suspend-io", r.OnNoQuorum());
        Assert.Equal(30_000, r.TwopcTimeoutMs());
        Assert.Equal("dont-care", r.Fencing());
        Assert.True(r.DiskFlushes() && r.MdFlushes() && r.AlUpdates());
    }

    [Fact]
    public void Values_are_converted_from_drbd_units()
    {
        var r = Parse("""
            net { protocol a; timeout 60; ping-timeout 7; connect-int 3; ping-int 4; ko-count 0; compression lz4;
                  congestion-fill 1M; allow-two-primaries no; }
            disk { resync-rate 10M; c-fill-target 1M; c-plan-ahead 5; c-max-rate 1G; c-min-rate 512; size 2G; disk-timeout 30; }
            options { quorum 2; }
            """);
        Assert.Equal('A', r.Protocol());                   // DRBD accepts the protocol letter in any case
        Assert.Equal(6_000, r.TimeoutMs());
        Assert.Equal(700, r.PingTimeoutMs());
        Assert.Equal(3_000, r.ConnectIntMs());
        Assert.Equal(4_000, r.PingIntMs());
        Assert.Equal(0, r.KoCount());
        Assert.Equal("lz4", r.Compression());
        Assert.Equal(1L << 20, r.CongestionFillBytes());
        Assert.False(r.AllowTwoPrimaries());
        Assert.Equal(10_240, r.ResyncRateKibPerSec());
        Assert.Equal(1L << 20, r.CFillTargetBytes());
        Assert.Equal(500, r.CPlanAheadMs());
        Assert.Equal(1L << 20, r.CMaxRateKibPerSec());
        Assert.Equal(512, r.CMinRateKibPerSec());
        Assert.Equal(2L << 30, r.SizeBytes());
        Assert.Equal(3_000, r.DiskTimeoutMs());
        Assert.Equal("2", r.Quorum());
    }

    [Theory]
    [InlineData("250", 'k', 250)]
    [InlineData("10M", 'k', 10240)]
    [InlineData("10m", 'k', 10240)]
    [InlineData("1G", 'k', 1048576)]
    [InlineData("100s", 'k', 50)]
    [InlineData("100", 's', 100)]
    [InlineData("1K", 's', 2)]
    [InlineData("4K", '1', 4096)]
    [InlineData("1T", 's', 1L << 31)]
    public void Numbers_take_drbd_unit_suffixes(string text, char scale, long expected)
    {
        Assert.True(ConfigNumber.TryParse(text, scale, out long value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("M")]
    [InlineData("-1")]
    [InlineData("1.5M")]
    [InlineData("10X")]
    [InlineData("99999999999999999999")]
    [InlineData("9999999999999999T")]
    public void Bad_numbers_are_refused(string text)
    {
        Assert.False(ConfigNumber.TryParse(text, 'k', out _));
        Assert.Throws<FormatException>(() => ConfigNumber.Parse(text, 'k'));
    }
}

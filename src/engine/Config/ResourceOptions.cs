// Typed, defaulted views of a resolved resource's options — what the engine and agent read.
// Defaults and units are DRBD 9's (drbd_limits.h). DRBD's units are converted here so callers see
// one unit per name: ping-timeout, timeout, c-plan-ahead, c-delay-target, disk-timeout and
// twopc-timeout are written in tenths of a second (timeout 60 = 6 s); connect-int and ping-int in
// seconds; resync-rate and c-*-rate in KiB/s; c-fill-target and congestion-fill in 512-byte sectors.
// Disk accessors take an optional volume whose own `disk { }` options override the resource's.
namespace Redundancy.Block.Engine.Config;

public static class ResourceOptions
{
    // net
    public static char Protocol(this ResourceDefinition r) => Net(r, "protocol", "C")[0];
    public static string? SharedSecret(this ResourceDefinition r) => r.Net.GetValueOrDefault("shared-secret");
    public static string? CramHmacAlg(this ResourceDefinition r) => r.Net.GetValueOrDefault("cram-hmac-alg");
    public static string? DataIntegrityAlg(this ResourceDefinition r) => r.Net.GetValueOrDefault("data-integrity-alg");
    public static string? VerifyAlg(this ResourceDefinition r) => r.Net.GetValueOrDefault("verify-alg");
    public static string? CsumsAlg(this ResourceDefinition r) => r.Net.GetValueOrDefault("csums-alg");
    public static string AfterSb0Pri(this ResourceDefinition r) => Net(r, "after-sb-0pri", "disconnect");
    public static string AfterSb1Pri(this ResourceDefinition r) => Net(r, "after-sb-1pri", "disconnect");
    public static string AfterSb2Pri(this ResourceDefinition r) => Net(r, "after-sb-2pri", "disconnect");
    public static string RrConflict(this ResourceDefinition r) => Net(r, "rr-conflict", "disconnect");
    public static bool AllowTwoPrimaries(this ResourceDefinition r) => Net(r, "allow-two-primaries", "no") == "yes";
    public static bool AlwaysAsbp(this ResourceDefinition r) => Net(r, "always-asbp", "no") == "yes";
    public static bool AllowRemoteRead(this ResourceDefinition r) => Net(r, "allow-remote-read", "yes") == "yes";
    public static bool CsumsAfterCrashOnly(this ResourceDefinition r) => Net(r, "csums-after-crash-only", "no") == "yes";
    /// <summary>`fencing`: dont-care (default), resource-only, resource-and-stonith.</summary>
    public static string Fencing(this ResourceDefinition r) => Net(r, "fencing", "dont-care");
    /// <summary>`connect-int` (seconds, default 10) in milliseconds.</summary>
    public static long ConnectIntMs(this ResourceDefinition r) => Number(r.Net, "connect-int", 10) * 1000;
    /// <summary>`ping-int` (seconds, default 10) in milliseconds.</summary>
    public static long PingIntMs(this ResourceDefinition r) => Number(r.Net, "ping-int", 10) * 1000;
    /// <summary>`ping-timeout` (tenths of a second, default 5) in milliseconds: 500.</summary>
    public static long PingTimeoutMs(this ResourceDefinition r) => Number(r.Net, "ping-timeout", 5) * 100;
    /// <summary>`timeout` (tenths of a second, default 60) in milliseconds: 6000.</summary>
    public static long TimeoutMs(this ResourceDefinition r) => Number(r.Net, "timeout", 60) * 100;
    /// <summary>`ko-count` (timeouts before a peer is dropped, default 7; 0 = off).</summary>
    public static int KoCount(this ResourceDefinition r) => (int)Number(r.Net, "ko-count", 7);
    public static int MaxEpochSize(this ResourceDefinition r) => (int)Number(r.Net, "max-epoch-size", 2048);
    /// <summary>`on-congestion`: block (default), pull-ahead, disconnect.</summary>
    public static string OnCongestion(this ResourceDefinition r) => Net(r, "on-congestion", "block");
    /// <summary>`congestion-fill` (sectors, default 0 = off) in bytes.</summary>
    public static long CongestionFillBytes(this ResourceDefinition r) => Number(r.Net, "congestion-fill", 0, 's') * 512;
    public static int CongestionExtents(this ResourceDefinition r) => (int)Number(r.Net, "congestion-extents", 1237);
    /// <summary>
    /// `sndbuf-size` (bytes; 0 = auto, default): how much protocol A write data may be on its way to a
    /// peer before writes wait (see <see cref="Replication.PeerLinkSettings.SendBoundBytes"/>).
    /// </summary>
    public static long SndbufSizeBytes(this ResourceDefinition r) => Number(r.Net, "sndbuf-size", 0);
    /// <summary>Our extension `compression`: "none" (default) or "lz4".</summary>
    public static string Compression(this ResourceDefinition r) => Net(r, "compression", "none");

    // disk (per-volume overrides apply)
    /// <summary>`on-io-error`: detach (DRBD 9 default), pass_on, call-local-io-error.</summary>
    public static string OnIoError(this ResourceDefinition r, VolumeDefinition? v = null) => Disk(r, v, "on-io-error") ?? "detach";
    /// <summary>`resync-rate` (KiB/s, default 250; "10M" = 10240).</summary>
    public static long ResyncRateKibPerSec(this ResourceDefinition r, VolumeDefinition? v = null) => DiskNumber(r, v, "resync-rate", 250, 'k');
    public static int AlExtents(this ResourceDefinition r, VolumeDefinition? v = null) => (int)DiskNumber(r, v, "al-extents", 1237, '1');
    public static bool AlUpdates(this ResourceDefinition r, VolumeDefinition? v = null) => (Disk(r, v, "al-updates") ?? "yes") == "yes";
    public static bool DiskFlushes(this ResourceDefinition r, VolumeDefinition? v = null) => (Disk(r, v, "disk-flushes") ?? "yes") == "yes";

    /// <summary>Our extension `direct-io yes;`: open the backing disk with O_DIRECT (bypass the page cache).</summary>
    public static bool DirectIo(this ResourceDefinition r, VolumeDefinition? v = null) => (Disk(r, v, "direct-io") ?? "no") == "yes";
    public static bool MdFlushes(this ResourceDefinition r, VolumeDefinition? v = null) => (Disk(r, v, "md-flushes") ?? "yes") == "yes";
    /// <summary>`c-plan-ahead` (tenths of a second, default 20; 0 = fixed resync-rate) in milliseconds.</summary>
    public static long CPlanAheadMs(this ResourceDefinition r, VolumeDefinition? v = null) => DiskNumber(r, v, "c-plan-ahead", 20, '1') * 100;
    /// <summary>`c-delay-target` (tenths of a second, default 10) in milliseconds.</summary>
    public static long CDelayTargetMs(this ResourceDefinition r, VolumeDefinition? v = null) => DiskNumber(r, v, "c-delay-target", 10, '1') * 100;
    /// <summary>`c-fill-target` (sectors, default 100) in bytes; 0 means use c-delay-target.</summary>
    public static long CFillTargetBytes(this ResourceDefinition r, VolumeDefinition? v = null) => DiskNumber(r, v, "c-fill-target", 100, 's') * 512;
    /// <summary>`c-max-rate` (KiB/s, default 102400).</summary>
    public static long CMaxRateKibPerSec(this ResourceDefinition r, VolumeDefinition? v = null) => DiskNumber(r, v, "c-max-rate", 102400, 'k');
    /// <summary>`c-min-rate` (KiB/s, default 250).</summary>
    public static long CMinRateKibPerSec(this ResourceDefinition r, VolumeDefinition? v = null) => DiskNumber(r, v, "c-min-rate", 250, 'k');
    /// <summary>`disk-timeout` (tenths of a second, default 0 = none) in milliseconds.</summary>
    public static long DiskTimeoutMs(this ResourceDefinition r, VolumeDefinition? v = null) => DiskNumber(r, v, "disk-timeout", 0, '1') * 100;
    /// <summary>`size` (sectors by default; 0 = use the whole backing device) in bytes.</summary>
    public static long SizeBytes(this ResourceDefinition r, VolumeDefinition? v = null) => DiskNumber(r, v, "size", 0, 's') * 512;
    public static string? ResyncAfter(this ResourceDefinition r, VolumeDefinition? v = null) => Disk(r, v, "resync-after");

    // options
    public static bool AutoPromote(this ResourceDefinition r) => r.Options.GetValueOrDefault("auto-promote", "yes") == "yes";
    /// <summary>`quorum`: off (default), majority, all, or a node count.</summary>
    public static string Quorum(this ResourceDefinition r) => r.Options.GetValueOrDefault("quorum", "off");
    /// <summary>`on-no-quorum`: suspend-io (default: DRBD freezes I/O) or io-error.</summary>
    public static string OnNoQuorum(this ResourceDefinition r) => r.Options.GetValueOrDefault("on-no-quorum", "suspend-io");
    public static string OnNoDataAccessible(this ResourceDefinition r) => r.Options.GetValueOrDefault("on-no-data-accessible", "io-error");
    /// <summary>`twopc-timeout` (tenths of a second, default 300) in milliseconds.</summary>
    public static long TwopcTimeoutMs(this ResourceDefinition r) => Number(r.Options, "twopc-timeout", 300) * 100;

    // startup
    /// <summary>`wfc-timeout` (seconds, default 0 = wait forever).</summary>
    public static long WfcTimeoutSec(this ResourceDefinition r) => Number(r.Startup, "wfc-timeout", 0);
    /// <summary>`degr-wfc-timeout` (seconds, default 0 = wait forever).</summary>
    public static long DegrWfcTimeoutSec(this ResourceDefinition r) => Number(r.Startup, "degr-wfc-timeout", 0);
    /// <summary>`wait-after-sb`: wait-connect and wait-sync keep waiting when a connection is StandAlone (after a split brain).</summary>
    public static bool WaitAfterSb(this ResourceDefinition r) => r.Startup.GetValueOrDefault("wait-after-sb", "no") == "yes";
    /// <summary>`outdated-wfc-timeout` (seconds, default 0 = wait forever).</summary>
    public static long OutdatedWfcTimeoutSec(this ResourceDefinition r) => Number(r.Startup, "outdated-wfc-timeout", 0);
    /// <summary>wfc-timeout, degr-wfc-timeout and outdated-wfc-timeout together.</summary>
    public static Resources.StartupTimeouts StartupTimeouts(this ResourceDefinition r) =>
        new(r.WfcTimeoutSec(), r.DegrWfcTimeoutSec(), r.OutdatedWfcTimeoutSec());

    /// <summary>The command line of handler <paramref name="name"/> (e.g. "split-brain"), or null.</summary>
    public static string? Handler(this ResourceDefinition r, string name) => r.Handlers.GetValueOrDefault(name);

    private static string Net(ResourceDefinition r, string keyword, string fallback) => r.Net.GetValueOrDefault(keyword, fallback);

    private static string? Disk(ResourceDefinition r, VolumeDefinition? v, string keyword) =>
        v?.DiskOptions.GetValueOrDefault(keyword) ?? r.Disk.GetValueOrDefault(keyword);

    private static long DiskNumber(ResourceDefinition r, VolumeDefinition? v, string keyword, long fallback, char scale) =>
        Disk(r, v, keyword) is string text ? ConfigNumber.Parse(text, scale) : fallback;

    private static long Number(IReadOnlyDictionary<string, string> section, string keyword, long fallback, char scale = '1') =>
        section.TryGetValue(keyword, out string? text) ? ConfigNumber.Parse(text, scale) : fallback;
}

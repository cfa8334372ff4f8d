// The keywords drbd.conf allows in each option section (DRBD 9 names, ranges from drbd_limits.h),
// which of them have an effect here, and the 8.4 spellings that map onto them. A keyword not in
// these tables is an error: a real DRBD config would not contain it.
namespace Redundancy.Block.Engine.Config;

internal static class ConfigKeywords
{
    private const string KernelTuning = "kernel tuning knob; no effect in a user-space engine";
    private const string NoAutoPromote = "a Secondary refuses NBD clients; promote with 'rbadm primary' (no auto-promote on open)";
    private const string NoQuorum = "two-node resources run without quorum (as with quorum off)";
    private const long SharedSecretMax = 64;

    private static readonly string[] AfterSb0Pri =
        ["disconnect", "discard-younger-primary", "discard-older-primary", "discard-zero-changes",
         "discard-least-changes", "discard-local", "discard-remote"];
    private static readonly string[] AfterSb1Pri =
        ["disconnect", "consensus", "violently-as0p", "discard-secondary", "call-pri-lost-after-sb"];
    private static readonly string[] AfterSb2Pri = ["disconnect", "violently-as0p", "call-pri-lost-after-sb"];
    private static readonly string[] IoErrorOrSuspend = ["io-error", "suspend-io"];

    private static readonly Dictionary<string, KeywordSpec> Net = Table(
        Choice("protocol", "A", "B", "C") with { UpperCase = true },
        Text("cram-hmac-alg", SharedSecretMax),
        Text("shared-secret", SharedSecretMax),
        Flag("allow-two-primaries"),
        Choice("after-sb-0pri", AfterSb0Pri) with { AllowsDiscardNode = true },
        Choice("after-sb-1pri", AfterSb1Pri),
        Choice("after-sb-2pri", AfterSb2Pri),
        Choice("rr-conflict", "disconnect", "call-pri-lost", "violently", "retry-connect", "auto-discard"),
        Flag("always-asbp"),
        Text("data-integrity-alg", SharedSecretMax),
        Text("verify-alg", SharedSecretMax),
        Text("csums-alg", SharedSecretMax),
        Flag("csums-after-crash-only"),
        Number("ping-int", 1, 120),
        Number("ping-timeout", 1, 300),
        Number("timeout", 1, 600),
        Number("ko-count", 0, 200),
        Number("connect-int", 1, 120),
        Number("max-epoch-size", 1, 20000),
        Choice("on-congestion", "block", "pull-ahead", "disconnect"),
        Number("congestion-fill", 0, 10L << 21, 's'),
        Number("congestion-extents", 67, 0xfffe),
        Choice("fencing", "dont-care", "resource-only", "resource-and-stonith"),
        Choice("compression", "none", "lz4"),
        Flag("allow-remote-read"),
        Number("max-buffers", 32, 131072).Ignored(KernelTuning),
        Number("sndbuf-size", 0, 10L << 20),
        Number("rcvbuf-size", 0, 10L << 20).Ignored(KernelTuning),
        Flag("tcp-cork").Ignored(KernelTuning),
        Flag("use-rle").Ignored("bitmap exchange uses this engine's own encoding"),
        Number("socket-check-timeout", 0, 300).Ignored(KernelTuning),
        Text("transport", SharedSecretMax).Ignored("only the TCP transport exists here"),
        Flag("load-balance-paths").Ignored("one path per connection"),
        Flag("tls").Ignored("TLS transport not supported: replication traffic is NOT encrypted"),
        Text("tls-keyring", 256).Ignored("TLS transport not supported"),
        Text("tls-privkey", 256).Ignored("TLS transport not supported"),
        Text("tls-certificate", 256).Ignored("TLS transport not supported"),
        Number("rdma-ctrl-rcvbuf-size", 0, long.MaxValue).Ignored("RDMA transport not supported"),
        Number("rdma-ctrl-sndbuf-size", 0, long.MaxValue).Ignored("RDMA transport not supported"),
        Flag("discard-my-data").Ignored("a connect-time option: use 'rbadm connect --discard-my-data'"));

    private static readonly Dictionary<string, KeywordSpec> Disk = Table(
        Choice("on-io-error", "pass_on", "call-local-io-error", "detach"),
        Choice("fencing", "dont-care", "resource-only", "resource-and-stonith") with { StoreIn = ConfigSection.Net },
        Number("al-extents", 67, 0xfffe),
        Flag("al-updates"),
        Flag("disk-flushes"),
        Flag("direct-io"), // our extension: open the backing disk with O_DIRECT
        Flag("md-flushes"),
        Number("resync-rate", 1, 4L << 20, 'k'),
        Number("c-plan-ahead", 0, 300),
        Number("c-fill-target", 0, 1L << 20, 's'),
        Number("c-delay-target", 1, 100),
        Number("c-max-rate", 250, 4L << 20, 'k'),
        Number("c-min-rate", 0, 4L << 20, 'k'),
        Text("resync-after", 128),
        Number("disk-timeout", 0, 6000),
        Number("size", 0, 2L << 40, 's'),
        Flag("disk-barrier").Ignored(KernelTuning),
        Flag("disk-drain").Ignored(KernelTuning),
        Choice("read-balancing", "prefer-local", "prefer-remote", "round-robin", "least-pending",
            "when-congested-remote", "32K-striping", "64K-striping", "128K-striping", "256K-striping",
            "512K-striping", "1M-striping").Ignored("reads are always served from the local disk"),
        Flag("discard-zeroes-if-aligned").Ignored(KernelTuning),
        Flag("disable-write-same").Ignored(KernelTuning),
        Number("rs-discard-granularity", 0, 1L << 20).Ignored(KernelTuning),
        Flag("bitmap").Ignored("every peer keeps a bitmap here"));

    private static readonly Dictionary<string, KeywordSpec> Options = Table(
        Flag("auto-promote").Ignored(NoAutoPromote),
        Number("auto-promote-timeout", 0, 600).Ignored(NoAutoPromote),
        (Choice("quorum", "off", "majority", "all") with { ChoiceOrNumber = true, Min = 1, Max = 32 }).Ignored(NoQuorum),
        (Choice("quorum-minimum-redundancy", "off", "majority", "all") with { ChoiceOrNumber = true, Min = 1, Max = 32 }).Ignored(NoQuorum),
        Choice("on-no-quorum", IoErrorOrSuspend).Ignored(NoQuorum),
        Choice("on-no-data-accessible", IoErrorOrSuspend),
        Choice("on-suspended-primary-outdated", "disconnect", "force-secondary").Ignored(NoQuorum),
        Number("twopc-timeout", 50, 600),
        Number("twopc-retry-timeout", 1, 50).Ignored("a state change that meets a concurrent one is aborted, not retried"),
        Text("cpu-mask", 256).Ignored("kernel worker-thread CPU affinity"),
        Number("peer-ack-window", 0, long.MaxValue).Ignored(KernelTuning),
        Number("peer-ack-delay", 0, long.MaxValue).Ignored(KernelTuning),
        Number("max-io-depth", 0, long.MaxValue).Ignored(KernelTuning));

    private static readonly Dictionary<string, KeywordSpec> Startup = Table(
        Number("wfc-timeout", 0, 300000),
        Number("degr-wfc-timeout", 0, 300000),
        Number("outdated-wfc-timeout", 0, 300000),
        Flag("wait-after-sb"),
        new KeywordSpec("become-primary-on", ValueKind.Names).Ignored("promotion at boot is left to the cluster manager"),
        Flag("stacked-timeouts").Ignored("stacked resources are not supported"));

    private static readonly Dictionary<string, KeywordSpec> Global = Table(
        Choice("usage-count", "yes", "no", "ask").Ignored("no usage counting"),
        Number("minor-count", 1, 255).Ignored("no kernel minors"),
        Number("dialog-refresh", 0, long.MaxValue).Ignored("no init-script dialog"),
        Flag("disable-ip-verification").Ignored("addresses are not checked against local interfaces"),
        Flag("udev-always-use-vnr").Ignored("no udev rules"),
        Number("cmd-timeout-short", 0, long.MaxValue).Ignored("no drbdsetup subprocesses"),
        Number("cmd-timeout-medium", 0, long.MaxValue).Ignored("no drbdsetup subprocesses"),
        Number("cmd-timeout-long", 0, long.MaxValue).Ignored("no drbdsetup subprocesses"));

    /// <summary>Old names drbdadm still accepts (drbdadm_parser.c check_deprecated_alias).</summary>
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.Ordinal)
    {
        ["outdate-peer"] = "fence-peer",
        ["rate"] = "resync-rate",
        ["after"] = "resync-after",
    };

    /// <summary>
    /// The spec for <paramref name="keyword"/> in <paramref name="section"/>, after 8.4 aliases and the 8.3
    /// `no-KEYWORD` boolean spelling (<paramref name="negated"/>). Handlers accept any name. Null when unknown.
    /// </summary>
    public static KeywordSpec? Find(ConfigSection section, string keyword, out bool negated)
    {
        negated = false;
        string name = Aliases.GetValueOrDefault(keyword, keyword);
        if (section == ConfigSection.Handlers)
        {
            return new KeywordSpec(name, ValueKind.Text);
        }
        var table = TableOf(section);
        if (table.TryGetValue(name, out var spec))
        {
            return spec;
        }
        if (name.StartsWith("no-", StringComparison.Ordinal)
            && table.TryGetValue(name[3..], out var positive) && positive.Kind == ValueKind.Flag)
        {
            negated = true;
            return positive;
        }
        return null;
    }

    /// <summary>Where an 8.4 `syncer { }` keyword lives in DRBD 9: the first of net, disk, options that knows it.</summary>
    public static (ConfigSection Section, KeywordSpec Spec)? FindSyncer(string keyword, out bool negated)
    {
        foreach (var section in new[] { ConfigSection.Net, ConfigSection.Disk, ConfigSection.Options })
        {
            var spec = Find(section, keyword, out negated);
            if (spec is not null)
            {
                return (spec.StoreIn ?? section, spec);
            }
        }
        negated = false;
        return null;
    }

    /// <summary>The spec of an already-stored DRBD 9 keyword (used by the resolver for ignore reporting).</summary>
    public static KeywordSpec? Stored(ConfigSection section, string keyword) =>
        section == ConfigSection.Handlers ? null : TableOf(section).GetValueOrDefault(keyword);

    private static Dictionary<string, KeywordSpec> TableOf(ConfigSection section) => section switch
    {
        ConfigSection.Net => Net,
        ConfigSection.Disk => Disk,
        ConfigSection.Options => Options,
        ConfigSection.Startup => Startup,
        _ => Global,
    };

    private static Dictionary<string, KeywordSpec> Table(params KeywordSpec[] specs) =>
        specs.ToDictionary(s => s.Name, StringComparer.Ordinal);

    private static KeywordSpec Flag(string name) => new(name, ValueKind.Flag);

    private static KeywordSpec Text(string name, long maxLength) => new(name, ValueKind.Text) { MaxLength = (int)maxLength };

    private static KeywordSpec Choice(string name, params string[] choices) => new(name, ValueKind.Choice) { Choices = choices };

    private static KeywordSpec Number(string name, long min, long max, char scale = '1') =>
        new(name, ValueKind.Numeric) { Min = min, Max = max, Scale = scale };
}

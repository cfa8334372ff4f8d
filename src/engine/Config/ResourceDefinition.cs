namespace Redundancy.Block.Engine.Config;

/// <summary>
/// A resource fully resolved from the configuration: `common` inherited, `include`s expanded,
/// DRBD 8.4 spellings normalised. This is what rbadm sends to the agent, as drbdadm hands the
/// kernel a resolved resource. Section options are kept as ordered name → value pairs; typed
/// accessors live in `ResourceOptions`.
/// </summary>
public sealed record ResourceDefinition
{
    public required string Name { get; init; }

    /// <summary>The `on HOST { }` sections, in file order.</summary>
    public required IReadOnlyList<NodeDefinition> Nodes { get; init; }

    /// <summary>`options { }` (resource options, e.g. quorum, auto-promote).</summary>
    public IReadOnlyDictionary<string, string> Options { get; init; } = Empty;

    /// <summary>`net { }` (protocol, shared-secret, after-sb-*...). 8.4's resource-level `protocol` lands here.</summary>
    public IReadOnlyDictionary<string, string> Net { get; init; } = Empty;

    /// <summary>`disk { }` (on-io-error, resync-rate, c-*...). 8.4's `syncer { }` keywords land here.</summary>
    public IReadOnlyDictionary<string, string> Disk { get; init; } = Empty;

    /// <summary>`startup { }`.</summary>
    public IReadOnlyDictionary<string, string> Startup { get; init; } = Empty;

    /// <summary>`handlers { }`: handler name → command line.</summary>
    public IReadOnlyDictionary<string, string> Handlers { get; init; } = Empty;

    /// <summary>Full path of the configuration file the resource was read from (a handler's DRBD_CONF); null when read from text.</summary>
    public string? ConfigFile { get; init; }

    /// <summary>Keywords accepted for DRBD compatibility that have no effect here, with where they were.</summary>
    public IReadOnlyList<IgnoredKeyword> Ignored { get; init; } = [];

    /// <summary>The `on` section for <paramref name="nodeName"/>, or null when the node is not part of the resource.</summary>
    public NodeDefinition? FindNode(string nodeName) =>
        Nodes.FirstOrDefault(n => string.Equals(n.Name, nodeName, StringComparison.Ordinal))
        ?? Nodes.FirstOrDefault(n => n.Aliases.Contains(nodeName, StringComparer.Ordinal));

    public static readonly IReadOnlyDictionary<string, string> Empty = new Dictionary<string, string>();
}

/// <summary>An `on HOST { }` section.</summary>
public sealed record NodeDefinition
{
    public required string Name { get; init; }

    /// <summary>`node-id`; required by DRBD 9 syntax, defaulted to the section index for 8.4 configs.</summary>
    public required int NodeId { get; init; }

    /// <summary>
    /// Further names of the same `on NAME ALIAS... { }` section: as in drbdadm, the section is one node that
    /// matches any of its names (e.g. a host known by two hostnames). Empty for the usual one-name section.
    /// </summary>
    public IReadOnlyList<string> Aliases { get; init; } = [];

    /// <summary>Replication address `ip:port` (`address`), or null when absent. IPv6 is written `[ip]:port`.</summary>
    public string? Address { get; init; }

    /// <summary>Address family of <see cref="Address"/>: "ipv4" or "ipv6".</summary>
    public string AddressFamily { get; init; } = "ipv4";

    /// <summary>Our extension `nbd-address`: `ip:port` or `unix:PATH`. Default `127.0.0.1:10809`.</summary>
    public string NbdAddress { get; init; } = DefaultNbdAddress;

    /// <summary>Volumes of this node (resource-level volumes merged with the node's own).</summary>
    public required IReadOnlyList<VolumeDefinition> Volumes { get; init; }

    public const string DefaultNbdAddress = "127.0.0.1:10809";
}

/// <summary>A `volume N { }` section (or 8.4's implicit volume 0 from `disk`/`device`/`meta-disk` in `on`).</summary>
public sealed record VolumeDefinition
{
    public required int Number { get; init; }

    /// <summary>`device` (e.g. /dev/nbd0 or `minor N`), or null.</summary>
    public string? Device { get; init; }

    /// <summary>The path part of <see cref="Device"/> (`/dev/nbd0` of `/dev/nbd0` or `/dev/drbd0 minor 0`), or null.</summary>
    public string? DevicePath => Device is null || Device.StartsWith("minor ", StringComparison.Ordinal)
        ? null
        : Device.Split(' ')[0];

    /// <summary>The `minor N` part of <see cref="Device"/>, or null.</summary>
    public int? DeviceMinor
    {
        get
        {
            var words = Device?.Split(' ') ?? [];
            int at = Array.IndexOf(words, "minor");
            return at >= 0 && at + 1 < words.Length && int.TryParse(words[at + 1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int minor)
                ? minor
                : null;
        }
    }

    /// <summary>
    /// The device's minor number, as status and handlers (DRBD_MINOR) show it: `minor N`, or the
    /// number a device path ends in (/dev/nbd3, /dev/drbd3), or else the volume number.
    /// </summary>
    public int Minor
    {
        get
        {
            if (DeviceMinor is int minor)
            {
                return minor;
            }
            string digits = new([.. (DevicePath ?? string.Empty).Reverse().TakeWhile(char.IsAsciiDigit).Reverse()]);
            return digits.Length > 0 && int.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int fromPath)
                ? fromPath
                : Number;
        }
    }

    /// <summary>`disk`: backing device or file path; null for `disk none` (diskless).</summary>
    public string? Disk { get; init; }

    /// <summary>`meta-disk`: "internal", or the path of an external metadata device.</summary>
    public string MetaDisk { get; init; } = "internal";

    /// <summary>Index for 8.4 indexed external metadata (`meta-disk /dev/x [N]`), or null (flexible).</summary>
    public int? MetaIndex { get; init; }

    /// <summary>Per-volume `disk { }` overrides.</summary>
    public IReadOnlyDictionary<string, string> DiskOptions { get; init; } = ResourceDefinition.Empty;

    public bool IsInternalMetadata => string.Equals(MetaDisk, "internal", StringComparison.Ordinal);
}

/// <summary>A keyword accepted but without effect, reported by `rbadm dump`.</summary>
public sealed record IgnoredKeyword(string Keyword, string Location, string Reason);

// The configuration as written, before inheritance: what the grammar reads and the resolver turns
// into ResourceDefinitions. Every statement keeps where it came from, for errors and `dump`.
namespace Redundancy.Block.Engine.Config;

/// <summary>One `keyword value;` option, already validated and renamed to its DRBD 9 name.</summary>
internal sealed record RawOption(ConfigSection Section, string Keyword, string Value, SourceLocation Where, string? IgnoredReason);

/// <summary>Options of one `common` or `resource`, in file order; a later statement overrides an earlier one.</summary>
internal sealed class RawOptions
{
    public List<RawOption> Items { get; } = [];

    public void Add(RawOption option) => Items.Add(option);
}

/// <summary>A `volume N { }` (or the implicit volume 0 of 8.4 statements); fields null when not written.</summary>
internal sealed class RawVolume(int number, SourceLocation where)
{
    public int Number { get; } = number;
    public SourceLocation Where { get; } = where;
    public string? Device { get; set; }
    /// <summary>`disk` value; "none" for diskless.</summary>
    public string? Disk { get; set; }
    public SourceLocation? DiskWhere { get; set; }
    public string? MetaDisk { get; set; }
    public int? MetaIndex { get; set; }
    public bool MetaDiskSet { get; set; }
    public List<RawOption> DiskOptions { get; } = [];
}

/// <summary>An `on HOST [HOST...] { }` section.</summary>
internal sealed class RawHost(IReadOnlyList<string> names, SourceLocation where)
{
    public IReadOnlyList<string> Names { get; } = names;
    public SourceLocation Where { get; } = where;
    public int? NodeId { get; set; }
    public RawAddress? Address { get; set; }
    public string? NbdAddress { get; set; }
    public SortedDictionary<int, RawVolume> Volumes { get; } = [];
}

/// <summary>`[ipv4|ipv6|ssocks|sdp] IP:PORT`; Text is `IP:PORT` (`[IPv6]:PORT` for ipv6).</summary>
internal sealed record RawAddress(string Family, string Text, SourceLocation Where);

/// <summary>A `host NAME [address ...] [port N];` of a connection or its path.</summary>
internal sealed record RawConnectionHost(string Name, RawAddress? Address, int? Port, SourceLocation Where);

/// <summary>A `connection { }` or `connection-mesh { }`.</summary>
internal sealed class RawConnection(SourceLocation where, bool isMesh)
{
    public SourceLocation Where { get; } = where;
    public bool IsMesh { get; } = isMesh;
    public List<RawConnectionHost> Hosts { get; } = [];
    public List<RawOption> Options { get; } = [];
}

/// <summary>A `resource NAME { }`, or `common { }` (which has no hosts).</summary>
internal sealed class RawResource(string name, SourceLocation where)
{
    public string Name { get; } = name;
    public SourceLocation Where { get; } = where;
    public RawOptions Options { get; } = new();
    public SortedDictionary<int, RawVolume> Volumes { get; } = [];
    public string? NbdAddress { get; set; }
    public List<RawHost> Hosts { get; } = [];
    public List<RawConnection> Connections { get; } = [];
    public List<IgnoredKeyword> Ignored { get; } = [];
}

/// <summary>Everything read from the main file and its includes.</summary>
internal sealed class RawConfig
{
    public List<RawOption> Global { get; } = [];
    public RawResource? Common { get; set; }
    public List<RawResource> Resources { get; } = [];
    public List<IgnoredKeyword> Ignored { get; } = [];
}

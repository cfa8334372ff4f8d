// Turns the configuration as written (RawConfig) into resolved ResourceDefinitions: common → resource
// → connection option inheritance, resource-level volumes → each host, node-id assignment for 8.4
// configs, and the cross-statement checks (unique hosts and node-ids, every volume has a disk).
namespace Redundancy.Block.Engine.Config;

internal static partial class ConfigResolver
{
    public static ConfigFile Resolve(RawConfig raw, string fileName, string? configFile = null)
    {
        var ignored = new List<IgnoredKeyword>(raw.Ignored);
        var global = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var option in raw.Global)
        {
            global[option.Keyword] = option.Value;
            ignored.Add(new IgnoredKeyword(option.Keyword, option.Where.ToString(), option.IgnoredReason ?? "global option"));
        }
        if (raw.Common is not null)
        {
            ignored.AddRange(raw.Common.Ignored);
        }
        var resources = raw.Resources.Select(r => ResolveResource(r, raw.Common) with { ConfigFile = configFile }).ToList();
        return new ConfigFile(fileName, resources, global, ignored);
    }

    private static ResourceDefinition ResolveResource(RawResource resource, RawResource? common)
    {
        var ignored = new List<IgnoredKeyword>();
        var effective = new Dictionary<ConfigSection, Dictionary<string, RawOption>>();
        foreach (var option in (common?.Options.Items ?? []).Concat(resource.Options.Items))
        {
            Section(effective, option.Section)[option.Keyword] = option;
        }
        if (resource.Hosts.Count == 0)
        {
            throw ConfigException.At(resource.Where, $"resource '{resource.Name}' has no 'on HOST' section, expected at least one");
        }
        var hostsByName = IndexHosts(resource);
        var addresses = MergeConnections(resource, hostsByName, effective, ignored);
        var nodeIds = AssignNodeIds(resource);
        var nodes = resource.Hosts
            .Select((host, i) => ResolveNode(resource, host, nodeIds[i], addresses.GetValueOrDefault(host)))
            .ToList();
        foreach (var option in effective.Values.SelectMany(s => s.Values).Where(o => o.IgnoredReason is not null))
        {
            ignored.Add(new IgnoredKeyword(option.Keyword, option.Where.ToString(), option.IgnoredReason!));
        }
        var volumeOptions = resource.Volumes.Values.SelectMany(v => v.DiskOptions)
            .Concat(resource.Hosts.SelectMany(h => h.Volumes.Values).SelectMany(v => v.DiskOptions));
        foreach (var option in volumeOptions.Where(o => o.IgnoredReason is not null))
        {
            ignored.Add(new IgnoredKeyword(option.Keyword, option.Where.ToString(), option.IgnoredReason!));
        }
        ignored.AddRange(resource.Ignored);
        return new ResourceDefinition
        {
            Name = resource.Name,
            Nodes = nodes,
            Options = Values(effective, ConfigSection.Options),
            Net = Values(effective, ConfigSection.Net),
            Disk = Values(effective, ConfigSection.Disk),
            Startup = Values(effective, ConfigSection.Startup),
            Handlers = Values(effective, ConfigSection.Handlers),
            Ignored = ignored,
        };
    }

    private static Dictionary<string, RawOption> Section(Dictionary<ConfigSection, Dictionary<string, RawOption>> all, ConfigSection section)
    {
        if (!all.TryGetValue(section, out var options))
        {
            options = new Dictionary<string, RawOption>(StringComparer.Ordinal);
            all.Add(section, options);
        }
        return options;
    }

    private static Dictionary<string, string> Values(Dictionary<ConfigSection, Dictionary<string, RawOption>> all, ConfigSection section) =>
        all.TryGetValue(section, out var options)
            ? options.Values.ToDictionary(o => o.Keyword, o => o.Value, StringComparer.Ordinal)
            : new Dictionary<string, string>(StringComparer.Ordinal);

    private static Dictionary<string, RawHost> IndexHosts(RawResource resource)
    {
        var byName = new Dictionary<string, RawHost>(StringComparer.Ordinal);
        foreach (var host in resource.Hosts)
        {
            foreach (string name in host.Names)
            {
                if (!byName.TryAdd(name, host))
                {
                    throw ConfigException.At(host.Where, $"host '{name}' defined twice in resource '{resource.Name}' (first at {byName[name].Where}), expected unique host names");
                }
            }
        }
        return byName;
    }

    /// <summary>DRBD 9 requires node-id with more than two hosts; 8.4 configs without node-ids get 0, 1 in section order.</summary>
    private static int[] AssignNodeIds(RawResource resource)
    {
        var hosts = resource.Hosts;
        if (hosts.All(h => h.NodeId is null))
        {
            return hosts.Count <= 2
                ? [.. Enumerable.Range(0, hosts.Count)]
                : throw ConfigException.At(resource.Where, $"resource '{resource.Name}' has {hosts.Count} hosts but no node-id, expected 'node-id N;' in every host section");
        }
        var owners = new Dictionary<int, RawHost>();
        foreach (var host in hosts)
        {
            if (host.NodeId is not int id)
            {
                throw ConfigException.At(host.Where, $"host '{host.Names[0]}' has no node-id, expected 'node-id N;' in every host section when any has one");
            }
            if (!owners.TryAdd(id, host))
            {
                throw ConfigException.At(host.Where, $"node-id {id} of host '{host.Names[0]}' is already used by host '{owners[id].Names[0]}', expected unique node-ids");
            }
        }
        return [.. hosts.Select(h => h.NodeId!.Value)];
    }

    private static NodeDefinition ResolveNode(RawResource resource, RawHost host, int nodeId, RawAddress? connectionAddress)
    {
        var address = host.Address ?? connectionAddress;
        var numbers = resource.Volumes.Keys.Union(host.Volumes.Keys).Order().ToList();
        if (numbers.Count == 0)
        {
            throw ConfigException.At(host.Where, $"host '{host.Names[0]}' of resource '{resource.Name}' has no volume, expected 'volume N {{ disk ...; }}' or 'disk ...;'");
        }
        return new NodeDefinition
        {
            Name = host.Names[0],
            Aliases = [.. host.Names.Skip(1)],
            NodeId = nodeId,
            Address = address?.Text,
            AddressFamily = address?.Family ?? "ipv4",
            NbdAddress = host.NbdAddress ?? resource.NbdAddress ?? NodeDefinition.DefaultNbdAddress,
            Volumes = [.. numbers.Select(n => ResolveVolume(host, n, resource.Volumes.GetValueOrDefault(n), host.Volumes.GetValueOrDefault(n)))],
        };
    }

    /// <summary>Merges the resource-level volume N with the host's own (the host wins field by field).</summary>
    private static VolumeDefinition ResolveVolume(RawHost host, int number, RawVolume? shared, RawVolume? own)
    {
        string? disk = own?.Disk ?? shared?.Disk
            ?? throw ConfigException.At(own?.Where ?? host.Where, $"volume {number} of host '{host.Names[0]}' has no 'disk', expected 'disk PATH;' or 'disk none;'");
        var meta = own is { MetaDiskSet: true } ? own : shared is { MetaDiskSet: true } ? shared : null;
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var option in (shared?.DiskOptions ?? []).Concat(own?.DiskOptions ?? []))
        {
            options[option.Keyword] = option.Value;
        }
        return new VolumeDefinition
        {
            Number = number,
            Device = own?.Device ?? shared?.Device,
            Disk = disk == "none" ? null : disk,
            MetaDisk = meta?.MetaDisk ?? "internal",
            MetaIndex = meta?.MetaIndex,
            DiskOptions = options,
        };
    }
}

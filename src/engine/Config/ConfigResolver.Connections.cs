// `connection { }` and `connection-mesh { }` resolved for this engine's one-address-per-node model:
// host names must exist, a path address fills in a host without `address`, and connection-level
// net/disk options merge into the resource's (a conflict between two connections is reported).
namespace Redundancy.Block.Engine.Config;

internal static partial class ConfigResolver
{
    /// <summary>Merges connection options into <paramref name="effective"/>; returns addresses learnt from paths.</summary>
    private static Dictionary<RawHost, RawAddress> MergeConnections(
        RawResource resource,
        Dictionary<string, RawHost> hostsByName,
        Dictionary<ConfigSection, Dictionary<string, RawOption>> effective,
        List<IgnoredKeyword> ignored)
    {
        var addresses = new Dictionary<RawHost, RawAddress>();
        var fromConnection = new Dictionary<(ConfigSection, string), RawOption>();
        foreach (var connection in resource.Connections)
        {
            foreach (var entry in connection.Hosts)
            {
                var host = hostsByName.GetValueOrDefault(entry.Name)
                    ?? throw ConfigException.At(entry.Where, $"host '{entry.Name}' has no 'on' section in resource '{resource.Name}', expected one of: {string.Join(", ", hostsByName.Keys)}");
                LearnAddress(host, entry, addresses, ignored);
            }
            foreach (var option in connection.Options)
            {
                if (fromConnection.TryGetValue((option.Section, option.Keyword), out var earlier) && earlier.Value != option.Value)
                {
                    ignored.Add(new IgnoredKeyword(option.Keyword, option.Where.ToString(),
                        $"differs from '{earlier.Value}' at {earlier.Where}; per-connection options are not supported, the last value is used"));
                }
                fromConnection[(option.Section, option.Keyword)] = option;
                Section(effective, option.Section)[option.Keyword] = option;
            }
        }
        return addresses;
    }

    private static void LearnAddress(RawHost host, RawConnectionHost entry, Dictionary<RawHost, RawAddress> addresses, List<IgnoredKeyword> ignored)
    {
        var known = host.Address ?? addresses.GetValueOrDefault(host);
        RawAddress? offered = entry.Address;
        if (offered is null && entry.Port is int port && known is not null)
        {
            int colon = known.Text.LastIndexOf(':');
            offered = known with { Text = $"{known.Text[..colon]}:{port}", Where = entry.Where };
        }
        if (offered is null)
        {
            if (entry.Port is not null)
            {
                ignored.Add(new IgnoredKeyword($"host {entry.Name} port", entry.Where.ToString(), "port without an address to apply it to"));
            }
            return;
        }
        if (known is null)
        {
            addresses[host] = offered;
        }
        else if (known.Text != offered.Text || known.Family != offered.Family)
        {
            ignored.Add(new IgnoredKeyword($"host {entry.Name} address", entry.Where.ToString(),
                $"differs from {known.Text} at {known.Where}; one address per node is used"));
        }
    }
}

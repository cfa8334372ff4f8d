// Resource-only statements: `on HOST { }`, `volume N { }`, the 8.4 volume-0 statements (device,
// disk, meta-disk, flexible-meta-disk), addresses, and `connection`/`connection-mesh` sections.
using System.Globalization;

namespace Redundancy.Block.Engine.Config;

internal sealed partial class ConfigGrammar
{
    private bool ReadResourceOnlyStatement(RawResource resource, ConfigToken token)
    {
        switch (token.Text)
        {
            case "device" or "disk" or "meta-disk" or "flexible-meta-disk":
                ReadVolumeStatement(VolumeOf(resource.Volumes, 0, token.Where), token);
                return true;
            case "volume":
                ReadVolume(resource.Volumes);
                return true;
            case "on":
                resource.Hosts.Add(ReadHost(token, ReadHostNames(token)));
                return true;
            case "floating":
                ReadAddress(token);
                ReadHost(token, ["floating"]);
                resource.Ignored.Add(new IgnoredKeyword("floating", token.Where.ToString(), "host sections selected by address are not supported; use 'on HOST'"));
                return true;
            case "stacked-on-top-of":
                Skip(token, resource.Ignored, "stacked resources are not supported");
                return true;
            case "connection":
                resource.Connections.Add(ReadConnection(token, resource.Ignored));
                return true;
            case "connection-mesh":
                resource.Connections.Add(ReadMesh(token));
                return true;
            case "nbd-address":
                resource.NbdAddress = ReadNbdAddress(token);
                return true;
            default:
                return false;
        }
    }

    private static RawVolume VolumeOf(SortedDictionary<int, RawVolume> volumes, int number, SourceLocation where)
    {
        if (!volumes.TryGetValue(number, out var volume))
        {
            volume = new RawVolume(number, where);
            volumes.Add(number, volume);
        }
        return volume;
    }

    private void ReadVolume(SortedDictionary<int, RawVolume> volumes)
    {
        var number = reader.Peek;
        int n = reader.ExpectInteger("volume number", 0, 65534);
        if (volumes.ContainsKey(n))
        {
            throw ConfigException.At(number.Where, $"volume {n} defined twice in this section, expected unique volume numbers");
        }
        reader.Expect(TokenKind.OpenBrace, $"after 'volume {n}'");
        var volume = VolumeOf(volumes, n, number.Where);
        while (true)
        {
            var token = reader.Next();
            if (token.Kind == TokenKind.CloseBrace)
            {
                return;
            }
            if (token.IsWord("skip"))
            {
                Skip(token, pendingIgnored);
                continue;
            }
            if (!token.IsWord("device") && !token.IsWord("disk") && !token.IsWord("meta-disk") && !token.IsWord("flexible-meta-disk"))
            {
                throw TokenReader.Unexpected(token, $"expected device, disk, meta-disk or '}}' in volume {n}");
            }
            ReadVolumeStatement(volume, token);
        }
    }

    /// <summary>`device ...;`, `disk PATH|none;`, `disk { options }`, `meta-disk ...;`, `flexible-meta-disk ...;`.</summary>
    private void ReadVolumeStatement(RawVolume volume, ConfigToken keyword)
    {
        if (keyword.Text == "disk" && reader.Peek.Kind == TokenKind.OpenBrace)
        {
            ReadSection(ConfigSection.Disk, volume.DiskOptions, keyword);
            var moved = volume.DiskOptions.FirstOrDefault(o => o.Section != ConfigSection.Disk);
            if (moved is not null)
            {
                throw ConfigException.At(moved.Where, $"'{moved.Keyword}' is a connection option, expected it in the resource's net section, not in a volume");
            }
            return;
        }
        var values = reader.ValuesUntilDelimiter();
        if (values.Count == 0)
        {
            throw TokenReader.Unexpected(reader.Peek, $"expected a value for '{keyword.Text}'");
        }
        reader.Expect(TokenKind.Semicolon, $"after value of '{keyword.Text}'");
        switch (keyword.Text)
        {
            case "device":
                volume.Device = ParseDevice(values);
                break;
            case "disk":
                volume.Disk = values.Count == 1 ? values[0].Text : throw ConfigException.At(values[1].Where, $"expected ';' after value of 'disk', found {values[1].Describe()}");
                volume.DiskWhere = keyword.Where;
                break;
            default:
                (volume.MetaDisk, volume.MetaIndex) = ParseMetaDisk(values, flexible: keyword.Text == "flexible-meta-disk");
                volume.MetaDiskSet = true;
                break;
        }
    }

    /// <summary>`/dev/nbd0`, `minor 0`, `/dev/drbd0 minor 0`, `/dev/drbd_r0`: kept as written, minor checked.</summary>
    private static string ParseDevice(List<ConfigToken> values)
    {
        int pathCount = values[0].IsWord("minor") ? 0 : 1;
        if (values.Count == pathCount)
        {
            return values[0].Text;
        }
        if (values.Count != pathCount + 2 || !values[pathCount].IsWord("minor"))
        {
            throw TokenReader.Unexpected(values[Math.Min(pathCount, values.Count - 1)], "expected 'device PATH', 'device minor N' or 'device PATH minor N'");
        }
        var minor = values[pathCount + 1];
        if (!int.TryParse(minor.Text, NumberStyles.None, CultureInfo.InvariantCulture, out int m) || m > (1 << 20) - 1)
        {
            throw ConfigException.At(minor.Where, $"'{minor.Text}' is not a valid minor number, expected 0..{(1 << 20) - 1}");
        }
        return string.Join(' ', values.Select(v => v.Text));
    }

    /// <summary>`internal`, `PATH` (flexible), `PATH [N]` / `PATH[N]` (8.4 indexed).</summary>
    private static (string Path, int? Index) ParseMetaDisk(List<ConfigToken> values, bool flexible)
    {
        string joined = string.Concat(values.Select(v => v.Text));
        int open = joined.IndexOf('[', StringComparison.Ordinal);
        if (open < 0)
        {
            return values.Count == 1
                ? (joined, null)
                : throw TokenReader.Unexpected(values[1], "expected ';' or '[INDEX]' after the meta-disk path");
        }
        string indexText = joined[(open + 1)..].TrimEnd(']');
        bool valid = !flexible && open > 0 && joined.EndsWith(']') && joined[..open] != "internal"
            && int.TryParse(indexText, NumberStyles.None, CultureInfo.InvariantCulture, out _);
        return valid
            ? (joined[..open], int.Parse(indexText, CultureInfo.InvariantCulture))
            : throw ConfigException.At(values[0].Where, $"'{string.Join(' ', values.Select(v => v.Text))}' is not a valid meta-disk, expected internal, PATH or PATH [INDEX]");
    }

    private List<string> ReadHostNames(ConfigToken keyword)
    {
        var names = reader.ValuesUntilDelimiter().Select(t => t.Text).ToList();
        return names.Count > 0 ? names : throw TokenReader.Unexpected(reader.Peek, $"expected a host name after '{keyword.Text}'");
    }

    private RawHost ReadHost(ConfigToken keyword, IReadOnlyList<string> names)
    {
        reader.Expect(TokenKind.OpenBrace, $"after '{keyword.Text} {string.Join(' ', names)}'");
        var host = new RawHost(names, keyword.Where);
        while (true)
        {
            var token = reader.Next();
            if (token.Kind == TokenKind.CloseBrace)
            {
                return host;
            }
            ReadHostStatement(host, token);
        }
    }

    private void ReadHostStatement(RawHost host, ConfigToken token)
    {
        switch (token.Kind == TokenKind.Word ? token.Text : null)
        {
            case "node-id":
                host.NodeId = reader.ExpectInteger("node-id", 0, 31);
                reader.Expect(TokenKind.Semicolon, "after value of 'node-id'");
                break;
            case "address":
                host.Address = ReadAddress(token);
                reader.Expect(TokenKind.Semicolon, "after value of 'address'");
                break;
            case "nbd-address":
                host.NbdAddress = ReadNbdAddress(token);
                break;
            case "volume":
                ReadVolume(host.Volumes);
                break;
            case "device" or "disk" or "meta-disk" or "flexible-meta-disk":
                ReadVolumeStatement(VolumeOf(host.Volumes, 0, token.Where), token);
                break;
            case "options":
                ReadSection(ConfigSection.Options, [], token);
                pendingIgnored.Add(new IgnoredKeyword("options", token.Where.ToString(), "per-host resource options are not supported"));
                break;
            case "skip" or "proxy":
                Skip(token, pendingIgnored);
                break;
            default:
                throw TokenReader.Unexpected(token, "expected node-id, address, nbd-address, volume, device, disk, meta-disk or '}' in host section");
        }
    }
}

// Addresses (`address [ipv4|ipv6|ssocks|sdp] IP:PORT`, our `nbd-address`) and the DRBD 9
// `connection { }` / `connection-mesh { }` sections.
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Redundancy.Block.Engine.Config;

internal sealed partial class ConfigGrammar
{
    private static readonly string[] AddressFamilies = ["ipv4", "ipv6", "ssocks", "sdp", "sci"];

    /// <summary>Reads `[FAMILY] IP:PORT` after <paramref name="keyword"/> (the `;` is left to the caller).</summary>
    private RawAddress ReadAddress(ConfigToken keyword)
    {
        var first = reader.ExpectValue($"an address after '{keyword.Text}'");
        string family = "ipv4";
        var endpoint = first;
        if (AddressFamilies.Contains(first.Text, StringComparer.Ordinal))
        {
            family = first.Text;
            endpoint = reader.ExpectValue($"IP:PORT after '{keyword.Text} {family}'");
        }
        if (family is "ssocks" or "sdp" or "sci")
        {
            pendingIgnored.Add(new IgnoredKeyword($"address {family}", keyword.Where.ToString(), "address family not supported; plain TCP is used"));
            family = "ipv4";
        }
        string text = family == "ipv6" ? ParseIpv6Endpoint(endpoint) : ParseIpv4Endpoint(endpoint);
        return new RawAddress(family, text, keyword.Where);
    }

    private static string ParseIpv4Endpoint(ConfigToken token)
    {
        int colon = token.Text.LastIndexOf(':');
        bool valid = colon > 0
            && IPAddress.TryParse(token.Text[..colon], out var ip) && ip.AddressFamily == AddressFamily.InterNetwork
            && token.Text[..colon].Count(c => c == '.') == 3;
        if (!valid)
        {
            throw ConfigException.At(token.Where, $"'{token.Text}' is not a valid address, expected [ipv4|ipv6] IP:PORT");
        }
        CheckPort(token.Text[(colon + 1)..], token.Where);
        return token.Text;
    }

    private static string ParseIpv6Endpoint(ConfigToken token)
    {
        int close = token.Text.LastIndexOf("]:", StringComparison.Ordinal);
        bool valid = token.Text.StartsWith('[') && close > 1
            && IPAddress.TryParse(token.Text[1..close], out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6;
        if (!valid)
        {
            throw ConfigException.At(token.Where, $"'{token.Text}' is not a valid address, expected ipv6 [IP]:PORT");
        }
        CheckPort(token.Text[(close + 2)..], token.Where);
        return token.Text;
    }

    private static int CheckPort(string text, SourceLocation where) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is >= 1 and <= 65535
            ? port
            : throw ConfigException.At(where, $"'{text}' is not a valid port, expected 1..65535");

    /// <summary>Our extension: `nbd-address IP:PORT;`, `nbd-address [IPv6]:PORT;` or `nbd-address unix:PATH;`.</summary>
    private string ReadNbdAddress(ConfigToken keyword)
    {
        var value = reader.ExpectValue("an address after 'nbd-address'");
        reader.Expect(TokenKind.Semicolon, "after value of 'nbd-address'");
        if (value.Text.StartsWith("unix:", StringComparison.Ordinal))
        {
            return value.Text.Length > "unix:".Length
                ? value.Text
                : throw ConfigException.At(value.Where, "'unix:' has no path, expected unix:PATH");
        }
        return value.Text.StartsWith('[') ? ParseIpv6Endpoint(value) : ParseIpv4Endpoint(value);
    }

    private RawConnection ReadConnection(ConfigToken keyword, List<IgnoredKeyword> ignored)
    {
        if (reader.Peek.IsValue)
        {
            var name = reader.Next();
            ignored.Add(new IgnoredKeyword($"connection {name.Text}", name.Where.ToString(), "connection names are deprecated in DRBD 9 and ignored"));
        }
        reader.Expect(TokenKind.OpenBrace, "after 'connection'");
        var connection = new RawConnection(keyword.Where, isMesh: false);
        while (true)
        {
            var token = reader.Next();
            switch (token.Kind == TokenKind.Word ? token.Text : null)
            {
                case "host":
                    connection.Hosts.Add(ReadConnectionHost(token));
                    break;
                case "path":
                    reader.Expect(TokenKind.OpenBrace, "after 'path'");
                    while (reader.Peek.IsWord("host"))
                    {
                        connection.Hosts.Add(ReadConnectionHost(reader.Next()));
                    }
                    reader.Expect(TokenKind.CloseBrace, "after the hosts of a path (expected host or '}')");
                    break;
                case "net":
                    ReadSection(ConfigSection.Net, connection.Options, token);
                    break;
                case "disk":
                    ReadSection(ConfigSection.Disk, connection.Options, token);
                    break;
                case "volume" or "skip":
                    Skip(token, ignored, "per-peer-device options are not supported");
                    break;
                default:
                    if (token.Kind == TokenKind.CloseBrace)
                    {
                        return connection;
                    }
                    throw TokenReader.Unexpected(token, "expected host, path, net, disk or '}' in connection section");
            }
        }
    }

    /// <summary>`host NAME [address [FAMILY] IP:PORT | port N];`.</summary>
    private RawConnectionHost ReadConnectionHost(ConfigToken keyword)
    {
        var name = reader.ExpectValue("a host name after 'host'");
        RawAddress? address = null;
        int? port = null;
        if (reader.Peek.IsWord("address"))
        {
            address = ReadAddress(reader.Next());
        }
        else if (reader.Peek.IsWord("port"))
        {
            reader.Next();
            var portToken = reader.ExpectValue("a port after 'port'");
            port = CheckPort(portToken.Text, portToken.Where);
        }
        reader.Expect(TokenKind.Semicolon, $"after 'host {name.Text}'");
        return new RawConnectionHost(name.Text, address, port, keyword.Where);
    }

    private RawConnection ReadMesh(ConfigToken keyword)
    {
        reader.Expect(TokenKind.OpenBrace, "after 'connection-mesh'");
        var mesh = new RawConnection(keyword.Where, isMesh: true);
        while (true)
        {
            var token = reader.Next();
            if (token.IsWord("hosts"))
            {
                var names = ReadHostNames(token);
                reader.Expect(TokenKind.Semicolon, "after the names of 'hosts'");
                mesh.Hosts.AddRange(names.Select(n => new RawConnectionHost(n, null, null, token.Where)));
            }
            else if (token.IsWord("net"))
            {
                ReadSection(ConfigSection.Net, mesh.Options, token);
            }
            else if (token.Kind == TokenKind.CloseBrace)
            {
                return mesh;
            }
            else
            {
                throw TokenReader.Unexpected(token, "expected hosts, net or '}' in connection-mesh section");
            }
        }
    }
}

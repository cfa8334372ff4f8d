// Parses a replication `address` as the configuration holds it: "IPv4:PORT" or "[IPv6]:PORT",
// optionally preceded by DRBD's family word ("ipv4 10.0.0.1:7789", "ipv6 [fd00::1]:7789").
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Redundancy.Block.Agent.Peers;

public static class PeerAddress
{
    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> with the reason.</summary>
    public static IPEndPoint Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string value = text.Trim();
        string? family = null;
        int space = value.IndexOf(' ', StringComparison.Ordinal);
        if (space > 0)
        {
            family = value[..space];
            value = value[(space + 1)..].Trim();
        }

        if (TryParseEndPoint(value, out IPEndPoint? endPoint)
            && family switch
            {
                null => true,
                "ipv4" => endPoint.AddressFamily == AddressFamily.InterNetwork,
                "ipv6" => endPoint.AddressFamily == AddressFamily.InterNetworkV6,
                _ => false,
            })
        {
            return endPoint;
        }

        throw new FormatException($"replication address '{text}' is neither IPv4:PORT (e.g. 127.0.0.1:7789) nor [IPv6]:PORT");
    }

    private static bool TryParseEndPoint(string value, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPEndPoint? endPoint)
    {
        endPoint = null;
        int colon = value.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ushort port))
        {
            return false;
        }

        ReadOnlySpan<char> host = value.AsSpan(0, colon);
        bool bracketed = host.Length > 2 && host[0] == '[' && host[^1] == ']';
        if (!IPAddress.TryParse(bracketed ? host[1..^1] : host, out IPAddress? address)
            || (address.AddressFamily == AddressFamily.InterNetworkV6) != bracketed)
        {
            return false;
        }

        endPoint = new IPEndPoint(address, port);
        return true;
    }
}

// Parses the `nbd-address` forms the agent accepts: "IPv4:PORT" or "unix:/path/to.sock".
using System.Net;
using System.Net.Sockets;

namespace Redundancy.Block.Agent.Nbd;

/// <summary>A parsed NBD listen address.</summary>
/// <param name="EndPoint">Where to bind.</param>
/// <param name="UnixSocketPath">The socket file for a Unix address, else null.</param>
public sealed record NbdListenAddress(EndPoint EndPoint, string? UnixSocketPath)
{
    private const string UnixPrefix = "unix:";

    /// <summary>Parses <paramref name="text"/>; throws <see cref="FormatException"/> with the reason.</summary>
    public static NbdListenAddress Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.StartsWith(UnixPrefix, StringComparison.Ordinal))
        {
            string path = text[UnixPrefix.Length..];
            if (path.Length == 0 || !Path.IsPathFullyQualified(path))
            {
                throw new FormatException($"NBD address '{text}': a unix socket needs an absolute path");
            }

            return new NbdListenAddress(new UnixDomainSocketEndPoint(path), path);
        }

        int colon = text.LastIndexOf(':');
        if (colon <= 0
            || !IPAddress.TryParse(text.AsSpan(0, colon), out IPAddress? address)
            || address.AddressFamily != AddressFamily.InterNetwork
            || !ushort.TryParse(text.AsSpan(colon + 1), out ushort port))
        {
            throw new FormatException($"NBD address '{text}' is neither IPv4:PORT (e.g. 127.0.0.1:10809) nor unix:/path");
        }

        return new NbdListenAddress(new IPEndPoint(address, port), null);
    }

    public override string ToString() => UnixSocketPath is null ? EndPoint.ToString()! : UnixPrefix + UnixSocketPath;
}

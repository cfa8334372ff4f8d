using Microsoft.Extensions.Logging;
using Redundancy.Block.Agent.Nbd;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// The NBD listeners of this agent, one per distinct `nbd-address`, shared by the resources that
/// name it (the export name tells them apart) and stopped when the last one goes down.
/// </summary>
internal sealed class NbdEndpoints(INbdExportCatalog catalog, ILoggerFactory loggerFactory)
{
    private readonly Dictionary<string, (NbdServer Server, int Users)> servers = new(StringComparer.Ordinal);

    /// <summary>Starts listening on <paramref name="address"/> unless already; throws IOException when it cannot bind.</summary>
    public async Task AcquireAsync(string address, CancellationToken cancellationToken)
    {
        if (servers.TryGetValue(address, out var entry))
        {
            servers[address] = (entry.Server, entry.Users + 1);
            return;
        }
        var server = new NbdServer(address, catalog, new NbdServerOptions(), loggerFactory.CreateLogger<NbdServer>());
        try
        {
            await server.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or ArgumentException or FormatException)
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw new IOException($"cannot serve NBD on {address}: {e.Message}", e);
        }
        servers[address] = (server, 1);
    }

    /// <summary>Drops one user of <paramref name="address"/>; the last one stops the listener.</summary>
    public async Task ReleaseAsync(string address)
    {
        if (!servers.TryGetValue(address, out var entry))
        {
            return;
        }
        if (entry.Users > 1)
        {
            servers[address] = (entry.Server, entry.Users - 1);
            return;
        }
        servers.Remove(address);
        await entry.Server.StopAsync().ConfigureAwait(false);
        await entry.Server.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Stops every listener; in-flight requests complete first (agent shutdown).</summary>
    public async Task StopAllAsync()
    {
        foreach (var (server, _) in servers.Values)
        {
            await server.StopAsync().ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
        }
        servers.Clear();
    }
}

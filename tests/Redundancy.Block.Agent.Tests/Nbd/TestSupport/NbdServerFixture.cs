// Starts a real NbdServer on 127.0.0.1 (port 0) over a TestCatalog and stops it afterwards.
using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Redundancy.Block.Agent.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd.TestSupport;

public sealed class NbdServerFixture : IAsyncDisposable
{
    private NbdServerFixture(NbdServer server, TestCatalog catalog)
    {
        Server = server;
        Catalog = catalog;
    }

    public NbdServer Server { get; }

    public TestCatalog Catalog { get; }

    public EndPoint EndPoint => Server.LocalEndPoint!;

    public int Port => ((IPEndPoint)EndPoint).Port;

    public static async Task<NbdServerFixture> StartAsync(TestCatalog catalog, NbdServerOptions? options = null, string address = "127.0.0.1:0")
    {
        var server = new NbdServer(address, catalog, options ?? new NbdServerOptions(), NullLogger<NbdServer>.Instance);
        await server.StartAsync(CancellationToken.None);
        return new NbdServerFixture(server, catalog);
    }

    public NbdTestClient Connect(uint clientFlags = 3) => NbdTestClient.Connect(EndPoint, clientFlags);

    public async ValueTask DisposeAsync() => await Server.DisposeAsync();
}

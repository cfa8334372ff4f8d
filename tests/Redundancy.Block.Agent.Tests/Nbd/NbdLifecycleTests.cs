// Connection lifecycle: DISC behind unacknowledged writes, revocation, server stop, Unix sockets,
// bind failures, and releasing the export when the client goes.
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Redundancy.Block.Agent.Nbd;
using Redundancy.Block.Agent.Tests.Nbd.TestSupport;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd;

public class NbdLifecycleTests
{
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (int i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        Assert.True(condition(), "condition not reached within 5 s");
    }

    [Fact]
    public async Task Handshakes_beyond_the_limit_are_closed_at_once_and_the_server_keeps_serving()
    {
        var catalog = new TestCatalog();
        catalog.Add("r0", 1L << 20);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog, new NbdServerOptions { MaxConcurrentHandshakes = 2 });
        using NbdTestClient first = fixture.Connect();
        using NbdTestClient second = fixture.Connect();
        using var third = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        third.ReceiveTimeout = 5000;
        third.Connect(fixture.EndPoint);
        Assert.Equal(0, third.Receive(new byte[18]));
        first.Go("r0");
        // The slot frees once the server has finished first's handshake, which may be a moment after
        // first got its reply: a connection in that moment is still refused, so retry briefly.
        using NbdTestClient fourth = ConnectWhenASlotIsFree(fixture);
        fourth.Go("r0");
        Assert.Equal(1L << 20, (long)fourth.ExportSizeBytes);
    }

    private static NbdTestClient ConnectWhenASlotIsFree(NbdServerFixture fixture)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (true)
        {
            try
            {
                return fixture.Connect();
            }
            catch (EndOfStreamException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(10);
            }
        }
    }

    [Fact]
    public async Task Disc_right_behind_unacknowledged_writes_lets_them_all_land()
    {
        var catalog = new TestCatalog();
        MemoryBlockDevice device = catalog.Add("r0", 1L << 20);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        for (int trial = 0; trial < 20; trial++)
        {
            using NbdTestClient client = fixture.Connect();
            client.Go("r0");
            var burst = new List<byte>();
            for (int i = 0; i < 16; i++)
            {
                var message = new byte[NbdRequestHeader.SizeBytes + 4096];
                new NbdRequestHeader(NbdCommandFlags.None, NbdCommand.Write, (ulong)i, (ulong)i * 4096, 4096).Write(message);
                message.AsSpan(NbdRequestHeader.SizeBytes).Fill((byte)(trial + 1));
                burst.AddRange(message);
            }

            var disc = new byte[NbdRequestHeader.SizeBytes];
            new NbdRequestHeader(NbdCommandFlags.None, NbdCommand.Disconnect, 99, 0, 0).Write(disc);
            burst.AddRange(disc);
            client.Send([.. burst]);
            for (int i = 0; i < 16; i++)
            {
                Assert.Equal(NbdError.None, client.ReadSimpleReply().Error);
            }

            Assert.True(client.IsClosedByServer());
            for (int i = 0; i < 16; i++)
            {
                Assert.All(device.Peek(i * 4096L, 4096), value => Assert.Equal((byte)(trial + 1), value));
            }
        }

        await WaitUntilAsync(() => catalog.DisposeCount == 20);
    }

    [Fact]
    public async Task Revocation_fails_in_flight_requests_with_eshutdown_and_closes()
    {
        var catalog = new TestCatalog();
        MemoryBlockDevice device = catalog.Add("r0", 1L << 20);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0");
        device.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.SendRequest(NbdCommand.Flush, 1, 0, 0);
        await WaitUntilAsync(() => Volatile.Read(ref device.Started) == 1);

        catalog.Revoke("r0");
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.Shutdown, 1), client.ReadSimpleReply());
        Assert.True(client.IsClosedByServer());
        await WaitUntilAsync(() => catalog.DisposeCount == 1);
        Assert.Equal(0, fixture.Server.ConnectionCount("r0"));
    }

    [Fact]
    public async Task Stopping_the_server_completes_executing_requests_then_closes_sessions()
    {
        var catalog = new TestCatalog();
        MemoryBlockDevice device = catalog.Add("r0", 1L << 20);
        NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0");
        device.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.SendRequest(NbdCommand.Write, 1, 0, 8, payload: [1, 2, 3, 4, 5, 6, 7, 8]);
        await WaitUntilAsync(() => Volatile.Read(ref device.Started) == 1);

        Task stop = fixture.Server.StopAsync();
        await Task.Delay(100);
        Assert.False(stop.IsCompleted);
        device.Gate.SetResult();
        await stop.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 1), client.ReadSimpleReply());
        Assert.True(client.IsClosedByServer());
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8], device.Peek(0, 8));
        Assert.Equal(1, catalog.DisposeCount);
        Assert.Throws<SocketException>(() => fixture.Connect());
    }

    [Fact]
    public async Task Serves_on_a_unix_socket_replacing_a_stale_file_and_removing_it_on_stop()
    {
        string directory = Directory.CreateTempSubdirectory("nbd-test-").FullName;
        try
        {
            string path = Path.Combine(directory, "nbd.sock");
            await File.WriteAllTextAsync(path, "stale");
            var catalog = new TestCatalog();
            catalog.Add("r0", 4096);
            await using (NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog, address: "unix:" + path))
            {
                using NbdTestClient client = fixture.Connect();
                client.Go("r0");
                client.SendRequest(NbdCommand.Read, 1, 0, 4);
                Assert.Equal(NbdError.None, client.ReadSimpleReply().Error);

                var second = new NbdServer("unix:" + path, catalog, new NbdServerOptions(), NullLogger<NbdServer>.Instance);
                IOException busy = await Assert.ThrowsAsync<IOException>(() => second.StartAsync(CancellationToken.None));
                Assert.Contains(path, busy.Message);
            }

            Assert.False(File.Exists(path));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Binding_a_busy_port_throws_a_clear_error()
    {
        var catalog = new TestCatalog();
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        var second = new NbdServer($"127.0.0.1:{fixture.Port}", catalog, new NbdServerOptions(), NullLogger<NbdServer>.Instance);
        IOException error = await Assert.ThrowsAsync<IOException>(() => second.StartAsync(CancellationToken.None));
        Assert.Contains($"127.0.0.1:{fixture.Port}", error.Message);
        Assert.Throws<FormatException>(() => NbdListenAddress.Parse("[::1]:10809"));
        Assert.Throws<FormatException>(() => NbdListenAddress.Parse("unix:relative.sock"));
    }
}

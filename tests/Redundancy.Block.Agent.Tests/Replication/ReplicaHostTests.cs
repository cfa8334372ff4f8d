using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging.Abstractions;
using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Agent.Replication;
using Redundancy.Block.Agent.Resources;
using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Agent.Tests.Replication;

/// <summary>Two replica hosts in one process, over real TCP on 127.0.0.1, with real file disks.</summary>
public sealed class ReplicaHostTests : IAsyncLifetime
{
    private const long DiskBytes = 16 << 20;
    private readonly string directory = Directory.CreateTempSubdirectory("rb-replica-").FullName;
    private readonly List<IAsyncDisposable> owned = [];
    private Node alpha = null!;
    private Node beta = null!;

    public async Task InitializeAsync()
    {
        int alphaPort = FreePort(), betaPort = FreePort();
        string text = $$"""
            resource r0 {
              net { protocol C; cram-hmac-alg sha256; shared-secret "host-test"; }
              on alpha { node-id 0; address 127.0.0.1:{{alphaPort}}; volume 0 { disk {{directory}}/a.img; meta-disk internal; } }
              on beta  { node-id 1; address 127.0.0.1:{{betaPort}}; volume 0 { disk {{directory}}/b.img; meta-disk internal; } }
            }
            """;
        var resource = ConfigParser.ParseText(text, "test.conf").Resources.Single();
        alpha = await StartAsync(resource, "alpha", "beta");
        beta = await StartAsync(resource, "beta", "alpha");
    }

    public async Task DisposeAsync()
    {
        foreach (var item in Enumerable.Reverse(owned))
        {
            await item.DisposeAsync();
        }
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task Writes_replicate_over_tcp_and_a_disconnect_heals_by_bitmap_resync()
    {
        alpha.Host.SetRole(Role.Primary);
        alpha.Host.Connect();
        beta.Host.Connect();
        await WaitAsync(() => Connected(alpha, 1) && Connected(beta, 0), "connect");

        var writes = Enumerable.Range(0, 400).Select(i => alpha.Host.WriteAsync(0, i * 8192L, RandomNumberGenerator.GetBytes(4096 + (i % 3) * 4096), fua: i % 50 == 0));
        Assert.All(await Task.WhenAll(writes), Assert.True);
        Assert.True(await alpha.Host.FlushAsync());
        AssertSameFiles();
        Assert.Equal(0, alpha.Host.Locked(r => r.Volume(0).OutOfSyncBytes(1)));

        alpha.Host.Disconnect(1);
        await WaitAsync(() => !Connected(beta, 0), "the peer notices the disconnect");
        var apart = Enumerable.Range(0, 50).Select(i => alpha.Host.WriteAsync(0, (i * 37 % 2000) * 4096L, RandomNumberGenerator.GetBytes(4096), fua: false));
        Assert.All(await Task.WhenAll(apart), Assert.True);
        Assert.True(alpha.Host.Locked(r => r.Volume(0).OutOfSyncBytes(1)) >= 4096);

        alpha.Host.Connect();
        await WaitAsync(() => Connected(alpha, 1) && alpha.Host.Locked(r => r.ReplicationOf(1, 0) == ReplicationState.Established && r.Volume(0).OutOfSyncBytes(1) == 0)
            && beta.Host.Locked(r => r.ReplicationOf(0, 0) == ReplicationState.Established), "bitmap resync");
        Assert.True(await alpha.Host.FlushAsync());
        AssertSameFiles();
    }

    [Fact]
    public async Task A_Diskless_Primary_reads_and_writes_through_its_peer_over_tcp()
    {
        alpha.Host.SetRole(Role.Primary);
        alpha.Host.Connect();
        beta.Host.Connect();
        await WaitAsync(() => Connected(alpha, 1) && Connected(beta, 0), "connect");
        byte[] before = RandomNumberGenerator.GetBytes(3 << 20);
        Assert.True(await alpha.Host.WriteAsync(0, 1 << 20, before, fua: false));

        alpha.Host.Locked(r => r.AdoptLocal(0, r.Volume(0).Ids, r.Volume(0).Flags, DiskState.Diskless));
        await WaitAsync(() => beta.Host.Locked(r => r.Links[0].PeerDisks[0] == DiskState.Diskless), "beta sees alpha Diskless");
        var device = new ReplicatedVolumeDevice(alpha.Host, 0, alpha.Disk, alpha.Host.Locked(r => r.Volume(0).AgreedSizeBytes));
        byte[] read = new byte[before.Length + 1536];
        await device.ReadAsync((1 << 20) - 512, read); // unaligned, and larger than one DataRequest
        Assert.True(read.AsSpan(512, before.Length).SequenceEqual(before), "the Diskless Primary reads what it wrote, from beta");

        byte[] after = RandomNumberGenerator.GetBytes(8192);
        await device.WriteAsync(4096, after, fua: true);
        byte[] back = new byte[8192];
        await device.ReadAsync(4096, back);
        Assert.Equal(after, back);
        Assert.Equal(8192, beta.Host.Locked(r => r.Volume(0).OutOfSyncBytes(0))); // beta records what alpha's disk lacks
        Assert.False(ReadShared(Path.Combine(directory, "a.img")).AsSpan(4096, 8192).SequenceEqual(after), "nothing was written to alpha's own disk");
    }

    [Fact]
    public async Task A_wrong_secret_never_connects()
    {
        // Rebuild beta with another secret on the same port layout.
        await beta.DisposeAsync();
        owned.Remove(beta);
        string text = File.ReadAllText(Path.Combine(directory, "config")).Replace("host-test", "wrong", StringComparison.Ordinal);
        var resource = ConfigParser.ParseText(text, "test.conf").Resources.Single();
        beta = await StartAsync(resource, "beta", "alpha");
        alpha.Host.Connect();
        beta.Host.Connect();
        await WaitAsync(() => alpha.Host.Locked(r => r.Links[1].State == ConnectionState.StandAlone && r.Links[1].LastError is not null), "refusal");
        Assert.Contains("authentication", alpha.Host.Locked(r => r.Links[1].LastError) + beta.Host.Locked(r => r.Links[0].LastError), StringComparison.Ordinal);
    }

    private static bool Connected(Node node, int peer) => node.Host.Locked(r => r.Links[peer].State == ConnectionState.Connected);

    private void AssertSameFiles()
    {
        byte[] a = ReadShared(Path.Combine(directory, "a.img"));
        byte[] b = ReadShared(Path.Combine(directory, "b.img"));
        Assert.True(a.AsSpan().SequenceEqual(b), "the replicas differ");
    }

    private static byte[] ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        for (int i = 0; i < 300 && !condition(); i++)
        {
            await Task.Delay(50);
        }
        Assert.True(condition(), $"timed out waiting for: {what}");
    }

    private async Task<Node> StartAsync(ResourceDefinition resource, string local, string peer)
    {
        File.WriteAllText(Path.Combine(directory, "config"), ConfigDumper.Dump(resource));
        var localNode = resource.FindNode(local)!;
        var peerNode = resource.FindNode(peer)!;
        Assert.True(PeerLinkSettings.TryCreate(resource, localNode, peerNode, out var settings, out string error), error);
        string diskPath = localNode.Volumes[0].Disk!;
        if (!File.Exists(diskPath))
        {
            await using var file = File.Create(diskPath);
            file.SetLength(DiskBytes);
        }
        var disk = FileBlockDevice.Open(diskPath, new FileBlockDeviceOptions { Exclusive = false });
        var options = new PeerConnectionOptions();
        var listener = new PeerListener(localNode.Address!, options, NullLoggerFactory.Instance);
        listener.Start();
        var ids = new GenerationIds(0x4242_0000_0000_0000, ImmutableArray.Create(0UL), ImmutableArray<ulong>.Empty);
        var volume = new ReplicaVolume(0, DiskBytes, ids, MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate,
            new Dictionary<int, int> { [peerNode.NodeId] = 0 });
        var host = new ReplicaHost([(settings, peerNode.Address!)], [volume], new Dictionary<int, IBlockDevice> { [0] = disk },
            listener, new PeerDialer(options, NullLoggerFactory.Instance), new NoResource(), CryptoRandom.Instance, NullLogger.Instance);
        var node = new Node(host, listener, disk);
        owned.Add(node);
        return node;
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    private sealed record Node(ReplicaHost Host, PeerListener Listener, FileBlockDevice Disk) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Host.DisposeAsync();
            await Listener.DisposeAsync();
            Disk.Dispose();
        }
    }

    /// <summary>A resource with nothing to persist, no handlers and no clients.</summary>
    private sealed class NoResource : IReplicaResource
    {
        public void PersistVolume(ReplicaVolume volume, IReadOnlyCollection<int> connectedPeers)
        {
        }

        public Task<int>? StartHandler(string handler, int peerNodeId, int volume, IReadOnlyDictionary<string, string> state) => null;

        public bool TryBecomeSecondary() => true;

        public Task WriteMetadataAsync(int volume, IReadOnlyList<BitmapPageImage> bitmapPages, ActivityLogTransaction? transaction) => Task.CompletedTask;

        public Task RefreshCapacityAsync(int volume) => Task.CompletedTask;

        public void Tick()
        {
        }
    }
}

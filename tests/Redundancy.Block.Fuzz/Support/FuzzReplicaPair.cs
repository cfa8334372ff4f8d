// Two real replicas back to back in memory for the replica fuzz target. Frames are queued and
// handed over when the pair is pumped (a Replica is not re-entrant), local disk operations complete
// then too, and time moves only with Advance. The scenario byte picks the starting point (in sync,
// a bitmap resync, a full sync), the net options (protocol, csums-alg, data-integrity-alg, lz4) and
// which node is fuzzed (bit 7: the Primary, else the Secondary).
using System.Buffers;
using System.Collections.Immutable;
using Redundancy.Block.Engine.ActivityLog;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Fuzz.Support;

internal sealed class FuzzReplicaPair
{
    public const long DiskBytes = 4L << 20;
    private const ulong Shared = 0x5EED_0000_0000_0000;
    private const ulong Newer = 0x5EED_0000_0001_0000;

    private readonly Queue<byte[]> _toAlpha = new();
    private readonly Queue<byte[]> _toBeta = new();

    public FuzzReplicaPair(byte scenario)
    {
        string protocol = "ABC"[((scenario >> 2) & 3) % 3].ToString();
        string net = $"protocol {protocol}; verify-alg crc32c; connect-int 1; ping-int 1; "
            + ((scenario & 0x10) != 0 ? "csums-alg crc32c; " : "")
            + ((scenario & 0x20) != 0 ? "data-integrity-alg crc32c; " : "")
            + ((scenario & 0x40) != 0 ? "compression lz4; " : "");
        var resource = ConfigParser.ParseText($$"""
            resource r0 {
              net { {{net}} }
              on alpha { node-id 0; address 127.0.0.1:7788; volume 0 { disk /dev/null; meta-disk internal; } }
              on beta  { node-id 1; address 127.0.0.1:7789; volume 0 { disk /dev/null; meta-disk internal; } }
            }
            """, "fuzz.conf").Resources.Single();
        int start = (scenario & 3) % 3;
        Alpha = Node(resource, "alpha", "beta", start switch
        {
            0 => (new GenerationIds(Shared, ImmutableArray.Create(0UL), []), DiskState.UpToDate),
            _ => (new GenerationIds(Newer, ImmutableArray.Create(start == 1 ? Shared : GenerationIds.JustCreated), [Shared]), DiskState.UpToDate),
        }, markedBlocks: start == 1 ? 37 : 0);
        Beta = Node(resource, "beta", "alpha", start switch
        {
            2 => (new GenerationIds(GenerationIds.JustCreated, ImmutableArray.Create(0UL), []), DiskState.Inconsistent),
            _ => (new GenerationIds(Shared, ImmutableArray.Create(0UL), []), DiskState.UpToDate),
        }, markedBlocks: 0);
        Alpha.Deliver = _toBeta.Enqueue;
        Beta.Deliver = _toAlpha.Enqueue;
        Alpha.Replica.SetRole(Role.Primary);
    }

    public FuzzReplicaNode Alpha { get; }

    public FuzzReplicaNode Beta { get; }

    public long NowMs { get; private set; }

    /// <summary>Both transports up; the handshake runs to the end. False when it did not connect.</summary>
    public bool Connect()
    {
        Alpha.Replica.Connect(NowMs);
        Beta.Replica.Connect(NowMs);
        Alpha.Replica.TransportConnected(1, NowMs);
        Beta.Replica.TransportConnected(0, NowMs);
        Pump();
        return Alpha.Replica.Links[1].State == ConnectionState.Connected && Beta.Replica.Links[0].State == ConnectionState.Connected;
    }

    /// <summary>The node under fuzz: beta (the Secondary) unless bit 7 of the scenario picks alpha (the Primary).</summary>
    public static bool FuzzesPrimary(byte scenario) => (scenario & 0x80) != 0;

    /// <summary>The other node's frames are dropped from now on: what <paramref name="victim"/> receives comes from the input.</summary>
    public void Silence(FuzzReplicaNode victim) => Other(victim).Deliver = null;

    /// <summary>From now on the frames the other node sends <paramref name="victim"/> are also appended to <paramref name="recorded"/> (seed inputs).</summary>
    public void RecordFramesTo(FuzzReplicaNode victim, List<byte[]> recorded)
    {
        var queue = victim == Beta ? _toBeta : _toAlpha;
        Other(victim).Deliver = frame =>
        {
            recorded.Add(frame);
            queue.Enqueue(frame);
        };
    }

    /// <summary>The node id frames to <paramref name="node"/> come from.</summary>
    public int PeerOf(FuzzReplicaNode node) => node == Beta ? 0 : 1;

    private FuzzReplicaNode Other(FuzzReplicaNode node) => node == Beta ? Alpha : Beta;

    /// <summary>Delivers queued frames and completes disk operations until nothing moves.</summary>
    public void Pump()
    {
        for (int rounds = 0; rounds < 100_000; rounds++)
        {
            if (_toBeta.TryDequeue(out byte[]? frame))
            {
                Receive(Beta, 0, frame);
            }
            else if (_toAlpha.TryDequeue(out frame))
            {
                Receive(Alpha, 1, frame);
            }
            else if (!Alpha.CompleteOne() && !Beta.CompleteOne())
            {
                return;
            }
        }
        throw new InvalidOperationException("the pair never went quiet (100000 steps)");
    }

    /// <summary>Time passes in ticks of 100 ms.</summary>
    public void Advance(long ms)
    {
        for (long end = NowMs + ms; NowMs < end;)
        {
            NowMs += 100;
            Alpha.Replica.Tick(NowMs);
            Beta.Replica.Tick(NowMs);
            Pump();
        }
    }

    /// <summary>Hands one frame to a node as the agent's receive loop does (a bad frame closes the transport).</summary>
    public void Receive(FuzzReplicaNode node, int fromNodeId, byte[] frame)
    {
        if (!node.TransportOpen)
        {
            return;
        }
        var buffer = new ReadOnlySequence<byte>(frame);
        if (FrameReader.TryReadFrame(ref buffer, node.Replica.Links[fromNodeId].MaxFramePayloadBytes, out var header, out var payload, out string? error))
        {
            node.Replica.Receive(fromNodeId, header, payload, NowMs);
        }
        else
        {
            node.TransportOpen = false;
            node.Replica.TransportClosed(fromNodeId, error ?? "incomplete frame", NowMs);
        }
    }

    private static FuzzReplicaNode Node(ResourceDefinition resource, string local, string peer, (GenerationIds Ids, DiskState Disk) start, int markedBlocks)
    {
        if (!PeerLinkSettings.TryCreate(resource, resource.FindNode(local)!, resource.FindNode(peer)!, out var settings, out string error))
        {
            throw new InvalidOperationException(error);
        }
        var flags = start.Disk == DiskState.UpToDate ? MetadataFlags.Consistent | MetadataFlags.WasUpToDate : MetadataFlags.None;
        var volume = new ReplicaVolume(0, DiskBytes, start.Ids, flags, start.Disk, new Dictionary<int, int> { [settings.PeerNodeId] = 0 })
        {
            ActivityLog = new ActivityLogTracker(2, DiskBytes, activityLogSize4k: 8),
        };
        for (int i = 0; i < markedBlocks; i++)
        {
            volume.Bitmaps.SetBits(0, i * 23 % (DiskBytes / MetadataLayout.BytesPerBit), 1);
        }
        return new FuzzReplicaNode(settings, volume, settings.LocalNodeId + 1);
    }
}

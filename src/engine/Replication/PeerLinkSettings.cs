using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.SplitBrain;

namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// What one end of a connection needs to know, resolved from the configuration: who it is, who the
/// peer is, the net settings both must agree on, the shared secret and the timers (milliseconds).
/// The node with the lower node-id dials; the other accepts (one connection per pair, no race).
/// </summary>
public sealed record PeerLinkSettings
{
    public required string ResourceName { get; init; }
    public required string LocalNodeName { get; init; }
    public required int LocalNodeId { get; init; }
    public required string PeerNodeName { get; init; }
    public required int PeerNodeId { get; init; }
    public required ProtocolSettingsMessage Protocol { get; init; }
    public required SplitBrainPolicies Policies { get; init; }

    /// <summary>HMAC algorithm for cram-hmac-alg, or None when no authentication is configured.</summary>
    public DigestAlgorithm AuthAlgorithm { get; init; }
    public string? SharedSecret { get; init; }

    public long ConnectIntervalMs { get; init; } = 10_000;
    public long PingIntervalMs { get; init; } = 10_000;
    public long PingTimeoutMs { get; init; } = 500;
    /// <summary>DRBD's `timeout`: also bounds the whole handshake.</summary>
    public long TimeoutMs { get; init; } = 6_000;
    /// <summary>Large enough for the largest NBD request (32 MiB) as one Data frame.</summary>
    public int MaxFramePayloadBytes { get; init; } = (32 << 20) + 4096;

    /// <summary>DRBD's `fencing`: dont-care, resource-only or resource-and-stonith (a Primary that loses the peer calls fence-peer unless dont-care).</summary>
    public string Fencing { get; init; } = "dont-care";

    /// <summary>DRBD's `ko-count`: a peer that leaves a write unanswered for ko-count × timeout is dropped (0: never).</summary>
    public int KoCount { get; init; } = 7;

    /// <summary>DRBD's `on-congestion`: what a Primary does when this peer's link cannot keep up (protocol A only).</summary>
    public CongestionPolicy OnCongestion { get; init; } = CongestionPolicy.Block;

    /// <summary>DRBD's `congestion-fill`: write data in flight to the peer at which the link counts as congested (0: not checked).</summary>
    public long CongestionFillBytes { get; init; }

    /// <summary>DRBD's `congestion-extents`: active activity-log extents at which the link counts as congested.</summary>
    public int CongestionExtents { get; init; } = 1237;

    /// <summary>`sndbuf-size` with 0 (auto): Linux's largest automatic TCP send buffer (tcp_wmem), as DRBD gets with auto.</summary>
    public const long AutoSendBufferBytes = 4L << 20;

    /// <summary>DRBD's `sndbuf-size` in bytes (0: auto, <see cref="AutoSendBufferBytes"/>).</summary>
    public long SndbufSizeBytes { get; init; }

    /// <summary>
    /// Under protocol A with on-congestion block: write data on its way to the peer (sent in epochs it
    /// has not yet BarrierAcked) beyond which a write's acknowledgement waits — DRBD's writers block on
    /// a full TCP send buffer. Other policies have no bound here: congestion-fill pulls ahead or disconnects.
    /// </summary>
    public long SendBoundBytes => OnCongestion == CongestionPolicy.Block
        ? (SndbufSizeBytes > 0 ? SndbufSizeBytes : AutoSendBufferBytes)
        : long.MaxValue;

    /// <summary>`disk-flushes`: a Secondary flushes its disk at every epoch boundary (DRBD's default); no: drain only.</summary>
    public bool DiskFlushes { get; init; } = true;

    /// <summary>DRBD's `allow-remote-read` (default yes): no: client reads are never served by this peer (a far site).</summary>
    public bool AllowRemoteRead { get; init; } = true;

    /// <summary>DRBD's `csums-after-crash-only`: csums-alg is used only for a resync after this node's Primary crashed.</summary>
    public bool CsumsAfterCrashOnly { get; init; }

    public bool Dials => LocalNodeId < PeerNodeId;

    /// <summary>DRBD gives the RESOLVE_CONFLICTS tie-breaker to one side; here the higher node-id.</summary>
    public bool ResolvesConflicts => LocalNodeId > PeerNodeId;

    /// <summary>
    /// Resolves the settings for the connection from <paramref name="localNode"/> to <paramref name="peerNode"/>.
    /// Fails with an operator-facing reason when a setting cannot be put on the wire.
    /// </summary>
    public static bool TryCreate(ResourceDefinition resource, NodeDefinition localNode, NodeDefinition peerNode, out PeerLinkSettings settings, out string error)
    {
        settings = null!;
        if (!TryProtocol(resource, localNode.Name, out var protocol, out error))
        {
            return false;
        }
        var auth = DigestAlgorithm.None;
        if (resource.CramHmacAlg() is { } alg && !PeerAuthentication.TryParseAlgorithm(alg, out auth, out string? authError))
        {
            error = authError ?? $"cram-hmac-alg {alg} is not usable";
            return false;
        }
        if (auth != DigestAlgorithm.None && PeerAuthentication.CheckSecret(resource.SharedSecret()) is { } secretError)
        {
            error = secretError;
            return false;
        }
        if (!TryCongestionPolicy(resource, protocol.Protocol, out var onCongestion, out error))
        {
            return false;
        }
        settings = new PeerLinkSettings
        {
            ResourceName = resource.Name,
            LocalNodeName = localNode.Name,
            LocalNodeId = localNode.NodeId,
            PeerNodeName = peerNode.Name,
            PeerNodeId = peerNode.NodeId,
            Protocol = protocol,
            Policies = SplitBrainPolicies.FromResource(resource),
            AuthAlgorithm = auth,
            SharedSecret = auth == DigestAlgorithm.None ? null : resource.SharedSecret(),
            ConnectIntervalMs = resource.ConnectIntMs(),
            PingIntervalMs = resource.PingIntMs(),
            PingTimeoutMs = resource.PingTimeoutMs(),
            TimeoutMs = resource.TimeoutMs(),
            Fencing = resource.Fencing(),
            KoCount = resource.KoCount(),
            DiskFlushes = resource.DiskFlushes(),
            AllowRemoteRead = resource.AllowRemoteRead(),
            CsumsAfterCrashOnly = resource.CsumsAfterCrashOnly(),
            OnCongestion = onCongestion,
            CongestionFillBytes = resource.CongestionFillBytes(),
            CongestionExtents = resource.CongestionExtents(),
            SndbufSizeBytes = resource.SndbufSizeBytes(),
        };
        error = string.Empty;
        return true;
    }

    /// <summary>DRBD refuses an on-congestion policy other than block unless the protocol is A (ERR_CONG_NOT_PROTO_A).</summary>
    private static bool TryCongestionPolicy(ResourceDefinition resource, ReplicationProtocol protocol, out CongestionPolicy policy, out string error)
    {
        string name = resource.OnCongestion();
        policy = name switch
        {
            "pull-ahead" => CongestionPolicy.PullAhead,
            "disconnect" => CongestionPolicy.Disconnect,
            _ => CongestionPolicy.Block,
        };
        error = policy != CongestionPolicy.Block && protocol != ReplicationProtocol.A
            ? $"{resource.Name}: on-congestion policy {name} only with prot A allowed"
            : string.Empty;
        return error.Length == 0;
    }

    private static bool TryProtocol(ResourceDefinition resource, string localNodeName, out ProtocolSettingsMessage message, out string error)
    {
        message = default;
        error = string.Empty;
        DigestAlgorithm integrity = DigestAlgorithm.None, csums = DigestAlgorithm.None, verify = DigestAlgorithm.None;
        if (!ProtocolSettingsValues.TryParseProtocol(resource.Protocol().ToString(), out var protocol)
            || !ProtocolSettingsValues.TryParseAfterSb0Pri(resource.AfterSb0Pri(), localNodeName, out var sb0)
            || !ProtocolSettingsValues.TryParseAfterSb1Pri(resource.AfterSb1Pri(), out var sb1)
            || !ProtocolSettingsValues.TryParseAfterSb2Pri(resource.AfterSb2Pri(), out var sb2)
            || !ProtocolSettingsValues.TryParseCompression(resource.Compression(), out var compression)
            || (resource.DataIntegrityAlg() is { } i && !DigestAlgorithms.TryParse(i, out integrity))
            || (resource.CsumsAlg() is { } c && !DigestAlgorithms.TryParse(c, out csums))
            || (resource.VerifyAlg() is { } v && !DigestAlgorithms.TryParse(v, out verify)))
        {
            error = $"{resource.Name}: a net setting (protocol, after-sb-*, compression, *-alg) has a value this agent cannot use";
            return false;
        }
        var flags = (resource.AllowTwoPrimaries() ? ProtocolSettingsFlags.AllowTwoPrimaries : 0)
            | (resource.AlwaysAsbp() ? ProtocolSettingsFlags.AlwaysAsbp : 0);
        message = new ProtocolSettingsMessage(protocol, sb0, sb1, sb2, flags, integrity, csums, verify, compression);
        return true;
    }
}

/// <summary>DRBD's `on-congestion` policies.</summary>
public enum CongestionPolicy
{
    /// <summary>Writes wait for the link (DRBD's default).</summary>
    Block,
    /// <summary>Go Ahead of the peer: mark writes out of sync instead of sending them, resync when the link has drained.</summary>
    PullAhead,
    /// <summary>Drop the connection (StandAlone); the bitmap records what the peer misses.</summary>
    Disconnect,
}

namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// How `adjust` can apply new settings to a running connection (DRBD's net-options on a live
/// resource). Timers, ko-count, fencing, congestion thresholds, allow-remote-read and
/// csums-after-crash-only are read where they are used, so they apply at once. The replication
/// protocol, after-sb-*, always-asbp and allow-two-primaries are sent to a connected peer, which
/// adopts them (DRBD's P_PROTOCOL_UPDATE), so the connection stays up (rr-conflict, this node's
/// own, comes along). What else the handshake agrees on or fixes for the connection (the *-alg
/// digests, compression, the secret, disk-flushes, sndbuf-size, on-congestion) applies from the next
/// handshake: the connection is re-established. The nodes themselves and the frame size are part of
/// the replica: they need it restarted.
/// </summary>
public enum SettingsChange
{
    None,
    Live,
    /// <summary>Sent to a connected peer in a ProtocolUpdate; without one that takes it (not connected, or it speaks only protocol version 1) as Reconnect.</summary>
    ProtocolUpdate,
    Reconnect,
    Restart,
}

public static class SettingsChanges
{
    /// <summary>What it takes to go from <paramref name="running"/> to <paramref name="wanted"/> (same resource and peer).</summary>
    public static SettingsChange Compare(PeerLinkSettings running, PeerLinkSettings wanted)
    {
        if (running == wanted)
        {
            return SettingsChange.None;
        }
        if (running.ResourceName != wanted.ResourceName || running.LocalNodeId != wanted.LocalNodeId || running.PeerNodeId != wanted.PeerNodeId
            || running.LocalNodeName != wanted.LocalNodeName || running.PeerNodeName != wanted.PeerNodeName
            || running.MaxFramePayloadBytes != wanted.MaxFramePayloadBytes)
        {
            return SettingsChange.Restart;
        }
        var liveOnly = running with
        {
            ConnectIntervalMs = wanted.ConnectIntervalMs,
            PingIntervalMs = wanted.PingIntervalMs,
            PingTimeoutMs = wanted.PingTimeoutMs,
            TimeoutMs = wanted.TimeoutMs,
            KoCount = wanted.KoCount,
            Fencing = wanted.Fencing,
            CongestionFillBytes = wanted.CongestionFillBytes,
            CongestionExtents = wanted.CongestionExtents,
            AllowRemoteRead = wanted.AllowRemoteRead,
            CsumsAfterCrashOnly = wanted.CsumsAfterCrashOnly,
        };
        if (liveOnly == wanted)
        {
            return SettingsChange.Live;
        }
        var updatable = liveOnly with
        {
            Protocol = running.Protocol with
            {
                Protocol = wanted.Protocol.Protocol,
                AfterSb0Pri = wanted.Protocol.AfterSb0Pri,
                AfterSb1Pri = wanted.Protocol.AfterSb1Pri,
                AfterSb2Pri = wanted.Protocol.AfterSb2Pri,
                Flags = wanted.Protocol.Flags,
            },
            Policies = wanted.Policies,
        };
        return updatable == wanted ? SettingsChange.ProtocolUpdate : SettingsChange.Reconnect;
    }
}

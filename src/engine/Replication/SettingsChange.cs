namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// How `adjust` can apply new settings to a running connection (DRBD's net-options on a live
/// resource). Timers, ko-count, fencing, congestion thresholds, allow-remote-read and
/// csums-after-crash-only are read where they are used, so they apply at once. What the handshake
/// agrees on or fixes for the connection (after-sb-*, allow-two-primaries, the *-alg digests,
/// compression, the secret, disk-flushes, sndbuf-size, on-congestion, and the replication protocol
/// itself) applies from the next handshake: the
/// connection is re-established (DRBD changes the protocol on a live connection with
/// P_PROTOCOL_UPDATE; a reconnect, with the bitmap resync of what was written meanwhile, is this
/// engine's equivalent). The nodes themselves and the frame size are part of the replica: they
/// need it restarted.
/// </summary>
public enum SettingsChange
{
    None,
    Live,
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
        return liveOnly == wanted ? SettingsChange.Live : SettingsChange.Reconnect;
    }
}

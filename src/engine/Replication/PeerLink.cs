using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using WireDisconnectReason = Redundancy.Block.Engine.Peers.Protocol.DisconnectReason;

namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// One connection to one peer, as DRBD's connection state machine: connect, feature negotiation,
/// mutual HMAC challenge-response, the protocol settings that must agree, per-volume sizes, UUIDs
/// and states, then the sync handshake's verdict; ping/ping-timeout while connected; reconnect
/// every connect-int after a network failure. Pure: the host feeds it transport events, frames and
/// the time, and carries out what <see cref="TakeOutput"/> returns. Not thread-safe.
/// Failures that retrying cannot fix (wrong secret, incompatible settings, unrelated data, an
/// unresolved split brain) leave it StandAlone, as DRBD does; the rest reconnect.
/// </summary>
public sealed partial class PeerLink
{
    private PeerLinkSettings settings;
    private readonly IPeerLinkHost host;
    private readonly IRandom random;
    private PeerLinkOutput output = new();
    private Handshake? handshake;
    private long nextDialAtMs = long.MaxValue;
    private long lastReceivedMs;
    private long pingSentAtMs = -1;

    /// <summary>
    /// Volumes whose sync handshake with this peer found data on both sides since this node started
    /// (the link lives as long as the replica): DRBD 9's RECONNECT bit, sent per volume as UUID flag
    /// Reconnect, which makes this node the survivor of the peer's crash as Primary (rule 42): it held
    /// the peer's writes as they were acknowledged and has not restarted since. Unlike DRBD's bit (any
    /// connection that was lost), a connection while either side was Diskless does not count: it
    /// carried none of the peer's data, and a node that restarted before it may have lost unflushed
    /// writes the crashed Primary's disk still holds; nor does one before this node's disk was
    /// attached again (<see cref="LocalDiskAttached"/>).
    /// </summary>
    private readonly HashSet<int> replicatedVolumes = [];

    public PeerLink(PeerLinkSettings settings, IPeerLinkHost host, IRandom random)
    {
        Invariant.Assert(settings.LocalNodeId != settings.PeerNodeId, "a peer link joins two different nodes");
        this.settings = settings;
        this.host = host;
        this.random = random;
    }

    public PeerLinkSettings Settings => settings;

    public ConnectionState State { get; private set; } = ConnectionState.StandAlone;

    /// <summary>A transport is up and its handshake under way (not Connected yet).</summary>
    public bool Handshaking => handshake is not null && State != ConnectionState.Connected;

    public Role PeerRole { get; private set; } = Role.Unknown;

    /// <summary>The peer's disk state per volume, as of the handshake; DUnknown while not connected.</summary>
    public IReadOnlyDictionary<int, DiskState> PeerDisks => peerDisks;

    private readonly Dictionary<int, DiskState> peerDisks = [];

    /// <summary>Volumes this node attached while connected, waiting for the peer's answer to run the sync handshake.</summary>
    private readonly HashSet<int> renegotiating = [];

    /// <summary>Why the link last went StandAlone or dropped, for status and logs.</summary>
    public string? LastError { get; private set; }

    /// <summary>The largest frame payload agreed with the peer (the transport enforces it).</summary>
    public int MaxFramePayloadBytes => handshake?.Negotiated?.MaxFramePayloadBytes ?? FrameHeader.HandshakeMaxPayloadBytes;

    /// <summary>The features both sides offered on the current connection (None before Features were exchanged).</summary>
    public FeatureFlags AgreedFeatures => handshake?.Negotiated?.Flags ?? FeatureFlags.None;

    public PeerLinkOutput TakeOutput()
    {
        var taken = output;
        output = new PeerLinkOutput();
        return taken;
    }

    /// <summary>`connect`: leave StandAlone and keep trying until connected.</summary>
    public void Connect(long nowMs)
    {
        if (State != ConnectionState.StandAlone)
        {
            return;
        }
        LastError = null;
        SetState(ConnectionState.Connecting);
        nextDialAtMs = settings.Dials ? nowMs : long.MaxValue;
        Tick(nowMs);
    }

    /// <summary>
    /// `disconnect`: tell the peer, drop the transport, stay StandAlone. <paramref name="reason"/>
    /// names why when it is not the administrator's command (on-congestion disconnect).
    /// </summary>
    public void Disconnect(string? reason = null)
    {
        if (reason is not null)
        {
            LastError = reason;
            output.Log.Add($"{Subject}: {reason}");
        }
        CloseGracefully(reason ?? "disconnect requested by the administrator", reason ?? "disconnect requested");
        nextDialAtMs = long.MaxValue;
        adjustPending = false;
        SetState(ConnectionState.StandAlone);
    }

    /// <summary>A transport to the peer is up (dialled by us or accepted): start the handshake.</summary>
    public void TransportConnected(long nowMs)
    {
        if (State == ConnectionState.StandAlone || handshake is not null)
        {
            // Not wanted (StandAlone) or one is already up: refuse the newcomer.
            output.CloseReason ??= State == ConnectionState.StandAlone ? "StandAlone: not accepting connections" : "already connected";
            return;
        }
        nextDialAtMs = long.MaxValue;
        lastReceivedMs = nowMs;
        handshake = new Handshake(nowMs + settings.TimeoutMs);
        var flags = FeatureFlags.Trim | FeatureFlags.WriteZeroes | FeatureFlags.ResyncZeroes | FeatureFlags.ChecksummedResync | FeatureFlags.OnlineVerify
            | (settings.AuthAlgorithm != DigestAlgorithm.None ? FeatureFlags.Authentication : 0)
            | (settings.Protocol.Compression == CompressionAlgorithm.Lz4 ? FeatureFlags.Lz4Compression : 0);
        handshake.OwnFeatures = new FeaturesMessage(FeaturesMessage.MinSupportedProtocolVersion, FeaturesMessage.CurrentProtocolVersion, flags, (uint)settings.MaxFramePayloadBytes);
        Send(0, handshake.OwnFeatures);
        Send(0, new HelloMessage((byte)settings.LocalNodeId, (byte)settings.PeerNodeId, settings.ResourceName, settings.LocalNodeName));
    }

    /// <summary>The transport went away (peer closed, reset, frame error...).</summary>
    public void TransportClosed(string reason, long nowMs)
    {
        if (handshake is null)
        {
            return;
        }
        bool wasConnected = State == ConnectionState.Connected;
        ForgetConnection();
        if (State == ConnectionState.StandAlone)
        {
            return;
        }
        LastError = reason;
        output.Log.Add($"{Subject}: connection lost: {reason}");
        Reconnect(wasConnected ? ConnectionState.NetworkFailure : ConnectionState.BrokenPipe, nowMs);
    }

    /// <summary>What the resync learned about the peer's disk (Inconsistent while it is SyncTarget, UpToDate after).</summary>
    public void SetPeerDisk(int volume, DiskState disk)
    {
        if (State == ConnectionState.Connected && peerDisks.TryGetValue(volume, out var before) && before != disk)
        {
            output.Transitions.Add(new StateTransition($"{Subject}/{volume}", "peer-disk", before.ToString(), disk.ToString()));
            peerDisks[volume] = disk;
        }
    }

    /// <summary>
    /// While connected: tells the peer this node's role and disk states again (after a promotion,
    /// demotion, detach or a finished resync), as DRBD sends P_STATE on every state change.
    /// </summary>
    public void AnnounceState()
    {
        if (State != ConnectionState.Connected)
        {
            return;
        }
        foreach (var volume in host.VolumesFor(settings.PeerNodeId))
        {
            Send((ushort)volume.Volume, new StateMessage(host.Role, volume.Disk, peerDisks.GetValueOrDefault(volume.Volume, DiskState.DUnknown),
                host.ReplicationOf(settings.PeerNodeId, volume.Volume), StateFlags.None));
        }
    }

    /// <summary>While connected: sends one volume's UUIDs (a sync source does before it starts a resync the peer did not decide).</summary>
    public void AnnounceUuids(int volume)
    {
        if (State != ConnectionState.Connected)
        {
            return;
        }
        foreach (var view in host.VolumesFor(settings.PeerNodeId).Where(v => v.Volume == volume))
        {
            Send((ushort)volume, UuidsOf(view));
        }
    }

    /// <summary>
    /// While connected: this node attached a disk to <paramref name="volume"/> (its disk is Negotiating):
    /// tell the peer its sizes, UUIDs and state, as at connect time; the peer answers with its own and
    /// both run the sync handshake for the volume again (DRBD's attach while connected). The decision
    /// comes out as <see cref="PeerLinkOutput.Renegotiated"/>.
    /// </summary>
    public void Renegotiate(int volume)
    {
        if (State != ConnectionState.Connected)
        {
            return;
        }
        SendOwnVolumeState(volume);
        renegotiating.Add(volume);
    }

    /// <summary>
    /// This node attached a disk to <paramref name="volume"/>: that disk did not hold the peer's writes
    /// all along, so it counts as a survivor again only after a handshake compared its data.
    /// </summary>
    public void LocalDiskAttached(int volume) => replicatedVolumes.Remove(volume);

    /// <summary>While connected: sends one volume's sizes (a resize request or its answer, with <paramref name="flags"/>).</summary>
    public void SendSizes(int volume, SizesFlags flags)
    {
        if (State != ConnectionState.Connected)
        {
            return;
        }
        foreach (var view in host.VolumesFor(settings.PeerNodeId).Where(v => v.Volume == volume))
        {
            Send((ushort)volume, SizesOf(view, flags));
        }
    }

    /// <summary>The peer's UUIDs for a volume as it last sent them on this connection.</summary>
    public Generations.UuidSet? PeerUuids(int volume) =>
        handshake is not null && handshake.Volumes.TryGetValue(volume, out var peer) && peer.Uuids is { } u
            ? new Generations.UuidSet(u.Current, u.Bitmap, u.History)
            : null;

    /// <summary>Queues a frame on the connection (state-change requests and replies of the resource).</summary>
    public void SendMessage<T>(int volume, in T message) where T : struct, IPeerMessage<T>
    {
        if (State == ConnectionState.Connected)
        {
            Send((ushort)volume, message);
        }
    }

    /// <summary>The data path found the peer misbehaving: drop the connection and reconnect.</summary>
    public void Fail(string reason) => Drop(reason, ConnectionState.ProtocolError);

    /// <summary>Traffic the data path handled itself still proves the peer alive (no ping needed).</summary>
    public void Heard(long nowMs) => lastReceivedMs = Math.Max(lastReceivedMs, nowMs);

    /// <summary>Timers: dialling every connect-int, the handshake deadline, ping and ping-timeout.</summary>
    public void Tick(long nowMs)
    {
        if (State == ConnectionState.Connecting && handshake is null && nowMs >= nextDialAtMs)
        {
            nextDialAtMs = nowMs + settings.ConnectIntervalMs;
            output.Dial = true;
        }
        if (handshake is null)
        {
            return;
        }
        if (State != ConnectionState.Connected && nowMs >= handshake.DeadlineMs)
        {
            Drop("the handshake did not complete within timeout", ConnectionState.Timeout);
            return;
        }
        if (State != ConnectionState.Connected)
        {
            return;
        }
        if (pingSentAtMs >= 0 && nowMs - pingSentAtMs > settings.PingTimeoutMs)
        {
            // One connection carries data and pings (DRBD has a separate meta socket): a PingAck can
            // be queued behind megabytes of data. Frames arriving since the ping prove the peer alive.
            if (lastReceivedMs > pingSentAtMs)
            {
                pingSentAtMs = -1;
            }
            else
            {
                Drop("PingAck did not arrive in time", ConnectionState.NetworkFailure);
            }
        }
        else if (pingSentAtMs < 0 && nowMs - lastReceivedMs >= settings.PingIntervalMs)
        {
            pingSentAtMs = nowMs;
            Send(0, default(PingMessage));
        }
    }

    private string Subject => $"{settings.ResourceName} {settings.PeerNodeName}";

    private void Send<T>(ushort volume, in T message) where T : struct, IPeerMessage<T>
    {
        var frame = new byte[FrameWriter.FrameLength(message)];
        FrameWriter.Write(frame, volume, message);
        output.Frames.Add(frame);
    }

    private void CloseTransport(string reason)
    {
        output.CloseReason ??= reason;
        ForgetConnection();
    }

    /// <summary>The peer takes invalidate's --reset-bitmap=no (<see cref="StateChangeRequestFlags.KeepBitmap"/>).</summary>
    public bool SpeaksKeepBitmap => Speaks(FeaturesMessage.KeepBitmapVersion);

    /// <summary>The connection agreed on protocol <paramref name="version"/> or a later one.</summary>
    private bool Speaks(ushort version) => handshake?.Negotiated is { } negotiated && negotiated.ProtocolVersion >= version;

    /// <summary>Drops everything learned over the connection that just ended.</summary>
    private void ForgetConnection()
    {
        handshake = null;
        pingSentAtMs = -1;
        PeerRole = Role.Unknown;
        peerDisks.Clear();
        renegotiating.Clear();
    }

    /// <summary>Goes through <paramref name="failure"/> back to Connecting; the dialling side dials again connect-int after <paramref name="fromMs"/>.</summary>
    private void Reconnect(ConnectionState failure, long fromMs)
    {
        SetState(failure);
        SetState(ConnectionState.Unconnected);
        SetState(ConnectionState.Connecting);
        nextDialAtMs = settings.Dials ? fromMs + settings.ConnectIntervalMs : long.MaxValue;
    }

    /// <summary>A refusal retrying cannot fix (ours or the peer's): close and stay StandAlone.</summary>
    private void StandAlone(string text)
    {
        LastError = text;
        output.Log.Add($"{Subject}: {text}");
        CloseTransport(text);
        nextDialAtMs = long.MaxValue;
        SetState(ConnectionState.Disconnecting);
        SetState(ConnectionState.StandAlone);
    }

    /// <summary>A failure worth retrying: close, go through <paramref name="failure"/> and reconnect.</summary>
    private void Drop(string reason, ConnectionState failure)
    {
        LastError = reason;
        output.Log.Add($"{Subject}: {reason}");
        CloseTransport(reason);
        Reconnect(failure, lastReceivedMs);
    }

    /// <summary>An ordered goodbye on a live transport (a planned disconnect): the peer learns why, and what our role was.</summary>
    private void CloseGracefully(string message, string closeReason)
    {
        if (handshake is null)
        {
            return;
        }
        if (State == ConnectionState.Connected)
        {
            output.GracefulDisconnectPeerRole = PeerRole;
        }
        Send(0, new DisconnectMessage(WireDisconnectReason.Requested, message));
        CloseTransport(closeReason);
    }

    /// <summary>
    /// The host found the split brain unresolved after the handshake connected (a losing Primary that
    /// could not demote): tell the peer, close, StandAlone, as an unresolved handshake does.
    /// </summary>
    public void RefuseUnresolvedSplitBrain(string text) => GiveUp(WireDisconnectReason.SplitBrain, text);

    /// <summary>A failure retrying cannot fix: tell the peer why, close, StandAlone (but see <see cref="RetriedAfterAdjust"/>).</summary>
    private void GiveUp(WireDisconnectReason reason, string text)
    {
        Send(0, DisconnectMessage.Create(reason, text));
        if (!RetriedAfterAdjust(reason, text))
        {
            StandAlone(text);
        }
    }

    private void SetState(ConnectionState state)
    {
        if (state == ConnectionState.Connected)
        {
            adjustPending = false;
        }
        if (State != state)
        {
            output.Transitions.Add(new StateTransition(Subject, "conn", State.ToString(), state.ToString()));
            State = state;
        }
    }

    private void SetPeerRole(Role role)
    {
        if (PeerRole != role)
        {
            output.Transitions.Add(new StateTransition(Subject, "peer", PeerRole.ToString(), role.ToString()));
            PeerRole = role;
        }
    }

    /// <summary>Per-connection handshake progress; gone when the transport is.</summary>
    private sealed class Handshake(long deadlineMs)
    {
        public long DeadlineMs { get; } = deadlineMs;
        public FeaturesMessage OwnFeatures { get; set; }
        public NegotiatedFeatures? Negotiated { get; set; }
        public bool HelloReceived { get; set; }
        public AuthChallengeMessage? OwnChallenge { get; set; }
        public bool PeerAuthenticated { get; set; }
        public bool SettingsSent { get; set; }
        public bool SettingsAgreed { get; set; }
        public Dictionary<int, PeerVolume> Volumes { get; } = [];
        public IReadOnlyList<LocalVolumeView>? Local { get; set; }
    }

    /// <summary>What the peer said about one volume.</summary>
    private sealed class PeerVolume
    {
        public SizesMessage? Sizes { get; set; }
        public UuidsMessage? Uuids { get; set; }
        public StateMessage? State { get; set; }
        public bool Complete => Sizes is not null && Uuids is not null && State is not null;
    }
}

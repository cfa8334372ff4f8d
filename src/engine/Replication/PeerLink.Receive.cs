using System.Buffers;
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;
using WireDisconnectReason = Redundancy.Block.Engine.Peers.Protocol.DisconnectReason;

namespace Redundancy.Block.Engine.Replication;

// The receive side of the handshake: each frame is checked for its place (phase), decoded with
// validation, and moves the handshake on. Anything out of order is a protocol error (reconnect);
// a refused identity, secret or setting is final (StandAlone).
public sealed partial class PeerLink
{
    /// <summary>A complete frame from the peer (the transport already checked framing and size).</summary>
    public void Receive(in FrameHeader header, in ReadOnlySequence<byte> payload, long nowMs)
    {
        if (handshake is null)
        {
            return; // a frame still in flight after we closed
        }
        lastReceivedMs = nowMs;
        var phase = handshake.SettingsAgreed ? PeerPhase.Established : PeerPhase.Handshake;
        if (MessageTypes.CheckPlace(header, phase) is { } misplaced)
        {
            Drop($"protocol error: {misplaced}", ConnectionState.ProtocolError);
            return;
        }
        ushort volume = header.Volume;
        switch (header.Type)
        {
            case MessageType.Features: Decode<FeaturesMessage>(payload, OnFeatures); break;
            case MessageType.Hello: Decode<HelloMessage>(payload, OnHello); break;
            case MessageType.AuthChallenge: Decode<AuthChallengeMessage>(payload, OnAuthChallenge); break;
            case MessageType.AuthResponse: Decode<AuthResponseMessage>(payload, OnAuthResponse); break;
            case MessageType.ProtocolSettings: Decode<ProtocolSettingsMessage>(payload, OnProtocolSettings); break;
            case MessageType.ProtocolUpdate: Decode<ProtocolUpdateMessage>(payload, OnProtocolUpdate); break;
            case MessageType.Sizes: Decode<SizesMessage>(payload, m => PeerVolumeOf(volume).Sizes = m); break;
            case MessageType.Uuids: Decode<UuidsMessage>(payload, m => PeerVolumeOf(volume).Uuids = m); break;
            case MessageType.State: Decode<StateMessage>(payload, m => OnState(volume, m)); break;
            case MessageType.Ping: Send(0, default(PingAckMessage)); break;
            case MessageType.PingAck: pingSentAtMs = -1; break;
            case MessageType.Disconnect: Decode<DisconnectMessage>(payload, OnPeerDisconnect); break;
            default:
                Drop($"protocol error: {header.Type} is not handled on this connection yet", ConnectionState.ProtocolError);
                return;
        }
        if (handshake is not null && handshake.SettingsAgreed && State != ConnectionState.Connected)
        {
            MaybeDecide();
        }
    }

    private void Decode<T>(in ReadOnlySequence<byte> payload, Action<T> handle) where T : struct, IPeerMessage<T>
    {
        if (!FramePayload.TryRead(payload, out T message, out string? error))
        {
            Drop($"protocol error: {error}", ConnectionState.ProtocolError);
            return;
        }
        handle(message);
    }

    private void OnFeatures(FeaturesMessage features)
    {
        var hs = handshake!;
        if (hs.Negotiated is not null)
        {
            Drop("protocol error: Features sent twice", ConnectionState.ProtocolError);
            return;
        }
        if (!FeaturesMessage.TryNegotiate(hs.OwnFeatures, features, out var negotiated, out string? error))
        {
            GiveUp(WireDisconnectReason.IncompatibleSettings, $"incompatible features: {error}");
            return;
        }
        hs.Negotiated = negotiated;
        if (settings.Protocol.Compression == CompressionAlgorithm.Lz4)
        {
            output.Log.Add((negotiated.Flags & FeatureFlags.Lz4Compression) != 0
                ? $"{Subject}: LZ4 compression agreed with the peer"
                : $"{Subject}: compression lz4 is not configured on the peer: data is sent uncompressed");
        }
    }

    private void OnHello(HelloMessage hello)
    {
        var hs = handshake!;
        string? refusal = hs.Negotiated is null ? "Hello before Features"
            : hs.HelloReceived ? "Hello sent twice"
            : hello.ResourceName != settings.ResourceName ? $"peer speaks for resource '{hello.ResourceName}', not '{settings.ResourceName}'"
            : hello.SenderNodeId != settings.PeerNodeId ? $"peer claims node-id {hello.SenderNodeId}, {settings.PeerNodeName} is node-id {settings.PeerNodeId}"
            : hello.ReceiverNodeId != settings.LocalNodeId ? $"peer expects node-id {hello.ReceiverNodeId}, this node is node-id {settings.LocalNodeId}"
            : null;
        if (refusal is not null)
        {
            GiveUp(WireDisconnectReason.WrongPeer, refusal);
            return;
        }
        hs.HelloReceived = true;
        if (settings.AuthAlgorithm != DigestAlgorithm.None)
        {
            hs.OwnChallenge = AuthChallengeMessage.Create(random);
            Send(0, hs.OwnChallenge.Value);
        }
        else
        {
            hs.PeerAuthenticated = true;
            SendSettings();
        }
    }

    private void OnAuthChallenge(AuthChallengeMessage challenge)
    {
        var hs = handshake!;
        if (!hs.HelloReceived || hs.OwnChallenge is null)
        {
            GiveUp(WireDisconnectReason.AuthenticationFailed, "authentication failed: a challenge arrived before this node asked for one (no cram-hmac-alg here?)");
            return;
        }
        if (PeerAuthentication.IsReflected(hs.OwnChallenge.Value, challenge))
        {
            GiveUp(WireDisconnectReason.AuthenticationFailed, "authentication failed: the peer reflected our challenge");
            return;
        }
        Send(0, PeerAuthentication.ComputeResponse(settings.AuthAlgorithm, settings.SharedSecret!, challenge, settings.LocalNodeId));
    }

    private void OnAuthResponse(AuthResponseMessage response)
    {
        var hs = handshake!;
        if (hs.OwnChallenge is null || hs.PeerAuthenticated)
        {
            GiveUp(WireDisconnectReason.AuthenticationFailed, "authentication failed: an unexpected response");
            return;
        }
        if (!PeerAuthentication.Verify(settings.AuthAlgorithm, settings.SharedSecret!, hs.OwnChallenge.Value, settings.PeerNodeId, response, out string? error))
        {
            GiveUp(WireDisconnectReason.AuthenticationFailed, error!);
            return;
        }
        hs.PeerAuthenticated = true;
        output.Log.Add($"{Subject}: peer authenticated using {DigestAlgorithms.Name(settings.AuthAlgorithm)}");
        SendSettings();
    }

    private void SendSettings()
    {
        var hs = handshake!;
        if (!hs.SettingsSent)
        {
            hs.SettingsSent = true;
            Send(0, settings.Protocol);
        }
    }

    private void OnProtocolSettings(ProtocolSettingsMessage peerSettings)
    {
        var hs = handshake!;
        if (!hs.PeerAuthenticated)
        {
            GiveUp(WireDisconnectReason.AuthenticationFailed, "authentication failed: the peer skipped the challenge (is its cram-hmac-alg set?)");
            return;
        }
        if (SettingsMismatch.Find(settings.Protocol, peerSettings) is { } mismatch)
        {
            GiveUp(WireDisconnectReason.IncompatibleSettings, mismatch.ToString());
            return;
        }
        hs.SettingsAgreed = true;
        hs.Local = host.VolumesFor(settings.PeerNodeId);
        foreach (var volume in hs.Local)
        {
            SendVolume(volume);
        }
    }

    private void SendVolume(LocalVolumeView volume)
    {
        ushort number = (ushort)volume.Volume;
        Send(number, SizesOf(volume, SizesFlags.None));
        Send(number, UuidsOf(volume));
        Send(number, new StateMessage(host.Role, volume.Disk, DiskState.DUnknown, ReplicationState.Off, StateFlagsOf(volume)));
    }

    /// <summary>
    /// The flags this node's P_STATE carries for a volume, at connect time and on renegotiation alike:
    /// the peer's decision reads our discard-my-data from them, as ours reads it locally (DRBD sends it
    /// with every P_UUIDS, drbd_send_uuids' UUID_FLAG_DISCARD_MY_DATA).
    /// </summary>
    private StateFlags StateFlagsOf(LocalVolumeView volume) =>
        (volume.DiscardMyData ? StateFlags.DiscardMyData : 0) | (settings.ResolvesConflicts ? StateFlags.ResolveConflicts : 0);

    /// <summary>This node's sizes of a volume (DRBD's drbd_send_sizes): usable (0 without data) and current.</summary>
    private SizesMessage SizesOf(LocalVolumeView volume, SizesFlags flags)
    {
        var usable = (ulong)volume.AdvertisedUsableBytes;
        return new SizesMessage(usable, usable, 0, (uint)Math.Min(settings.MaxFramePayloadBytes, 1 << 20), (ulong)volume.CurrentSizeBytes, flags);
    }

    private UuidsMessage UuidsOf(LocalVolumeView volume)
    {
        var flags = (volume.Flags.HasFlag(MetadataFlags.CrashedPrimary) ? UuidFlags.CrashedPrimary : 0)
            | (volume.Flags.HasFlag(MetadataFlags.Consistent) ? UuidFlags.Consistent : 0)
            | (volume.Flags.HasFlag(MetadataFlags.WasUpToDate) ? UuidFlags.WasUpToDate : 0)
            | (replicatedVolumes.Contains(volume.Volume) ? UuidFlags.Reconnect : 0)
            | (volume.MissedWrites && Speaks(FeaturesMessage.MissedWritesVersion) ? UuidFlags.MissedWrites : 0);
        return new UuidsMessage(volume.Uuids.Current, volume.Uuids.Bitmap, volume.Uuids.History, flags, (ulong)volume.OutOfSyncBits);
    }

    /// <summary>
    /// The peer's disk as this node may count it while replicating in <paramref name="replication"/>:
    /// once this node is going to be its sync source (WFBitMapS: a handshake's decision, or the
    /// peer's invalidate granted) the peer's copy is at most Consistent, whatever it said before the
    /// peer heard of the resync (DRBD's sanitize_state: max_peer_disk_state D_CONSISTENT in
    /// L_STARTING_SYNC_S and L_WF_BITMAP_S). A Primary whose own disk fails then neither writes to
    /// nor reads from that copy as if it were current (drbd_should_do_remote wants D_UP_TO_DATE).
    /// </summary>
    internal static DiskState PeerDiskWhile(ReplicationState replication, DiskState disk) =>
        replication == ReplicationState.WFBitMapS && disk == DiskState.UpToDate ? DiskState.Consistent : disk;

    private PeerVolume PeerVolumeOf(ushort volume)
    {
        var volumes = handshake!.Volumes;
        if (!volumes.TryGetValue(volume, out var peer))
        {
            peer = new PeerVolume();
            volumes[volume] = peer;
        }
        return peer;
    }

    private void OnState(ushort volume, StateMessage state)
    {
        PeerVolumeOf(volume).State = state;
        if (State != ConnectionState.Connected)
        {
            return;
        }
        SetPeerRole(state.Role);
        bool known = peerDisks.TryGetValue(volume, out var before);
        var disk = PeerDiskWhile(host.ReplicationOf(settings.PeerNodeId, volume), state.Disk);
        if (known && before != disk)
        {
            output.Transitions.Add(new Resources.StateTransition($"{Subject}/{volume}", "peer-disk", before.ToString(), disk.ToString()));
        }
        peerDisks[volume] = disk;
        if (renegotiating.Contains(volume) && state.PeerDisk == DiskState.Negotiating)
        {
            // The peer's answer to our attach: it has seen our UUIDs and decided; now we do.
            renegotiating.Remove(volume);
            DecideAgain(volume);
        }
        else if (state.Disk == DiskState.Negotiating && before != DiskState.Negotiating)
        {
            // The peer attached a disk: answer with our UUIDs and state (its view of us changes
            // nothing until it has them), then decide as it will.
            renegotiating.Remove(volume);
            SendOwnVolumeState(volume);
            DecideAgain(volume);
        }
    }

    /// <summary>One volume's sizes, UUIDs and state, as sent at connect time (our view of the peer's disk included).</summary>
    private void SendOwnVolumeState(int volume)
    {
        foreach (var view in host.VolumesFor(settings.PeerNodeId).Where(v => v.Volume == volume))
        {
            Send((ushort)volume, SizesOf(view, SizesFlags.None));
            Send((ushort)volume, UuidsOf(view));
            Send((ushort)volume, new StateMessage(host.Role, view.Disk, peerDisks.GetValueOrDefault(volume, DiskState.DUnknown),
                host.ReplicationOf(settings.PeerNodeId, volume), StateFlagsOf(view)));
        }
    }

    /// <summary>The sync handshake for one volume on an established connection (after an attach on either side).</summary>
    private void DecideAgain(int volume)
    {
        var local = host.VolumesFor(settings.PeerNodeId).Where(v => v.Volume == volume).ToList();
        if (local.Count == 0 || !handshake!.Volumes.TryGetValue(volume, out var peer) || !peer.Complete)
        {
            Drop($"protocol error: volume {volume} renegotiated without its UUIDs and sizes", ConnectionState.ProtocolError);
            return;
        }
        // The device size stays as agreed: an attached disk must fit it (the host checks), and it
        // changes online only by `resize`.
        if (TryDecide(local[0], peer, local[0].CurrentSizeBytes, out var decision))
        {
            NoteReplicated(decision);
            output.Renegotiated.Add(decision);
        }
    }

    private void OnPeerDisconnect(DisconnectMessage message)
    {
        string text = $"peer disconnected: {message.Text}";
        if (message.Reason is (WireDisconnectReason.Requested or WireDisconnectReason.Shutdown) && State == ConnectionState.Connected)
        {
            output.GracefulDisconnectPeerRole = PeerRole;
        }
        if (message.Reason is WireDisconnectReason.Requested or WireDisconnectReason.Shutdown or WireDisconnectReason.ProtocolError)
        {
            Drop(text, ConnectionState.BrokenPipe);
            return;
        }
        // The peer refused us for a reason retrying cannot fix: both ends stand alone.
        if (!RetriedAfterAdjust(message.Reason, text))
        {
            StandAlone(text);
        }
    }

    /// <summary>Once the peer described every volume: the sync handshake per volume, then Connected or not.</summary>
    private void MaybeDecide()
    {
        var hs = handshake!;
        var local = hs.Local!;
        foreach (int peerVolume in hs.Volumes.Keys)
        {
            if (local.All(l => l.Volume != peerVolume))
            {
                GiveUp(WireDisconnectReason.IncompatibleSettings, $"the peer has volume {peerVolume}, which is not configured here");
                return;
            }
        }
        if (local.Any(l => !hs.Volumes.TryGetValue(l.Volume, out var p) || !p.Complete))
        {
            return;
        }
        var decisions = new List<VolumeDecision>();
        foreach (var volume in local)
        {
            var peer = hs.Volumes[volume.Volume];
            long peerUsable = (long)peer.Sizes!.Value.UsableSizeBytes;
            // Without a disk here the peer's device size is the one to serve (DRBD's receive_sizes, p_csize).
            long agreed = volume.AdvertisedUsableBytes == 0 && peer.Sizes.Value.CurrentSizeBytes > 0
                ? (long)peer.Sizes.Value.CurrentSizeBytes
                : SizeAgreement.Agree(volume.AdvertisedUsableBytes, peerUsable, volume.SizeLimitBytes);
            if (SizeAgreement.RefusesShrink(agreed, volume.CurrentSizeBytes, volume.Disk))
            {
                // DRBD: "Never shrink a device with usable data during connect" — it disconnects and retries.
                string tooSmall = $"volume {volume.Volume}: The peer's disk size is too small! ({agreed / 1024} < {volume.CurrentSizeBytes / 1024} KiB)";
                Send(0, new DisconnectMessage(WireDisconnectReason.ProtocolError, tooSmall));
                Drop(tooSmall, ConnectionState.ProtocolError);
                return;
            }
            if (!TryDecide(volume, peer, agreed, out var decision))
            {
                return;
            }
            decisions.Add(decision);
        }
        if (RefuseTwoPrimaries(hs.Volumes[local[0].Volume].State!.Value.Role, decisions))
        {
            return;
        }
        SetState(ConnectionState.Connected);
        SetPeerRole(hs.Volumes[local[0].Volume].State!.Value.Role);
        foreach (var decision in decisions)
        {
            peerDisks[decision.Volume] = decision.PeerDisk;
            NoteReplicated(decision);
        }
        output.Decisions = decisions;
    }

    /// <summary>A handshake that compared data on both sides connected the volume's disks: see <see cref="replicatedVolumes"/>.</summary>
    private void NoteReplicated(VolumeDecision decision)
    {
        if (decision.Outcome.ComparedData)
        {
            replicatedVolumes.Add(decision.Volume);
        }
    }

    /// <summary>
    /// DRBD refuses to connect two Primaries without allow-two-primaries (SS_TWO_PRIMARIES for the
    /// change to Connected): StandAlone, or with rr-conflict retry-connect a later try. Not when the
    /// split-brain policies make one of them give up its role (call-pri-lost-after-sb). A policy that
    /// leaves both Primary (after-sb-2pri violently-as0p with rr-conflict violently) is refused, as
    /// DRBD's is_valid_state refuses it: before, any policy-resolved split brain let two Primaries connect.
    /// </summary>
    private bool RefuseTwoPrimaries(Role peerRole, List<VolumeDecision> decisions)
    {
        if (host.Role != Role.Primary || peerRole != Role.Primary || settings.Protocol.AllowTwoPrimaries
            || decisions.Any(d => d.Outcome.Demote || d.Outcome.PeerDemotes))
        {
            return false;
        }
        const string text = "State change failed: (-1) Multiple primaries not allowed by config: both nodes are Primary";
        if (settings.Policies.RrConflict == RrConflictPolicy.RetryConnect)
        {
            Drop($"{text}, retrying", ConnectionState.Unconnected);
        }
        else
        {
            GiveUp(WireDisconnectReason.TwoPrimaries, text);
        }
        return true;
    }

    /// <summary>
    /// The sync handshake for one volume, the device size being <paramref name="agreedSizeBytes"/>;
    /// false when it dropped the connection (the caller stops).
    /// </summary>
    private bool TryDecide(LocalVolumeView volume, PeerVolume peer, long agreedSizeBytes, out VolumeDecision decision)
    {
        decision = null!;
        var outcome = Decide(volume, peer);
        foreach (string line in outcome.Log)
        {
            output.Log.Add($"{Subject}/{volume.Volume}: {line}");
        }
        if (outcome.Handlers != HandshakeHandlers.None)
        {
            output.HandlerCalls.Add((volume.Volume, outcome.Handlers));
        }
        if (outcome.Action == HandshakeAction.Disconnect)
        {
            if (outcome.RetryConnect)
            {
                Drop($"volume {volume.Volume}: {outcome.Reason}, retrying", ConnectionState.Unconnected);
            }
            else
            {
                GiveUp(outcome.Reason == SplitBrain.DisconnectReason.UnrelatedData ? WireDisconnectReason.UnrelatedData : WireDisconnectReason.SplitBrain,
                    $"volume {volume.Volume}: {Describe(outcome.Reason)}");
            }
            return false;
        }
        var uuids = peer.Uuids!.Value;
        var peerUuids = outcome.Comparison.PeerFixup ?? new UuidSet(uuids.Current, uuids.Bitmap, uuids.History);
        decision = new VolumeDecision(volume.Volume, outcome, peer.State!.Value.Disk, agreedSizeBytes, peerUuids, (long)peer.Sizes!.Value.UsableSizeBytes, volume.Disk);
        return true;
    }

    /// <summary>
    /// A Negotiating disk (attached while connected) is compared as what its metadata says, as DRBD
    /// does (its own new_state_tmp; the peer's from the UUID flags), and is exempt from rr-conflict.
    /// </summary>
    private HandshakeOutcome Decide(LocalVolumeView local, PeerVolume peer)
    {
        var uuids = peer.Uuids!.Value;
        var state = peer.State!.Value;
        var peerFlags = (uuids.Flags.HasFlag(UuidFlags.CrashedPrimary) ? MetadataFlags.CrashedPrimary : 0)
            | (uuids.Flags.HasFlag(UuidFlags.Consistent) ? MetadataFlags.Consistent : 0)
            | (uuids.Flags.HasFlag(UuidFlags.WasUpToDate) ? MetadataFlags.WasUpToDate : 0);
        bool selfNegotiating = local.Disk == DiskState.Negotiating;
        bool peerNegotiating = state.Disk == DiskState.Negotiating;
        var self = new HandshakeSide(local.Uuids, local.Flags, host.Role, selfNegotiating ? ReplicaVolume.DiskFromFlags(local.Flags) : local.Disk,
            settings.LocalNodeName, local.OutOfSyncBits, local.DiscardMyData, Negotiating: selfNegotiating, Reconnected: replicatedVolumes.Contains(local.Volume),
            MissedWrites: local.MissedWrites);
        var other = new HandshakeSide(new UuidSet(uuids.Current, uuids.Bitmap, uuids.History), peerFlags, state.Role,
            peerNegotiating ? ReplicaVolume.DiskFromFlags(peerFlags) : state.Disk, settings.PeerNodeName, (long)uuids.DirtyBits,
            state.Flags.HasFlag(StateFlags.DiscardMyData), Negotiating: peerNegotiating, Reconnected: uuids.Flags.HasFlag(UuidFlags.Reconnect),
            MissedWrites: uuids.Flags.HasFlag(UuidFlags.MissedWrites));
        return SyncHandshake.Decide(self, other, settings.ResolvesConflicts, settings.Policies, settings.Protocol.Protocol);
    }

    private static string Describe(SplitBrain.DisconnectReason reason) => reason switch
    {
        SplitBrain.DisconnectReason.UnrelatedData => "Unrelated data, aborting!",
        SplitBrain.DisconnectReason.SplitBrain => "Split-Brain detected, dropping connection!",
        SplitBrain.DisconnectReason.InconsistentSyncSource or SplitBrain.DisconnectReason.PeerInconsistentSyncSource => "the sync source would be Inconsistent",
        SplitBrain.DisconnectReason.PrimarySyncTarget or SplitBrain.DisconnectReason.PeerPrimarySyncTarget => "a Primary would become SyncTarget (rr-conflict)",
        _ => reason.ToString(),
    };
}

using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

/// <summary>What this node tells a peer about one volume at connect time.</summary>
/// <param name="Volume">The volume number.</param>
/// <param name="Uuids">The generation identifiers as the peer's slot sees them.</param>
/// <param name="Flags">Metadata flags.</param>
/// <param name="Disk">The local disk state.</param>
/// <param name="OutOfSyncBits">Set bits in the peer's bitmap slot.</param>
/// <param name="UsableSizeBytes">What the local disk holds.</param>
/// <param name="DiscardMyData">connect --discard-my-data.</param>
/// <param name="AgreedSizeBytes">The last agreed size (la-size); 0: the usable size.</param>
/// <param name="SizeLimitBytes">What the other peers allow (<see cref="SizeAgreement.OtherPeersLimit"/>); 0: no limit.</param>
/// <param name="MissedWrites">The disk missed writes that completed through a peer (<see cref="ReplicaVolume.MissedWritesGeneration"/>).</param>
public readonly record struct LocalVolumeView(
    int Volume,
    UuidSet Uuids,
    MetadataFlags Flags,
    DiskState Disk,
    long OutOfSyncBits,
    long UsableSizeBytes,
    bool DiscardMyData,
    long AgreedSizeBytes = 0,
    long SizeLimitBytes = 0,
    bool MissedWrites = false)
{
    /// <summary>The usable size as the peer is told it: 0 without local data (a Diskless node limits nothing).</summary>
    public long AdvertisedUsableBytes => Disk is DiskState.UpToDate or DiskState.Consistent or DiskState.Outdated or DiskState.Inconsistent ? UsableSizeBytes : 0;

    /// <summary>The device size now (la-size).</summary>
    public long CurrentSizeBytes => AgreedSizeBytes == 0 ? UsableSizeBytes : AgreedSizeBytes;
}

/// <summary>The local side of a resource as a peer link sees it (implemented by the resource).</summary>
public interface IPeerLinkHost
{
    Role Role { get; }

    /// <summary>Every volume as it stands for the connection to <paramref name="peerNodeId"/>.</summary>
    IReadOnlyList<LocalVolumeView> VolumesFor(int peerNodeId);

    /// <summary>The replication state with the peer, announced in P_STATE (the peer turns Ahead into Behind).</summary>
    ReplicationState ReplicationOf(int peerNodeId, int volume) => ReplicationState.Established;
}

/// <summary>The connect-time verdict for one volume, for the resource to act on (resync, demote, handlers).</summary>
/// <param name="Volume">The volume number.</param>
/// <param name="Outcome">The sync handshake's verdict.</param>
/// <param name="PeerDisk">The peer's disk state at the handshake.</param>
/// <param name="AgreedSizeBytes">The size agreed with the peer (<see cref="SizeAgreement.Agree"/>): the smallest usable size.</param>
/// <param name="PeerUuids">The peer's UUIDs as the decision saw them (fix-ups applied): a SyncTarget adopts them when done.</param>
/// <param name="PeerUsableSizeBytes">What the peer's disk holds (0: Diskless).</param>
/// <param name="LocalDisk">This node's disk state as the peer was told it for this handshake.</param>
public sealed record VolumeDecision(int Volume, HandshakeOutcome Outcome, DiskState PeerDisk, long AgreedSizeBytes, UuidSet PeerUuids, long PeerUsableSizeBytes = 0, DiskState LocalDisk = DiskState.DUnknown);

/// <summary>
/// What a peer link wants done, collected since the last <see cref="PeerLink.TakeOutput"/>: frames
/// to send in order, a transport to close or to dial, log lines, and connect-time decisions.
/// </summary>
public sealed class PeerLinkOutput
{
    public List<byte[]> Frames { get; } = [];

    /// <summary>Non-null when the transport must be closed (after sending <see cref="Frames"/>), with the reason.</summary>
    public string? CloseReason { get; set; }

    /// <summary>The host should dial the peer now.</summary>
    public bool Dial { get; set; }

    public List<string> Log { get; } = [];

    public List<StateTransition> Transitions { get; } = [];

    /// <summary>Handlers the handshake asks for (split brain detected, unresolved, lost), per volume, even when it disconnects.</summary>
    public List<(int Volume, HandshakeHandlers Handlers)> HandlerCalls { get; } = [];

    /// <summary>Set once per successful handshake: one decision per volume.</summary>
    public IReadOnlyList<VolumeDecision>? Decisions { get; set; }

    /// <summary>Decisions of the sync handshake run again on an established connection for a volume attached on either side.</summary>
    public List<VolumeDecision> Renegotiated { get; } = [];

    /// <summary>
    /// The established connection ended by a `disconnect` (this side's or the peer's): the peer's
    /// role at that moment, for DRBD 9's outdate-on-disconnect. Null for any other end.
    /// </summary>
    public Role? GracefulDisconnectPeerRole { get; set; }

    /// <summary>The peer's ProtocolUpdate changed this link's protocol settings (the replica's new requests follow).</summary>
    public bool ProtocolUpdated { get; set; }

    public bool IsEmpty => Frames.Count == 0 && CloseReason is null && !Dial && Log.Count == 0 && Transitions.Count == 0 && HandlerCalls.Count == 0 && Decisions is null
        && GracefulDisconnectPeerRole is null && Renegotiated.Count == 0 && !ProtocolUpdated;
}

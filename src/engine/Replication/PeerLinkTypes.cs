using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

/// <summary>What this node tells a peer about one volume at connect time.</summary>
public readonly record struct LocalVolumeView(
    int Volume,
    UuidSet Uuids,
    MetadataFlags Flags,
    DiskState Disk,
    long OutOfSyncBits,
    long UsableSizeBytes,
    bool DiscardMyData);

/// <summary>The local side of a resource as a peer link sees it (implemented by the resource).</summary>
public interface IPeerLinkHost
{
    Role Role { get; }

    /// <summary>Every volume as it stands for the connection to <paramref name="peerNodeId"/>.</summary>
    IReadOnlyList<LocalVolumeView> VolumesFor(int peerNodeId);
}

/// <summary>The connect-time verdict for one volume, for the resource to act on (resync, demote, handlers).</summary>
/// <param name="Volume">The volume number.</param>
/// <param name="Outcome">The sync handshake's verdict.</param>
/// <param name="PeerDisk">The peer's disk state at the handshake.</param>
/// <param name="AgreedSizeBytes">The smaller of the two usable sizes.</param>
/// <param name="PeerUuids">The peer's UUIDs as the decision saw them (fix-ups applied): a SyncTarget adopts them when done.</param>
public sealed record VolumeDecision(int Volume, HandshakeOutcome Outcome, DiskState PeerDisk, long AgreedSizeBytes, UuidSet PeerUuids);

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

    /// <summary>Set once per successful handshake: one decision per volume.</summary>
    public IReadOnlyList<VolumeDecision>? Decisions { get; set; }

    /// <summary>Decisions of the sync handshake run again on an established connection for a volume attached on either side.</summary>
    public List<VolumeDecision> Renegotiated { get; } = [];

    public bool IsEmpty => Frames.Count == 0 && CloseReason is null && !Dial && Log.Count == 0 && Transitions.Count == 0 && Decisions is null && Renegotiated.Count == 0;
}

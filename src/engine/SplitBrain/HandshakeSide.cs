// One node's input to the connect-time sync handshake: what it knows of itself, or what the peer
// reported in P_UUIDS / P_STATE (DRBD's p_uuid with its UI_SIZE bit count and UI_FLAGS).
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.SplitBrain;

/// <param name="Uuids">Current, bitmap UUID for the other node, history.</param>
/// <param name="Flags">Metadata flags; CrashedPrimary is read (UUID flag 2 on the wire).</param>
/// <param name="Role">Role now.</param>
/// <param name="Disk">Disk state now (for the peer: as it reported it).</param>
/// <param name="NodeName">Host name, for discard-node-NAME.</param>
/// <param name="OutOfSyncBits">Bits set in its bitmap for the other node (discard-least/zero-changes).</param>
/// <param name="DiscardMyData">`connect --discard-my-data` was given on this node (UUID flag 1 on the wire).</param>
/// <param name="CanDemote">Whether the node could become Secondary now; read only for the local side.</param>
/// <param name="Negotiating">The disk is being attached while connected (DRBD's D_NEGOTIATING): <paramref name="Disk"/>
/// is what its metadata says, and rr-conflict does not apply (its data was never exposed as this node's).</param>
/// <param name="Reconnected">It lost a connection to the other node and has not restarted since (UUID flag Reconnect on the wire).</param>
/// <param name="MissedWrites">Its disk failed under writes that completed through a peer and was not resynced since (UUID flag MissedWrites).</param>
public sealed record HandshakeSide(
    UuidSet Uuids,
    MetadataFlags Flags,
    Role Role,
    DiskState Disk,
    string NodeName,
    long OutOfSyncBits,
    bool DiscardMyData = false,
    bool CanDemote = true,
    bool Negotiating = false,
    bool Reconnected = false,
    bool MissedWrites = false)
{
    public UuidCompareSide ForComparison => new(Uuids, Flags, Role, Reconnected);
}

using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// The primary indicator (MDF_PRIMARY_IND) of a demoted Primary whose peers have not yet confirmed
// its last writes. A write stays in a peer's transfer log until that peer's BarrierAck says it is
// on stable storage; until then it may be only in the peer's disk cache. If this node crashed
// after a clean demotion, its transfer log would be gone, and with the peer's crash the write
// would be on one disk only, marked in no bitmap. So a demotion with such writes keeps the primary
// indicator on disk (the host asks HoldsUnconfirmedWrites and ResourceStateMachine.Demote keeps
// it): a crash then comes back "crashed primary" and the activity log, which covers those writes,
// is resynced. The indicator goes once the transfer logs are empty: BarrierAcked, or recorded in
// the bitmap when the connection was lost. DRBD 9 keeps MDF_PRIMARY_IND while a peer request may
// be in flight, and covers the same writes on the Secondary's side with its own activity log;
// this engine's Secondaries keep none for peer writes (as DRBD 8.4's), so the Primary covers them.
public sealed partial class Replica
{
    /// <summary>This node demoted with writes its peers had not confirmed; the primary indicator stays until they have.</summary>
    private bool primaryIndicatorHeld;

    /// <summary>
    /// True while a peer's transfer log holds a write it has not confirmed stable (no BarrierAck
    /// yet, connection not lost): a demotion now keeps the primary indicator on disk.
    /// </summary>
    public bool HoldsUnconfirmedWrites => writes.HoldsUnconfirmedWrites;

    /// <summary>After a role change: a demotion that kept the indicator holds it until the transfer logs are empty.</summary>
    private void HoldPrimaryIndicator()
    {
        primaryIndicatorHeld = Role != Role.Primary && volumes.Values.Any(v => v.Flags.HasFlag(MetadataFlags.PrimaryInd));
        ReleasePrimaryIndicator();
    }

    /// <summary>The transfer logs may have emptied (a BarrierAck, a lost connection): the held indicator goes.</summary>
    private void ReleasePrimaryIndicator()
    {
        if (!primaryIndicatorHeld || Role == Role.Primary || writes.HoldsUnconfirmedWrites)
        {
            return;
        }
        primaryIndicatorHeld = false;
        foreach (var volume in volumes.Values.Where(v => v.HasLocalData && v.Flags.HasFlag(MetadataFlags.PrimaryInd)))
        {
            volume.Flags &= ~MetadataFlags.PrimaryInd;
            io.PersistVolume(volume.Number);
        }
    }
}

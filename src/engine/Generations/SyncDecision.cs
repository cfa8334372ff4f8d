// Result of comparing the generation identifiers of two nodes at connect time (DRBD's
// drbd_uuid_compare): which DRBD 8.4 rule decided, what it means, and the UUID corrections the rule
// implies. The rule numbers and the numeric "hg" value are DRBD's, so logs read like DRBD's
// "uuid_compare()=-1 by rule 50".
namespace Redundancy.Block.Engine.Generations;

/// <summary>What the UUIDs alone say about this node (DRBD's hg values in brackets).</summary>
public enum SyncResult
{
    /// <summary>[0] Same data generation, nothing to resync.</summary>
    NoSync = 0,
    /// <summary>[1] This node becomes SyncSource, resyncing the blocks set in the bitmaps.</summary>
    BecomeSyncSourceBitmap = 1,
    /// <summary>[2] This node becomes SyncSource of a full sync (all bits set).</summary>
    BecomeSyncSourceFull = 2,
    /// <summary>[-1] This node becomes SyncTarget, resyncing the blocks set in the bitmaps.</summary>
    BecomeSyncTargetBitmap = -1,
    /// <summary>[-2] This node becomes SyncTarget of a full sync.</summary>
    BecomeSyncTargetFull = -2,
    /// <summary>[100] Split brain with equal bitmap UUIDs: after-sb policies may recover it.</summary>
    SplitBrainAutoRecoverable = 100,
    /// <summary>[-100] Split brain that only history relates: disconnect (unless always-asbp / discard-my-data).</summary>
    SplitBrainDisconnect = -100,
    /// <summary>[-1000] The two data sets share no generation: refuse, StandAlone.</summary>
    UnrelatedData = -1000,
}

/// <param name="Rule">DRBD 8.4 rule number: 10, 20, 30, 34–37, 40, 41, 50, 51, 60, 70, 71, 80, 90, 100 (unrelated data is
/// reported, as DRBD logs it, as "-1000 by rule 100"); 42 is DRBD 9's "reconnected" survivor rule, and 52/72 ours.</param>
/// <param name="Result">The decision.</param>
/// <param name="SelfFixup">Corrected local UUIDs the caller must apply and persist (rules 34 and 71), else null.</param>
/// <param name="PeerFixup">Corrected view of the peer's UUIDs (rules 35 and 51; the peer fixes itself by 34/71), else null.</param>
public sealed record SyncDecision(int Rule, SyncResult Result, UuidSet? SelfFixup = null, UuidSet? PeerFixup = null)
{
    /// <summary>DRBD's numeric value (hg): +source/-target, |2| full sync, ±100 split brain, -1000 unrelated.</summary>
    public int Hg => (int)Result;

    /// <summary>DRBD's log line, e.g. "uuid_compare()=-1 by rule 50".</summary>
    public string Describe() => $"uuid_compare()={Hg} by rule {Rule}";
}

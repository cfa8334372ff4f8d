namespace Redundancy.Block.Engine.States;

/// <summary>Replication state of one peer device, as DRBD 9 names it.</summary>
public enum ReplicationState
{
    Off = 0,
    Established = 1,
    StartingSyncS = 2,
    StartingSyncT = 3,
    WFBitMapS = 4,
    WFBitMapT = 5,
    WFSyncUUID = 6,
    SyncSource = 7,
    SyncTarget = 8,
    PausedSyncS = 9,
    PausedSyncT = 10,
    VerifyS = 11,
    VerifyT = 12,
    Ahead = 13,
    Behind = 14,
}

namespace Redundancy.Block.Engine.States;

/// <summary>Disk states, in DRBD's order (a larger value is a "better" disk).</summary>
public enum DiskState
{
    /// <summary>No local backing disk attached.</summary>
    Diskless = 0,
    /// <summary>Reading metadata while attaching.</summary>
    Attaching = 1,
    /// <summary>Being detached; I/O drains.</summary>
    Detaching = 2,
    /// <summary>An I/O error took the disk away.</summary>
    Failed = 3,
    /// <summary>Attach while connected: the state is being negotiated with the peer.</summary>
    Negotiating = 4,
    /// <summary>Data is not usable: being synced, or never initialised.</summary>
    Inconsistent = 5,
    /// <summary>Consistent but known to be older than a peer's.</summary>
    Outdated = 6,
    /// <summary>Peer disk state is not known (peer only).</summary>
    DUnknown = 7,
    /// <summary>Consistent, but whether it is the newest copy is not yet known.</summary>
    Consistent = 8,
    /// <summary>Only this disk state allows applications' IO !</summary>
    UpToDate = 9,
}

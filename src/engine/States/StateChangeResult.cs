namespace Redundancy.Block.Engine.States;

/// <summary>
/// Outcome of a requested state change, after DRBD's drbd_state_rv. Expected refusals are values,
/// not exceptions; <see cref="StateChangeResults.Describe"/> gives the operator-facing reason.
/// </summary>
public enum StateChangeResult
{
    Success = 1,
    NothingToDo = 2,
    /// <summary>SS_NO_UP_TO_DATE_DISK: promotion needs UpToDate data.</summary>
    NoUpToDateDisk = -2,
    /// <summary>SS_TWO_PRIMARIES: a peer is Primary and two primaries are not allowed.</summary>
    TwoPrimaries = -1,
    /// <summary>SS_NO_LOCAL_DISK.</summary>
    NoLocalDisk = -4,
    /// <summary>SS_DEVICE_IN_USE: demotion while clients hold the device open.</summary>
    DeviceInUse = -12,
    /// <summary>Detach or down while Primary without a peer to serve I/O.</summary>
    IsPrimary = -13,
    /// <summary>Attach when a disk is already attached.</summary>
    AlreadyAttached = -14,
    /// <summary>The backing disk could not be read or its metadata is invalid.</summary>
    DiskError = -15,
    /// <summary>The resource is not configured on this agent.</summary>
    UnknownResource = -16,
    /// <summary>SS_RESYNC_RUNNING: a resync with that peer is already under way.</summary>
    ResyncRunning = -8,
    /// <summary>SS_NEED_CONNECTION: the request needs a connected peer.</summary>
    NoConnection = -17,
    /// <summary>SS_NO_VERIFY_ALG: online verify needs a verify-alg agreed with the peer.</summary>
    NoVerifyAlg = -18,
    /// <summary>SS_NO_REMOTE_DISK: verify or resync needs data on the peer.</summary>
    NoRemoteDisk = -19,
    /// <summary>SS_CONNECTED_OUTDATES: `outdate` while Primary, or while connected to a Primary.</summary>
    ConnectedOutdates = -6,
    /// <summary>SS_PRIMARY_NOP: with fencing, promotion while a disconnected peer is not known Outdated.</summary>
    PrimaryNop = -7,
    /// <summary>SS_LOWER_THAN_OUTDATED (DRBD's -16, which <see cref="UnknownResource"/> holds here): `outdate` of an Inconsistent or absent disk.</summary>
    LowerThanOutdated = -20,
    /// <summary>SS_CONCURRENT_ST_CHG (DRBD's -19): the peer asked for a conflicting cluster-wide change at the same time and won.</summary>
    ConcurrentStateChange = -21,
    /// <summary>SS_TIMEOUT (DRBD's -23): the peer did not answer a cluster-wide state change in time (twopc-timeout).</summary>
    Timeout = -22,
    /// <summary>ERR_DATA_NOT_CURRENT (150): a Primary may only attach the disk whose data it serves, unless a peer has UpToDate data.</summary>
    DataNotCurrent = -23,
    /// <summary>SS_NOT_SUPPORTED (DRBD's -17): the peer's protocol version does not know the change asked for.</summary>
    NotSupported = -24,
}

public static class StateChangeResults
{
    /// <summary>One-line reason in DRBD's terms, shown by rbadm on stderr.</summary>
    public static string Describe(StateChangeResult result) => result switch
    {
        StateChangeResult.Success => "success",
        StateChangeResult.NothingToDo => "nothing to do",
        StateChangeResult.NoUpToDateDisk => "State change failed: (-2) Need access to UpToDate data (no UpToDate disk)",
        StateChangeResult.TwoPrimaries => "State change failed: (-1) Multiple primaries not allowed by config (peer is Primary)",
        StateChangeResult.NoLocalDisk => "State change failed: (-4) Need a local disk (no local disk)",
        StateChangeResult.DeviceInUse => "State change failed: (-12) Device is held open by someone (device is held open)",
        StateChangeResult.IsPrimary => "State change failed: (-13) Refusing while Primary (demote first)",
        StateChangeResult.AlreadyAttached => "State change failed: (-14) A disk is already attached",
        StateChangeResult.DiskError => "State change failed: (-15) Backing disk or metadata unusable",
        StateChangeResult.UnknownResource => "unknown resource",
        StateChangeResult.ResyncRunning => "State change failed: (-8) Resync already running",
        StateChangeResult.NoConnection => "State change failed: (-15) Need a connection to start verify or resync",
        StateChangeResult.NoVerifyAlg => "State change failed: (-14) Need a verify algorithm to start online verify",
        StateChangeResult.NoRemoteDisk => "State change failed: (-5) Can not resync without remote disk",
        StateChangeResult.ConnectedOutdates => "State change failed: (-6) Refusing to be Outdated while Connected",
        StateChangeResult.PrimaryNop => "State change failed: (-7) Refusing to be Primary while peer is not outdated",
        StateChangeResult.LowerThanOutdated => "State change failed: (-16) Disk state is lower than outdated",
        StateChangeResult.ConcurrentStateChange => "State change failed: (-19) Concurrent state changes detected and aborted",
        StateChangeResult.Timeout => "State change failed: (-23) Timeout in operation",
        StateChangeResult.DataNotCurrent => "(150) Can only attach to the data we lost last (see kernel log).",
        StateChangeResult.NotSupported => "State change failed: (-17) Protocol version of the peer too old (not supported)",
        _ => result.ToString(),
    };

    public static bool IsSuccess(this StateChangeResult result) =>
        result is StateChangeResult.Success or StateChangeResult.NothingToDo;
}

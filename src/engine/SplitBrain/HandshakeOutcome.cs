// What the connect-time sync handshake decided for this node: the action, bitmap or full sync, why
// it disconnects, the handlers to run and whether to demote first, plus DRBD's log lines.
using System.Collections.Immutable;
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.SplitBrain;

public enum HandshakeAction
{
    /// <summary>Connected, Established, no resync.</summary>
    NoSync,
    /// <summary>WFBitMapS → SyncSource.</summary>
    SyncSource,
    /// <summary>WFBitMapT → WFSyncUUID → SyncTarget.</summary>
    SyncTarget,
    /// <summary>Drop the connection (StandAlone unless <see cref="HandshakeOutcome.RetryConnect"/>).</summary>
    Disconnect,
}

public enum DisconnectReason
{
    None,
    /// <summary>"Unrelated data, aborting!"</summary>
    UnrelatedData,
    /// <summary>"Split-Brain detected but unresolved, dropping connection!"</summary>
    SplitBrain,
    /// <summary>"I shall become SyncSource, but I am inconsistent!"</summary>
    InconsistentSyncSource,
    /// <summary>The peer would be SyncSource with an Inconsistent disk (it refuses; we do too).</summary>
    PeerInconsistentSyncSource,
    /// <summary>"I shall become SyncTarget, but I am primary!" (rr-conflict).</summary>
    PrimarySyncTarget,
    /// <summary>The peer is Primary and would be SyncTarget (it refuses by rr-conflict; we do too).</summary>
    PeerPrimarySyncTarget,
}

/// <summary>Handlers (drbd.conf `handlers { }`) the caller must run, in this order.</summary>
[Flags]
public enum HandshakeHandlers
{
    None = 0,
    /// <summary>`initial-split-brain`: a split brain was detected (before any policy).</summary>
    InitialSplitBrain = 1,
    /// <summary>`pri-lost-after-sb`: this node lost the split brain but could not demote.</summary>
    PriLostAfterSb = 2,
    /// <summary>`split-brain`: the split brain stays unresolved.</summary>
    SplitBrain = 4,
    /// <summary>`pri-lost`: rr-conflict call-pri-lost, this Primary would be SyncTarget.</summary>
    PriLost = 8,
}

public enum SplitBrainResolution
{
    /// <summary>No split brain.</summary>
    None,
    /// <summary>Resolved by after-sb-0pri/1pri/2pri.</summary>
    AfterSbPolicy,
    /// <summary>Resolved by `--discard-my-data` on one side.</summary>
    DiscardMyData,
    /// <summary>Not resolved: disconnect, `split-brain` handler.</summary>
    Unresolved,
}

/// <param name="Action">What to do.</param>
/// <param name="FullSync">Resync every block (DRBD's |hg| = 2); false is a bitmap resync.</param>
/// <param name="Reason">Why <see cref="HandshakeAction.Disconnect"/>, else None.</param>
/// <param name="RetryConnect">After disconnecting keep connecting (rr-conflict retry-connect) instead of StandAlone.</param>
/// <param name="Handlers">Handlers to run.</param>
/// <param name="Demote">Become Secondary before starting as SyncTarget (call-pri-lost-after-sb).</param>
/// <param name="SplitBrain">Whether and how a split brain was resolved.</param>
/// <param name="Comparison">The UUID comparison (rule, and the fix-ups to apply to the UUIDs).</param>
/// <param name="Hg">DRBD's final value: ±1 bitmap, ±2 full, 0 none; -100/-1000 on split brain/unrelated.</param>
/// <param name="Log">DRBD's log lines, in order.</param>
public sealed record HandshakeOutcome(
    HandshakeAction Action,
    bool FullSync,
    DisconnectReason Reason,
    bool RetryConnect,
    HandshakeHandlers Handlers,
    bool Demote,
    SplitBrainResolution SplitBrain,
    SyncDecision Comparison,
    int Hg,
    ImmutableArray<string> Log)
{
    /// <summary>Both nodes had data, so the UUIDs were compared (not "No sync handshake": a side without a disk).</summary>
    public bool ComparedData { get; init; }

    /// <summary>call-pri-lost-after-sb: the peer lost and is Primary, so it gives up its role (this node keeps its data).</summary>
    public bool PeerDemotes { get; init; }

    /// <summary>The connection state to move to: Connected, or StandAlone / Connecting after a disconnect.</summary>
    public ConnectionState NextConnectionState => Action != HandshakeAction.Disconnect
        ? ConnectionState.Connected
        : RetryConnect ? ConnectionState.Connecting : ConnectionState.StandAlone;

    /// <summary>The replication state to move to (DRBD 9 names): Established, WFBitMapS or WFBitMapT; Off when disconnecting.</summary>
    public ReplicationState NextReplicationState => Action switch
    {
        HandshakeAction.NoSync => ReplicationState.Established,
        HandshakeAction.SyncSource => ReplicationState.WFBitMapS,
        HandshakeAction.SyncTarget => ReplicationState.WFBitMapT,
        _ => ReplicationState.Off,
    };
}

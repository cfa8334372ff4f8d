// Automatic split-brain recovery, DRBD 8.4's drbd_asb_recover_0p / _1p / _2p: given the policy for
// the number of nodes that are Primary now, decide who keeps its data (hg +1: this node is the
// SyncSource, -1: SyncTarget, -100: unresolved). Pure: demotion for call-pri-lost-after-sb is
// returned as a request; whether it can succeed is an input (CanDemote), and when it cannot, the
// `pri-lost-after-sb` handler is requested and the split brain stays unresolved, as in DRBD.
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.SplitBrain;

/// <param name="SelfBitmapPrimary">Primary bit of this node's bitmap UUID (it was Primary when the nodes parted).</param>
/// <param name="PeerBitmapPrimary">Same for the peer.</param>
/// <param name="SelfChanges">Bits set in this node's bitmap for the peer (DRBD's comm_bm_set).</param>
/// <param name="PeerChanges">Bits set in the peer's bitmap for this node (DRBD's p_uuid[UI_SIZE]).</param>
/// <param name="ResolveConflicts">This node holds the RESOLVE_CONFLICTS tie-breaker (it loses ties).</param>
/// <param name="SelfName">This node's name (discard-node-NAME).</param>
/// <param name="PeerName">The peer's name.</param>
/// <param name="SelfRole">This node's role now.</param>
/// <param name="PeerRole">The peer's role now.</param>
/// <param name="CanDemote">This node could become Secondary now (nobody holds the device open).</param>
public readonly record struct RecoveryInput(
    bool SelfBitmapPrimary,
    bool PeerBitmapPrimary,
    long SelfChanges,
    long PeerChanges,
    bool ResolveConflicts,
    string SelfName,
    string PeerName,
    Role SelfRole,
    Role PeerRole,
    bool CanDemote);

/// <param name="Hg">+1 this node is SyncSource, -1 SyncTarget, -100 unresolved.</param>
/// <param name="Demote">This node must become Secondary (call-pri-lost-after-sb, it lost).</param>
/// <param name="PeerDemotes">The peer will demote by the same rule (it lost and is Primary).</param>
/// <param name="RunPriLostAfterSb">Demotion was needed but impossible: run `pri-lost-after-sb`.</param>
/// <param name="Message">DRBD's log line for configuration errors and fallbacks, or null.</param>
public readonly record struct RecoveryResult(int Hg, bool Demote, bool PeerDemotes, bool RunPriLostAfterSb, string? Message);

public static class SplitBrainRecovery
{
    public const int Unresolved = -100;

    /// <summary>drbd_asb_recover_0p: split brain with no Primary now, after-sb-0pri.</summary>
    public static RecoveryResult Recover0Pri(AfterSbPolicy policy, in RecoveryInput input)
    {
        var (hg, message) = Decide0Pri(policy, input);
        return new RecoveryResult(hg, false, false, false, message);
    }

    /// <summary>drbd_asb_recover_1p: one Primary now, after-sb-1pri (violently-as0p etc. use after-sb-0pri).</summary>
    public static RecoveryResult Recover1Pri(SplitBrainPolicies policies, in RecoveryInput input)
    {
        bool primary = input.SelfRole == Role.Primary;
        switch (policies.AfterSb1Pri.Strategy)
        {
            case AfterSbStrategy.Disconnect:
                return Result(Unresolved);
            case AfterSbStrategy.Consensus:
                // Accept the after-sb-0pri verdict only if it discards the Secondary.
                var (hg, message) = Decide0Pri(policies.AfterSb0Pri, input);
                return Result(hg == -1 && !primary || hg == 1 && primary ? hg : Unresolved, message);
            case AfterSbStrategy.ViolentlyAs0p:
                var (violent, note) = Decide0Pri(policies.AfterSb0Pri, input);
                return Result(violent, note);
            case AfterSbStrategy.DiscardSecondary:
                return Result(primary ? 1 : -1);
            case AfterSbStrategy.CallPriLostAfterSb:
                return CallPriLostAfterSb(policies.AfterSb0Pri, input);
            default:
                return Result(Unresolved, ConfigurationError("after-sb-1pri", policies.AfterSb1Pri));
        }
    }

    /// <summary>drbd_asb_recover_2p: both Primary now, after-sb-2pri.</summary>
    public static RecoveryResult Recover2Pri(SplitBrainPolicies policies, in RecoveryInput input)
    {
        switch (policies.AfterSb2Pri.Strategy)
        {
            case AfterSbStrategy.Disconnect:
                return Result(Unresolved);
            case AfterSbStrategy.ViolentlyAs0p:
                var (hg, message) = Decide0Pri(policies.AfterSb0Pri, input);
                return Result(hg, message);
            case AfterSbStrategy.CallPriLostAfterSb:
                return CallPriLostAfterSb(policies.AfterSb0Pri, input);
            default:
                return Result(Unresolved, ConfigurationError("after-sb-2pri", policies.AfterSb2Pri));
        }
    }

    /// <summary>call-pri-lost-after-sb: the after-sb-0pri loser, if Primary, demotes or runs pri-lost-after-sb.</summary>
    private static RecoveryResult CallPriLostAfterSb(AfterSbPolicy policy0, in RecoveryInput input)
    {
        var (hg, message) = Decide0Pri(policy0, input);
        bool peerDemotes = hg == 1 && input.PeerRole == Role.Primary;
        if (hg == -1 && input.SelfRole == Role.Primary)
        {
            return input.CanDemote
                ? new RecoveryResult(-1, Demote: true, peerDemotes, RunPriLostAfterSb: false, "Successfully gave up primary role.")
                : new RecoveryResult(Unresolved, Demote: false, peerDemotes, RunPriLostAfterSb: true, message);
        }

        return new RecoveryResult(hg, false, peerDemotes, false, message);
    }

    private static (int Hg, string? Message) Decide0Pri(AfterSbPolicy policy, in RecoveryInput input)
    {
        switch (policy.Strategy)
        {
            case AfterSbStrategy.Disconnect:
                return (Unresolved, null);
            case AfterSbStrategy.DiscardYoungerPrimary or AfterSbStrategy.DiscardOlderPrimary:
                return DiscardByAge(policy.Strategy == AfterSbStrategy.DiscardYoungerPrimary, input);
            case AfterSbStrategy.DiscardZeroChanges:
                return (DiscardZeroChanges(input) ?? Unresolved, null);
            case AfterSbStrategy.DiscardLeastChanges:
                return (DiscardLeastChanges(input), null);
            case AfterSbStrategy.DiscardLocal:
                return (-1, null);
            case AfterSbStrategy.DiscardRemote:
                return (1, null);
            case AfterSbStrategy.DiscardNode:
                return DiscardNode(policy, input);
            default:
                return (Unresolved, ConfigurationError("after-sb-0pri", policy));
        }
    }

    /// <summary>
    /// discard-younger-primary / discard-older-primary: the primary bit of each bitmap UUID tells who was
    /// Primary when the nodes parted (the older primary); otherwise zero-changes, then least-changes.
    /// </summary>
    private static (int Hg, string? Message) DiscardByAge(bool discardYounger, in RecoveryInput input)
    {
        if (input.SelfBitmapPrimary != input.PeerBitmapPrimary)
        {
            bool selfIsOlder = input.SelfBitmapPrimary;
            return (selfIsOlder == discardYounger ? 1 : -1, null);
        }

        const string fallback = "Discard younger/older primary did not find a decision\nUsing discard-least-changes instead";
        return (DiscardZeroChanges(input) ?? DiscardLeastChanges(input), fallback);
    }

    /// <summary>discard-zero-changes: sync from the only writer; null when both wrote.</summary>
    private static int? DiscardZeroChanges(in RecoveryInput input)
    {
        if (input.SelfChanges == 0 && input.PeerChanges == 0)
        {
            return input.ResolveConflicts ? -1 : 1;
        }

        return input.PeerChanges == 0 ? 1 : input.SelfChanges == 0 ? -1 : null;
    }

    /// <summary>discard-least-changes: fewer dirty bits become target; a tie discards the RESOLVE_CONFLICTS node.</summary>
    private static int DiscardLeastChanges(in RecoveryInput input)
    {
        if (input.SelfChanges != input.PeerChanges)
        {
            return input.SelfChanges < input.PeerChanges ? -1 : 1;
        }

        return input.ResolveConflicts ? -1 : 1;
    }

    private static (int Hg, string? Message) DiscardNode(AfterSbPolicy policy, in RecoveryInput input)
    {
        if (input.SelfName == policy.NodeName)
        {
            return (-1, null);
        }

        return input.PeerName == policy.NodeName
            ? (1, null)
            : (Unresolved, $"Configuration error: {policy} names neither {input.SelfName} nor {input.PeerName}");
    }

    private static string ConfigurationError(string option, AfterSbPolicy policy) =>
        $"Configuration error: {option} {policy} is not valid here";

    private static RecoveryResult Result(int hg, string? message = null) => new(hg, false, false, false, message);
}

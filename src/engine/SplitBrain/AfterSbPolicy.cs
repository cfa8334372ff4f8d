// The values of net { after-sb-0pri / after-sb-1pri / after-sb-2pri } as DRBD names them
// (drbd_after_sb_p: ASB_DISCONNECT, ASB_DISCARD_YOUNGER_PRI, ...). One type for all three options as
// in DRBD: a value that is not valid for the number of primaries is a "Configuration error" at
// recovery time. `discard-node-NAME` is kept with its NAME; drbdadm turns it into discard-local on
// NAME and discard-remote elsewhere, which is what recovery does with it.
namespace Redundancy.Block.Engine.SplitBrain;

public enum AfterSbStrategy
{
    Disconnect,
    DiscardYoungerPrimary,
    DiscardOlderPrimary,
    DiscardZeroChanges,
    DiscardLeastChanges,
    DiscardLocal,
    DiscardRemote,
    /// <summary>discard-node-NAME: the node called <see cref="AfterSbPolicy.NodeName"/> is discarded.</summary>
    DiscardNode,
    Consensus,
    ViolentlyAs0p,
    DiscardSecondary,
    CallPriLostAfterSb,
}

public readonly record struct AfterSbPolicy(AfterSbStrategy Strategy, string? NodeName = null)
{
    private const string DiscardNodePrefix = "discard-node-";

    private static readonly (string Name, AfterSbStrategy Strategy)[] Names =
    [
        ("disconnect", AfterSbStrategy.Disconnect),
        ("discard-younger-primary", AfterSbStrategy.DiscardYoungerPrimary),
        ("discard-older-primary", AfterSbStrategy.DiscardOlderPrimary),
        ("discard-zero-changes", AfterSbStrategy.DiscardZeroChanges),
        ("discard-least-changes", AfterSbStrategy.DiscardLeastChanges),
        ("discard-local", AfterSbStrategy.DiscardLocal),
        ("discard-remote", AfterSbStrategy.DiscardRemote),
        ("consensus", AfterSbStrategy.Consensus),
        ("violently-as0p", AfterSbStrategy.ViolentlyAs0p),
        ("discard-secondary", AfterSbStrategy.DiscardSecondary),
        ("call-pri-lost-after-sb", AfterSbStrategy.CallPriLostAfterSb),
    ];

    public static bool TryParse(string text, out AfterSbPolicy policy)
    {
        foreach (var (name, strategy) in Names)
        {
            if (text == name)
            {
                policy = new AfterSbPolicy(strategy);
                return true;
            }
        }

        if (text.StartsWith(DiscardNodePrefix, StringComparison.Ordinal) && text.Length > DiscardNodePrefix.Length)
        {
            policy = new AfterSbPolicy(AfterSbStrategy.DiscardNode, text[DiscardNodePrefix.Length..]);
            return true;
        }

        policy = default;
        return false;
    }

    /// <summary>Parses a config value; throws <see cref="FormatException"/> naming the value when unknown.</summary>
    public static AfterSbPolicy Parse(string text) =>
        TryParse(text, out var policy) ? policy : throw new FormatException($"unknown after-sb policy '{text}'");

    /// <summary>The policy as the peer states it (DRBD's convert_after_sb: discard-local ⇔ discard-remote).</summary>
    public AfterSbPolicy AsSeenByPeer() => Strategy switch
    {
        AfterSbStrategy.DiscardLocal => new AfterSbPolicy(AfterSbStrategy.DiscardRemote),
        AfterSbStrategy.DiscardRemote => new AfterSbPolicy(AfterSbStrategy.DiscardLocal),
        _ => this,
    };

    public override string ToString()
    {
        if (Strategy == AfterSbStrategy.DiscardNode)
        {
            return DiscardNodePrefix + NodeName;
        }

        AfterSbStrategy strategy = Strategy;
        return Array.Find(Names, n => n.Strategy == strategy).Name;
    }
}

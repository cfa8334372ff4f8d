using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// P_PROTOCOL_UPDATE: an `adjust` that changes the replication protocol, after-sb-*, always-asbp or
// allow-two-primaries on a connected resource sends the new values to the peer, which adopts them
// without comparing (DRBD's receive_protocol skips its checks for P_PROTOCOL_UPDATE). The
// connection stays up, so nothing is resynced. When the operator then adjusts the peer too, its
// running settings already match (or a policy differs only in its spelling, discard-node-NAME
// against discard-remote, and the update it sends back carries the same values). A peer that
// speaks only protocol version 1 does not know the message: the adjust reconnects instead.
public sealed partial class PeerLink
{
    /// <summary>Whether the peer takes a ProtocolUpdate now: connected, with protocol version 2 or later agreed.</summary>
    public bool CanSendProtocolUpdate => State == ConnectionState.Connected && SpeaksProtocolUpdate;

    /// <summary>The connection's agreed protocol version has ProtocolUpdate.</summary>
    private bool SpeaksProtocolUpdate => Speaks(FeaturesMessage.ProtocolUpdateVersion);

    /// <summary>Takes <paramref name="wanted"/> (a <see cref="SettingsChange.ProtocolUpdate"/> away) and sends its protocol settings to the peer.</summary>
    public void SendProtocolUpdate(PeerLinkSettings wanted)
    {
        Invariant.Assert(CanSendProtocolUpdate, "a ProtocolUpdate goes to a connected peer that speaks protocol version 2");
        Invariant.Assert(SettingsChanges.Compare(settings, wanted) == SettingsChange.ProtocolUpdate, "a ProtocolUpdate carries only the settings it may change");
        settings = wanted;
        Send(0, new ProtocolUpdateMessage(wanted.Protocol));
        output.Log.Add($"{Subject}: adjust: {Describe(wanted.Protocol)}: sent to the peer (protocol update)");
    }

    private void OnProtocolUpdate(ProtocolUpdateMessage update)
    {
        if (!SpeaksProtocolUpdate)
        {
            Drop("protocol error: ProtocolUpdate on a connection of protocol version 1", ConnectionState.ProtocolError);
            return;
        }
        var peer = update.Settings;
        var running = settings.Protocol;
        var adopted = running with
        {
            Protocol = peer.Protocol,
            AfterSb0Pri = AsSeenHere(peer.AfterSb0Pri),
            AfterSb1Pri = peer.AfterSb1Pri,
            AfterSb2Pri = peer.AfterSb2Pri,
            Flags = peer.Flags,
        };
        // A policy whose wire value did not change keeps its configured form (discard-node-NAME
        // stays so); a changed one takes the wire value's name.
        var configured = settings.Policies;
        var policies = configured with
        {
            AfterSb0Pri = Adopt(configured.AfterSb0Pri, adopted.AfterSb0Pri == running.AfterSb0Pri, ProtocolSettingsValues.Name(adopted.AfterSb0Pri)),
            AfterSb1Pri = Adopt(configured.AfterSb1Pri, adopted.AfterSb1Pri == running.AfterSb1Pri, ProtocolSettingsValues.Name(adopted.AfterSb1Pri)),
            AfterSb2Pri = Adopt(configured.AfterSb2Pri, adopted.AfterSb2Pri == running.AfterSb2Pri, ProtocolSettingsValues.Name(adopted.AfterSb2Pri)),
            AlwaysAsbp = (adopted.Flags & ProtocolSettingsFlags.AlwaysAsbp) != 0,
        };
        settings = settings with { Protocol = adopted, Policies = policies };
        output.ProtocolUpdated = true;
        output.Log.Add($"{Subject}: the peer's adjust changed the protocol settings: {Describe(adopted)}: adopted (protocol update)");
    }

    private static AfterSbPolicy Adopt(AfterSbPolicy configured, bool unchanged, string wireName) =>
        unchanged ? configured : AfterSbPolicy.Parse(wireName);

    /// <summary>The peer's discard-local is this node's discard-remote (DRBD's convert_after_sb).</summary>
    private static AfterSb0Pri AsSeenHere(AfterSb0Pri peers) => peers switch
    {
        AfterSb0Pri.DiscardLocal => AfterSb0Pri.DiscardRemote,
        AfterSb0Pri.DiscardRemote => AfterSb0Pri.DiscardLocal,
        _ => peers,
    };

    private static string Describe(ProtocolSettingsMessage protocol) =>
        $"protocol {protocol.Protocol}, after-sb-0pri {ProtocolSettingsValues.Name(protocol.AfterSb0Pri)}, after-sb-1pri {ProtocolSettingsValues.Name(protocol.AfterSb1Pri)}, "
        + $"after-sb-2pri {ProtocolSettingsValues.Name(protocol.AfterSb2Pri)}, allow-two-primaries {(protocol.AllowTwoPrimaries ? "yes" : "no")}";
}

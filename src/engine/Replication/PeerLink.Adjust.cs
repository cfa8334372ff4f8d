using Redundancy.Block.Engine.States;
using WireDisconnectReason = Redundancy.Block.Engine.Peers.Protocol.DisconnectReason;

namespace Redundancy.Block.Engine.Replication;

// `adjust` on a running connection. Settings used where they are read take effect at once; the
// protocol, after-sb-* and allow-two-primaries go to the peer in a ProtocolUpdate
// (PeerLink.ProtocolUpdate.cs); the rest of what the handshake agrees on (digests, compression, the
// secret) needs a new handshake, so the connection is re-established. An operator adjusts one node
// and then the other: in between, the two disagree. This link keeps retrying, after an adjust, the
// refusals the other node's own adjust will cure (different settings or secret), until one
// handshake succeeds. The node not adjusted yet still stands alone on the mismatch, as usual, and
// its adjust connects it again.
public sealed partial class PeerLink
{
    /// <summary>Set by an adjust that needs a new handshake; cleared once one succeeds or the administrator disconnects.</summary>
    private bool adjustPending;

    /// <summary>
    /// New settings for this connection (same resource and nodes). With <paramref name="reconnect"/>
    /// a live connection is closed gracefully and dialled again at once; a StandAlone link stays so
    /// until `connect` (adjust connects it).
    /// </summary>
    public void Reconfigure(PeerLinkSettings wanted, bool reconnect, long nowMs)
    {
        Invariant.Assert(wanted.ResourceName == settings.ResourceName && wanted.LocalNodeId == settings.LocalNodeId && wanted.PeerNodeId == settings.PeerNodeId,
            "adjust keeps the resource and the nodes of a connection");
        settings = wanted;
        if (!reconnect)
        {
            output.Log.Add($"{Subject}: adjust: new net options in effect");
            return;
        }
        adjustPending = true;
        if (State == ConnectionState.StandAlone)
        {
            return;
        }
        output.Log.Add($"{Subject}: adjust: net options changed: reconnecting with the new ones");
        CloseGracefully("adjust: reconnecting with new net options", "adjust: reconnecting with new net options");
        SetState(ConnectionState.Disconnecting);
        SetState(ConnectionState.Unconnected);
        SetState(ConnectionState.Connecting);
        nextDialAtMs = settings.Dials ? nowMs : long.MaxValue;
        Tick(nowMs);
    }

    /// <summary>
    /// After an adjust, a refusal the peer's own adjust can cure is retried rather than final: true
    /// when the connection was dropped to be tried again.
    /// </summary>
    private bool RetriedAfterAdjust(WireDisconnectReason reason, string text)
    {
        if (!adjustPending || reason is not (WireDisconnectReason.IncompatibleSettings or WireDisconnectReason.AuthenticationFailed))
        {
            return false;
        }
        Drop($"{text} (retrying: the peer may not have run adjust yet)", ConnectionState.Disconnecting);
        return true;
    }
}

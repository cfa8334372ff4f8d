using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// `adjust` of a running resource without restarting its replication, as drbdsetup net-options and
// disk-options do: new connection settings per peer (live, or with a new handshake — see
// SettingsChange) and new resync rate settings, which a running resync or verify takes over at once
// with a fresh controller (DRBD replaces the controller's plan when c-plan-ahead changes, too).
// A new replication protocol (with after-sb-* and allow-two-primaries) goes to a connected peer in
// a ProtocolUpdate (PeerLink.ProtocolUpdate.cs); new requests use it at once, while those in flight
// are acknowledged by the rules of the protocol they were sent under (WriteTracker).
public sealed partial class Replica
{
    /// <summary>
    /// allow-two-primaries turned off while both nodes are Primary: DRBD refuses that net-options
    /// change (ERR_NEED_ALLOW_TWO_PRI); here the connection is re-established instead, and its
    /// handshake deals with the two Primaries.
    /// </summary>
    private bool EndsTwoPrimaries(PeerLink link, PeerLinkSettings wanted) =>
        !wanted.Protocol.AllowTwoPrimaries && link.Settings.Protocol.AllowTwoPrimaries && Role == Role.Primary && link.PeerRole == Role.Primary;

    /// <summary>New requests go under <paramref name="protocol"/>; those in flight keep theirs.</summary>
    private void SwitchProtocol(ReplicationProtocol protocol, string why)
    {
        if (protocol == Protocol)
        {
            return;
        }
        io.Log($"{ResourceName}: {why}: replication protocol {Protocol} -> {protocol} (requests in flight keep theirs)");
        writes.SwitchProtocol(protocol);
    }

    /// <summary>True when <paramref name="peers"/> can be applied by <see cref="Reconfigure"/> (no restart needed).</summary>
    public bool CanReconfigure(IEnumerable<PeerLinkSettings> peers) =>
        peers.All(p => links.TryGetValue(p.PeerNodeId, out var link) && SettingsChanges.Compare(link.Settings, p) != SettingsChange.Restart)
        && peers.Count() == links.Count;

    /// <summary>Applies new settings; the caller checked <see cref="CanReconfigure"/>.</summary>
    public void Reconfigure(IEnumerable<PeerLinkSettings> peers, IReadOnlyDictionary<int, ResyncRateSettings> resyncRates, long nowMs)
    {
        foreach (var wanted in peers)
        {
            var link = links[wanted.PeerNodeId];
            var change = SettingsChanges.Compare(link.Settings, wanted);
            Invariant.Assert(change != SettingsChange.Restart, "adjust applies only settings a running replica can take");
            if (change == SettingsChange.ProtocolUpdate && link.CanSendProtocolUpdate && !EndsTwoPrimaries(link, wanted))
            {
                link.SendProtocolUpdate(wanted);
                Drain(wanted.PeerNodeId);
            }
            else if (change != SettingsChange.None)
            {
                link.Reconfigure(wanted, change is SettingsChange.Reconnect or SettingsChange.ProtocolUpdate, nowMs);
                Drain(wanted.PeerNodeId);
            }
        }
        var protocols = peers.Select(p => p.Protocol.Protocol).Distinct().ToList();
        if (protocols is [var protocol])
        {
            SwitchProtocol(protocol, "adjust");
        }
        foreach (var (number, rate) in resyncRates)
        {
            var volume = volumes[number];
            if (volume.ResyncRate == rate)
            {
                continue;
            }
            volume.SetResyncRate(rate);
            foreach (var (key, sync) in syncs.Where(s => s.Key.Volume == number && s.Value.Controller is not null))
            {
                sync.Controller = new ResyncRateController(rate);
                io.Log($"{Subject(key.Peer)}/{number}: adjust: the running resync continues at the new rate settings (resync-rate {rate.ResyncRateKibPerSec}K, c-plan-ahead {rate.CPlanAheadMs / 100})");
            }
            foreach (var verify in verifies.Where(v => v.Key.Volume == number && v.Value.Controller is not null).Select(v => v.Value))
            {
                verify.Controller = new ResyncRateController(rate);
            }
        }
    }
}

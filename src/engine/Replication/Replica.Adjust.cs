using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// `adjust` of a running resource without restarting its replication, as drbdsetup net-options and
// disk-options do: new connection settings per peer (live, or with a new handshake — see
// SettingsChange) and new resync rate settings, which a running resync or verify takes over at once
// with a fresh controller (DRBD replaces the controller's plan when c-plan-ahead changes, too).
// A new replication protocol reconnects every connection; the replica switches to it once they
// are all down (their writes settled by the connection loss), so every write is acknowledged by
// the rules of the protocol it was sent under.
public sealed partial class Replica
{
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
            if (change != SettingsChange.None)
            {
                link.Reconfigure(wanted, change == SettingsChange.Reconnect, nowMs);
                Drain(wanted.PeerNodeId);
            }
        }
        var protocols = peers.Select(p => p.Protocol.Protocol).Distinct().ToList();
        if (protocols is [var protocol] && protocol != Protocol)
        {
            Invariant.Assert(links.Values.All(l => l.State != ConnectionState.Connected), "a protocol change re-establishes every connection");
            io.Log($"{ResourceName}: adjust: replication protocol {Protocol} -> {protocol} from the next connection");
            writes.SwitchProtocol(protocol);
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

// Compares our ProtocolSettings with the peer's, as DRBD's receive_protocol (and receive_SyncParam
// for csums-alg/verify-alg) does: the first setting that differs is reported, and the connection
// goes StandAlone with "incompatible <setting> settings" logged. Compression is not compared: it is
// negotiated instead (Lz4Compression, offered with `compression lz4`, is used when both offer it).
namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>One setting that differs between the peers, with both values in drbd.conf spelling.</summary>
public readonly record struct SettingsMismatch(string Setting, string Local, string Peer)
{
    /// <summary>The log line: "incompatible after-sb-0pri settings (local disconnect, peer discard-zero-changes)".</summary>
    public override string ToString() => $"incompatible {Setting} settings (local {Local}, peer {Peer})";

    /// <summary>The first setting that differs, or null when the peers agree.</summary>
    public static SettingsMismatch? Find(in ProtocolSettingsMessage local, in ProtocolSettingsMessage peer)
    {
        if (local.Protocol != peer.Protocol)
        {
            return new("protocol", local.Protocol.ToString(), peer.Protocol.ToString());
        }

        if (!AfterSb0PriCompatible(local.AfterSb0Pri, peer.AfterSb0Pri))
        {
            return new("after-sb-0pri", ProtocolSettingsValues.Name(local.AfterSb0Pri), ProtocolSettingsValues.Name(peer.AfterSb0Pri));
        }

        if (local.AfterSb1Pri != peer.AfterSb1Pri)
        {
            return new("after-sb-1pri", ProtocolSettingsValues.Name(local.AfterSb1Pri), ProtocolSettingsValues.Name(peer.AfterSb1Pri));
        }

        if (local.AfterSb2Pri != peer.AfterSb2Pri)
        {
            return new("after-sb-2pri", ProtocolSettingsValues.Name(local.AfterSb2Pri), ProtocolSettingsValues.Name(peer.AfterSb2Pri));
        }

        if (local.AllowTwoPrimaries != peer.AllowTwoPrimaries)
        {
            return new("allow-two-primaries", YesNo(local.AllowTwoPrimaries), YesNo(peer.AllowTwoPrimaries));
        }

        bool localAsbp = (local.Flags & ProtocolSettingsFlags.AlwaysAsbp) != 0, peerAsbp = (peer.Flags & ProtocolSettingsFlags.AlwaysAsbp) != 0;
        return localAsbp != peerAsbp ? new("always-asbp", YesNo(localAsbp), YesNo(peerAsbp))
            : Algorithm("data-integrity-alg", local.DataIntegrityAlg, peer.DataIntegrityAlg)
            ?? Algorithm("csums-alg", local.CsumsAlg, peer.CsumsAlg)
            ?? Algorithm("verify-alg", local.VerifyAlg, peer.VerifyAlg);
    }

    /// <summary>
    /// As DRBD's cmp_after_sb: discard-local on one side must be discard-remote on the other (both name
    /// the same node); any other value must be equal.
    /// </summary>
    private static bool AfterSb0PriCompatible(AfterSb0Pri local, AfterSb0Pri peer) => (local, peer) switch
    {
        (AfterSb0Pri.DiscardLocal, AfterSb0Pri.DiscardRemote) or (AfterSb0Pri.DiscardRemote, AfterSb0Pri.DiscardLocal) => true,
        (AfterSb0Pri.DiscardLocal, _) or (AfterSb0Pri.DiscardRemote, _) or (_, AfterSb0Pri.DiscardLocal) or (_, AfterSb0Pri.DiscardRemote) => false,
        _ => local == peer,
    };

    private static SettingsMismatch? Algorithm(string setting, DigestAlgorithm local, DigestAlgorithm peer) =>
        local == peer ? null : new(setting, DigestAlgorithms.Name(local), DigestAlgorithms.Name(peer));

    private static string YesNo(bool value) => value ? "yes" : "no";
}

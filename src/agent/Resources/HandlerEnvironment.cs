using System.Globalization;
using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// The environment a handler runs with: the variables drbdadm sets before it runs a handler, so
/// scripts written for DRBD (crm-fence-peer.9.sh, notify-split-brain.sh,
/// snapshot-resync-target-lvm.sh) find what they read. A volume's handler gets that volume's
/// DRBD_VOLUME, DRBD_MINOR and DRBD_LL_DISK; a resource's (fence-peer, split-brain) gets the
/// lists of all volumes, space-separated, as drbdadm gives them. DRBD_MINOR_N and
/// DRBD_BACKING_DEV_N name each volume's minor and disk either way.
/// </summary>
internal static class HandlerEnvironment
{
    /// <summary>The variables for a handler of <paramref name="volume"/> (-1: the whole resource) about <paramref name="peerNodeId"/> (-1: none).</summary>
    public static Dictionary<string, string> For(ResourceDefinition definition, NodeDefinition me, int volume, int peerNodeId)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["DRBD_RESOURCE"] = definition.Name,
            ["DRBD_MY_NODE_ID"] = Number(me.NodeId),
            ["DRBD_MY_ADDRESS"] = HostOf(me.Address),
            ["DRBD_MY_AF"] = me.AddressFamily,
        };
        if (definition.ConfigFile is { } configFile)
        {
            environment["DRBD_CONF"] = configFile;
        }

        var volumes = me.Volumes.Where(v => volume < 0 || v.Number == volume).OrderBy(v => v.Number).ToList();
        foreach (var v in volumes)
        {
            environment[$"DRBD_MINOR_{Number(v.Number)}"] = Number(v.Minor);
            environment[$"DRBD_BACKING_DEV_{Number(v.Number)}"] = v.Disk ?? "none";
        }
        if (volumes.Count > 0)
        {
            environment["DRBD_VOLUME"] = string.Join(' ', volumes.Select(v => Number(v.Number)));
            environment["DRBD_MINOR"] = string.Join(' ', volumes.Select(v => Number(v.Minor)));
            string disks = string.Join(' ', volumes.Select(v => v.Disk ?? "none"));
            environment["DRBD_LL_DISK"] = disks;
            environment["DRBD_BACKING_DEV"] = disks;
        }

        if (definition.Nodes.FirstOrDefault(n => n.NodeId == peerNodeId) is { } peer)
        {
            environment["DRBD_PEER_NODE_ID"] = Number(peer.NodeId);
            environment["DRBD_PEER_ADDRESS"] = HostOf(peer.Address);
            environment["DRBD_PEER_AF"] = peer.AddressFamily;
            environment["DRBD_PEERS"] = peer.Name;
            environment["DRBD_PEER"] = peer.Name; // DRBD 8.4's name, still read by older scripts
        }
        foreach (var node in definition.Nodes)
        {
            environment[$"DRBD_NODE_ID_{Number(node.NodeId)}"] = node.Name;
        }
        return environment;
    }

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>"127.0.0.1:7789" → "127.0.0.1" (DRBD passes the address without the port).</summary>
    private static string HostOf(string? address) =>
        address is null ? string.Empty : address.LastIndexOf(':') is int colon and > 0 ? address[..colon].Trim('[', ']') : address;
}

using System.Globalization;
using System.Text;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Status;

/// <summary>
/// Renders `drbdadm status` text: 2-space indent for disk and connection lines, 4 for peer-device
/// lines; `replication:` only when not Established, `done:` only while resyncing, as drbdsetup does.
/// </summary>
public static class StatusText
{
    public static string Format(IEnumerable<ResourceStatus> resources, bool verbose)
    {
        var text = new StringBuilder();
        foreach (var resource in resources)
        {
            AppendResource(text, resource, verbose);
        }
        return text.ToString();
    }

    private static void AppendResource(StringBuilder text, ResourceStatus r, bool verbose)
    {
        text.Append(r.Name);
        if (verbose)
        {
            text.Append(" node-id:").Append(r.NodeId.ToString(CultureInfo.InvariantCulture));
        }
        text.Append(" role:").Append(r.Role);
        if (verbose || r.Suspended)
        {
            text.Append(" suspended:").Append(Suspended(r));
        }
        text.Append('\n');
        bool multiVolume = r.Devices.Count > 1;
        foreach (var d in r.Devices)
        {
            text.Append("  ");
            if (multiVolume || verbose)
            {
                text.Append("volume:").Append(d.Volume.ToString(CultureInfo.InvariantCulture)).Append(' ');
            }
            if (verbose)
            {
                text.Append("minor:").Append(d.Minor.ToString(CultureInfo.InvariantCulture)).Append(' ');
            }
            text.Append("disk:").Append(d.DiskState);
            if (d.Open && (verbose || r.Role == Role.Primary))
            {
                text.Append(" open:yes");
            }
            if (verbose)
            {
                text.Append(" quorum:").Append(d.Quorum ? "yes" : "no").Append(" blocked:no");
            }
            text.Append('\n');
        }
        foreach (var c in r.Connections)
        {
            AppendConnection(text, c, verbose, multiVolume);
        }
        text.Append('\n');
    }

    private static void AppendConnection(StringBuilder text, ConnectionStatus c, bool verbose, bool multiVolume)
    {
        text.Append("  ").Append(c.Name);
        if (verbose)
        {
            text.Append(" node-id:").Append(c.PeerNodeId.ToString(CultureInfo.InvariantCulture));
        }
        bool connected = c.ConnectionState == ConnectionState.Connected;
        if (!connected || verbose)
        {
            text.Append(" connection:").Append(c.ConnectionState);
        }
        if (connected)
        {
            text.Append(" role:").Append(c.PeerRole);
        }
        if (verbose)
        {
            text.Append(" congested:").Append(c.Congested ? "yes" : "no");
        }
        text.Append('\n');
        if (!connected && !verbose)
        {
            return;
        }
        foreach (var p in c.PeerDevices)
        {
            text.Append("    ");
            if (multiVolume || verbose)
            {
                text.Append("volume:").Append(p.Volume.ToString(CultureInfo.InvariantCulture)).Append(' ');
            }
            if (p.ReplicationState != ReplicationState.Established || verbose)
            {
                text.Append("replication:").Append(p.ReplicationState).Append(' ');
            }
            text.Append("peer-disk:").Append(p.PeerDiskState);
            if (IsResyncing(p.ReplicationState))
            {
                text.Append(" done:").Append(p.PercentInSync.ToString("F2", CultureInfo.InvariantCulture));
            }
            if (verbose)
            {
                text.Append(" resync-suspended:").Append(p.ResyncSuspended);
                text.Append(" out-of-sync:").Append(p.OutOfSyncKib.ToString(CultureInfo.InvariantCulture));
            }
            text.Append('\n');
        }
    }

    /// <summary>drbdsetup's susp_str: why I/O is suspended ("user,fencing"), or "no".</summary>
    public static string Suspended(ResourceStatus r)
    {
        var reasons = new List<string>();
        if (r.SuspendedUser)
        {
            reasons.Add("user");
        }
        if (r.SuspendedNoData)
        {
            reasons.Add("no-data");
        }
        if (r.SuspendedFencing)
        {
            reasons.Add("fencing");
        }
        if (r.SuspendedQuorum)
        {
            reasons.Add("quorum");
        }
        return reasons.Count > 0 ? string.Join(',', reasons) : "no";
    }

    public static bool IsResyncing(ReplicationState state) => state is
        ReplicationState.SyncSource or ReplicationState.SyncTarget or
        ReplicationState.PausedSyncS or ReplicationState.PausedSyncT or
        ReplicationState.VerifyS or ReplicationState.VerifyT;
}

using System.Globalization;
using System.Text;

namespace Redundancy.Block.Engine.Status;

/// <summary>
/// drbdsetup `events2` lines: `{exists|create|change|destroy} {resource|device|connection|peer-device} key:value...`.
/// `exists` lines are the initial dump, closed by `exists -`.
/// </summary>
public static class Events2
{
    public const string EndOfDump = "exists -";

    /// <summary>The initial dump of every object of every resource, as `events2 --now` prints it.</summary>
    public static IEnumerable<string> Dump(IEnumerable<ResourceStatus> resources)
    {
        foreach (var r in resources)
        {
            foreach (var line in Describe("exists", r))
            {
                yield return line;
            }
        }
        yield return EndOfDump;
    }

    /// <summary>All objects of one resource, each line prefixed by <paramref name="verb"/>.</summary>
    public static IEnumerable<string> Describe(string verb, ResourceStatus r)
    {
        yield return Resource(verb, r);
        foreach (var c in r.Connections)
        {
            yield return Connection(verb, r, c);
        }
        foreach (var d in r.Devices)
        {
            yield return Device(verb, r, d);
        }
        foreach (var c in r.Connections)
        {
            foreach (var p in c.PeerDevices)
            {
                yield return PeerDevice(verb, r, c, p);
            }
        }
    }

    public static string Resource(string verb, ResourceStatus r) =>
        $"{verb} resource name:{r.Name} role:{r.Role} suspended:{YesNo(r.Suspended)} write-ordering:{r.WriteOrdering}";

    public static string Connection(string verb, ResourceStatus r, ConnectionStatus c) =>
        $"{verb} connection name:{r.Name} peer-node-id:{N(c.PeerNodeId)} conn-name:{c.Name} connection:{c.ConnectionState} role:{c.PeerRole}";

    public static string Device(string verb, ResourceStatus r, DeviceStatus d) =>
        $"{verb} device name:{r.Name} volume:{N(d.Volume)} minor:{N(d.Minor)} disk:{d.DiskState} client:{YesNo(d.Client)} open:{YesNo(d.Open)} quorum:{YesNo(d.Quorum)}";

    public static string PeerDevice(string verb, ResourceStatus r, ConnectionStatus c, PeerDeviceStatus p)
    {
        var line = new StringBuilder();
        line.Append(verb).Append(" peer-device name:").Append(r.Name)
            .Append(" peer-node-id:").Append(N(c.PeerNodeId))
            .Append(" conn-name:").Append(c.Name)
            .Append(" volume:").Append(N(p.Volume))
            .Append(" replication:").Append(p.ReplicationState)
            .Append(" peer-disk:").Append(p.PeerDiskState)
            .Append(" peer-client:").Append(YesNo(p.PeerClient))
            .Append(" resync-suspended:").Append(p.ResyncSuspended);
        if (StatusText.IsResyncing(p.ReplicationState))
        {
            line.Append(" done:").Append(p.PercentInSync.ToString("F2", CultureInfo.InvariantCulture));
        }
        return line.ToString();
    }

    /// <summary>
    /// The `change` lines that turn <paramref name="before"/> into <paramref name="after"/> (null = created
    /// or destroyed). Only objects whose printed line differs are reported.
    /// </summary>
    public static IEnumerable<string> Diff(ResourceStatus? before, ResourceStatus? after)
    {
        if (before is null && after is not null)
        {
            return Describe("create", after);
        }
        if (after is null)
        {
            return before is null ? [] : Describe("destroy", before).Reverse();
        }
        var old = Describe("change", before!).ToHashSet(StringComparer.Ordinal);
        return Describe("change", after).Where(line => !old.Contains(line)).ToList();
    }

    private static string YesNo(bool value) => value ? "yes" : "no";

    private static string N(int value) => value.ToString(CultureInfo.InvariantCulture);
}

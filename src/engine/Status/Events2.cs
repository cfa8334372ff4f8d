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
        $"{verb} resource name:{r.Name} role:{r.Role} suspended:{StatusText.Suspended(r)} write-ordering:{r.WriteOrdering}";

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
    /// The events2 lines that turn <paramref name="before"/> into <paramref name="after"/> (null = the
    /// resource does not exist): objects are matched by key (connection by peer-node-id, device by
    /// volume, peer-device by both); new ones are `create`d, changed ones `change`d, gone ones
    /// `destroy`ed — peer-devices first, the resource last, as drbdsetup reports a `down`.
    /// </summary>
    public static IEnumerable<string> Diff(ResourceStatus? before, ResourceStatus? after)
    {
        var old = before is null ? [] : Objects(before).ToDictionary(o => o.Key, o => o.Line, StringComparer.Ordinal);
        var now = after is null ? [] : Objects(after).ToList();
        var lines = new List<string>();
        foreach (var (key, line) in now)
        {
            if (!old.TryGetValue(key, out string? previous))
            {
                lines.Add("create " + line);
            }
            else if (previous != line)
            {
                lines.Add("change " + line);
            }
        }
        var present = now.Select(o => o.Key).ToHashSet(StringComparer.Ordinal);
        var gone = before is null ? [] : Objects(before).Where(o => !present.Contains(o.Key)).ToList();
        foreach (string kind in new[] { "peer-device", "connection", "device", "resource" })
        {
            lines.AddRange(gone.Where(o => o.Key.StartsWith(kind + ":", StringComparison.Ordinal)).Select(o => "destroy " + o.Line));
        }
        return lines;
    }

    /// <summary>Every object of a resource with a stable key and its line without the verb.</summary>
    private static IEnumerable<(string Key, string Line)> Objects(ResourceStatus r)
    {
        const string Verb = "x";
        static string Strip(string line) => line[(Verb.Length + 1)..];
        yield return ("resource:", Strip(Resource(Verb, r)));
        foreach (var c in r.Connections)
        {
            yield return ($"connection:{N(c.PeerNodeId)}", Strip(Connection(Verb, r, c)));
        }
        foreach (var d in r.Devices)
        {
            yield return ($"device:{N(d.Volume)}", Strip(Device(Verb, r, d)));
        }
        foreach (var c in r.Connections)
        {
            foreach (var p in c.PeerDevices)
            {
                yield return ($"peer-device:{N(c.PeerNodeId)}:{N(p.Volume)}", Strip(PeerDevice(Verb, r, c, p)));
            }
        }
    }

    private static string YesNo(bool value) => value ? "yes" : "no";

    private static string N(int value) => value.ToString(CultureInfo.InvariantCulture);
}

namespace Redundancy.Block.Engine.Config;

/// <summary>
/// What `adjust` may change on a resource whose replication runs (DRBD's net-options and
/// disk-options on a live device): every `net`, `handlers`, `startup` and `options` value (net
/// values reach the connections — live or by a new handshake — the rest is read where it is used),
/// and of the disk options those read while running: the resync rate and its controller,
/// on-io-error and disk-flushes. Anything else (direct-io, al-updates, size...) is read when the disk
/// is attached or replication starts, so it needs replication restarted.
/// </summary>
public static class LiveAdjust
{
    private static readonly HashSet<string> LiveDiskOptions = new(StringComparer.Ordinal)
    {
        "resync-rate", "c-plan-ahead", "c-delay-target", "c-fill-target", "c-max-rate", "c-min-rate", "on-io-error", "disk-flushes",
    };

    /// <summary>The options that differ between the two and cannot be applied to running replication (empty: all can).</summary>
    public static IReadOnlyList<string> RestartNeededFor(ResourceDefinition running, ResourceDefinition wanted)
    {
        var differing = DifferingKeys(running.Disk, wanted.Disk).ToHashSet(StringComparer.Ordinal);
        foreach (var node in wanted.Nodes)
        {
            var before = running.Nodes.FirstOrDefault(n => n.NodeId == node.NodeId);
            foreach (var volume in node.Volumes)
            {
                var options = before?.Volumes.FirstOrDefault(v => v.Number == volume.Number)?.DiskOptions ?? ResourceDefinition.Empty;
                differing.UnionWith(DifferingKeys(options, volume.DiskOptions));
            }
        }
        var restart = differing.Where(k => !LiveDiskOptions.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (ConfigDumper.Dump(Fixed(running)) != ConfigDumper.Dump(Fixed(wanted)))
        {
            restart.Add("the nodes or volumes");
        }
        return restart;
    }

    /// <summary>The resource without what adjust applies or compares key by key.</summary>
    private static ResourceDefinition Fixed(ResourceDefinition r) => r with
    {
        Options = ResourceDefinition.Empty,
        Net = ResourceDefinition.Empty,
        Disk = ResourceDefinition.Empty,
        Startup = ResourceDefinition.Empty,
        Handlers = ResourceDefinition.Empty,
        Ignored = [],
        Nodes = [.. r.Nodes.Select(n => n with { Volumes = [.. n.Volumes.Select(v => v with { DiskOptions = ResourceDefinition.Empty })] })],
    };

    private static IEnumerable<string> DifferingKeys(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Keys.Union(b.Keys).Where(k => a.GetValueOrDefault(k) != b.GetValueOrDefault(k));
}

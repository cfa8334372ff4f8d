using Microsoft.Extensions.Logging;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Agent.Resources;

// drbdadm adjust: make what runs match the configuration file. A resource that is not up is
// brought up; Diskless volumes are attached; StandAlone peers are connected; when the resource's
// settings changed (net, disk, handlers...), replication restarts with the new ones (the peers
// reconnect and the handshake decides as usual) — only while no NBD client holds the device, since
// open handles write through the running replica. The set of nodes and volumes cannot change
// while up: that needs `down` and `up`, and adjust says so.
internal sealed partial class ResourceManager
{
    public async Task<ControlResponse> AdjustAsync(ResourceDefinition definition, CancellationToken cancellationToken)
    {
        ResourceRuntime? runtime;
        lock (resources)
        {
            runtime = resources.GetValueOrDefault(definition.Name);
        }
        if (runtime is null)
        {
            return await UpAsync(definition, cancellationToken).ConfigureAwait(false);
        }
        return await Serialized(async () =>
        {
            if (!SameShape(runtime.Definition, definition, out string difference))
            {
                return ControlResponse.Failure($"{definition.Name}: {difference} changed: adjust cannot apply that while the resource is up (run `down`, then `up`)", ExitCodes.StateChangeFailed);
            }
            if (ConfigDumper.Dump(runtime.Definition) != ConfigDumper.Dump(definition))
            {
                if (runtime.OpenCount > 0)
                {
                    // Open NBD handles write through the running replica; it is replaced below.
                    return ControlResponse.Failure($"{definition.Name}: settings changed, but NBD clients hold the device: disconnect them (or demote) and adjust again", ExitCodes.StateChangeFailed);
                }
                LogAdjusting(logger, definition.Name);
                await StopReplicationAsync(runtime).ConfigureAwait(false);
                runtime.Definition = definition;
                if (definition.Nodes.Count > 1 && await StartReplicationAsync(runtime, cancellationToken).ConfigureAwait(false) is { } error)
                {
                    return ControlResponse.Failure($"{definition.Name}: cannot connect to peers: {error}", ExitCodes.StateChangeFailed);
                }
            }
            var attached = await AttachVolumesAsync(runtime, null, cancellationToken).ConfigureAwait(false);
            if (!attached.Ok)
            {
                return attached;
            }
            if (runtime.Replication is null && definition.Nodes.Count > 1
                && await StartReplicationAsync(runtime, cancellationToken).ConfigureAwait(false) is { } startError)
            {
                return ControlResponse.Failure($"{definition.Name}: cannot connect to peers: {startError}", ExitCodes.StateChangeFailed);
            }
            runtime.Replication?.Locked(replica =>
            {
                if (replica.Links.Values.Any(l => l.State == ConnectionState.StandAlone))
                {
                    replica.Connect(runtime.Replication.NowMs);
                }
            });
            Publish(runtime);
            return ControlResponse.Success();
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Same nodes (name, node-id, addresses) and the same volumes and disks on this node.</summary>
    private bool SameShape(ResourceDefinition running, ResourceDefinition wanted, out string difference)
    {
        difference = string.Empty;
        static string Nodes(ResourceDefinition d) => string.Join(';', d.Nodes.OrderBy(n => n.NodeId).Select(n => $"{n.Name}/{n.NodeId}/{n.Address}/{n.NbdAddress}"));
        if (Nodes(running) != Nodes(wanted))
        {
            difference = "the set of nodes or their addresses";
            return false;
        }
        static string Volumes(NodeDefinition? n) => n is null ? string.Empty : string.Join(';', n.Volumes.Select(v => $"{v.Number}/{v.Disk}/{v.MetaDisk}"));
        if (Volumes(running.FindNode(options.NodeName)) != Volumes(wanted.FindNode(options.NodeName)))
        {
            difference = "the volumes or disks of this node";
            return false;
        }
        return true;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Resource}: adjust: settings changed, reconnecting with the new ones")]
    private static partial void LogAdjusting(ILogger logger, string resource);
}

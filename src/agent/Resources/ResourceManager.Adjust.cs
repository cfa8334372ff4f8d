using Microsoft.Extensions.Logging;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Agent.Resources;

// drbdadm adjust: make what runs match the configuration file. A resource that is not up is
// brought up; Diskless volumes are attached; StandAlone peers are connected. Changed settings are
// applied to the running replication where they can be (LiveAdjust, SettingsChange: net options
// live or by reconnecting the peer, the resync rate even for a running resync, handlers at once),
// with NBD clients connected (the replication protocol too, by reconnecting). Otherwise (direct-io, al-updates...)
// replication restarts with the new ones — only while no NBD client holds the device, since open
// handles write through the running replica. The set of nodes and volumes cannot change while
// up: that needs `down` and `up`, and adjust says so.
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
            if (ConfigDumper.Dump(runtime.Definition) != ConfigDumper.Dump(definition) && !AdjustedLive(runtime, definition, out string? restartReason))
            {
                if (runtime.OpenCount > 0)
                {
                    // Open NBD handles write through the running replica; it is replaced below.
                    return ControlResponse.Failure($"{definition.Name}: {restartReason} changed, which needs replication restarted, but NBD clients hold the device: disconnect them (or demote) and adjust again", ExitCodes.StateChangeFailed);
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

    /// <summary>
    /// Applies <paramref name="definition"/> to the running replication when nothing in it needs a
    /// restart; else false with what does in <paramref name="restartReason"/>.
    /// </summary>
    private bool AdjustedLive(ResourceRuntime runtime, ResourceDefinition definition, out string? restartReason)
    {
        restartReason = null;
        if (runtime.Replication is not { } host || definition.Nodes.Count < 2)
        {
            restartReason = "the configuration";
            return false;
        }
        if (LiveAdjust.RestartNeededFor(runtime.Definition, definition) is { Count: > 0 } needRestart)
        {
            restartReason = string.Join(", ", needRestart);
            return false;
        }
        var node = definition.FindNode(options.NodeName)!;
        var peers = new List<PeerLinkSettings>();
        foreach (var peerNode in definition.Nodes.Where(n => n.NodeId != node.NodeId))
        {
            if (!PeerLinkSettings.TryCreate(definition, node, peerNode, out var settings, out string error))
            {
                restartReason = error;
                return false;
            }
            peers.Add(settings);
        }
        var rates = node.Volumes.ToDictionary(v => v.Number, v => ResyncRateSettings.From(definition, v));
        bool applied = host.Locked(replica =>
        {
            if (!replica.CanReconfigure(peers))
            {
                return false;
            }
            replica.Reconfigure(peers, rates, host.NowMs);
            return true;
        });
        if (!applied)
        {
            restartReason = "the frame size";
            return false;
        }
        runtime.Definition = definition;
        LogAdjustedLive(logger, definition.Name);
        return true;
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

    [LoggerMessage(Level = LogLevel.Information, Message = "{Resource}: adjust: new settings applied to the running replication")]
    private static partial void LogAdjustedLive(ILogger logger, string resource);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Resource}: adjust: settings changed, restarting replication with the new ones")]
    private static partial void LogAdjusting(ILogger logger, string resource);
}

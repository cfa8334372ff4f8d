using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Redundancy.Block.Agent.Nbd;
using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Engine.Status;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// Everything that is up on this agent, and the one place state changes happen: every command takes
/// the gate, asks the engine, persists the metadata the engine wants, then publishes the change as
/// log lines and events2 lines. Also the NBD export catalog: clients reach volumes through it.
/// </summary>
internal sealed partial class ResourceManager : IHostedService, INbdExportCatalog
{
    private static readonly TimeSpan RevokeTimeout = TimeSpan.FromSeconds(10);
    private readonly SemaphoreSlim gate = new(1, 1);
    private readonly Dictionary<string, ResourceRuntime> resources = new(StringComparer.Ordinal);
    private readonly AgentOptions options;
    private readonly EventHub events;
    private readonly ILogger<ResourceManager> logger;
    private readonly NbdEndpoints endpoints;
    private readonly PeerListenerPool listeners;
    private readonly PeerDialer dialer;

    public ResourceManager(AgentOptions options, EventHub events, ILoggerFactory loggerFactory)
    {
        this.options = options;
        this.events = events;
        logger = loggerFactory.CreateLogger<ResourceManager>();
        endpoints = new NbdEndpoints(this, loggerFactory);
        var peerOptions = new PeerConnectionOptions();
        listeners = new PeerListenerPool(peerOptions, loggerFactory);
        dialer = new PeerDialer(peerOptions, loggerFactory);
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Agent shutdown (SIGTERM/SIGINT): stop serving NBD (requests already executing complete, the
    /// rest fail), then demote and detach every resource so the metadata on disk is clean.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await endpoints.StopAllAsync().ConfigureAwait(false);
            foreach (var runtime in resources.Values.ToList())
            {
                await runtime.RevokeClientsAsync(RevokeTimeout).ConfigureAwait(false);
                await TakeDownAsync(runtime, CancellationToken.None).ConfigureAwait(false);
            }
            await listeners.DisposeAsync().ConfigureAwait(false);
            events.CompleteAll();
        }
        finally
        {
            gate.Release();
        }
    }

    public async Task<ControlResponse> UpAsync(ResourceDefinition definition, CancellationToken cancellationToken) =>
        await Serialized(async () =>
        {
            if (resources.ContainsKey(definition.Name))
            {
                return ControlResponse.Failure($"{definition.Name}: resource is already up (use `down` first)", ExitCodes.StateChangeFailed);
            }
            var node = definition.FindNode(options.NodeName);
            if (node is null)
            {
                return ControlResponse.Failure($"{definition.Name}: no `on {options.NodeName}` section: this node is not part of the resource", ExitCodes.Usage);
            }
            bool fencing = definition.Fencing() != "dont-care";
            var peers = definition.Nodes.Where(n => n.Name != node.Name).Select(n => new PeerState(n.Name, n.NodeId) { Fencing = fencing, AllowTwoPrimaries = definition.AllowTwoPrimaries() });
            var state = new ResourceStateMachine(definition.Name, node.NodeId, node.Volumes.Select(v => v.Number), peers, CryptoRandom.Instance);
            var runtime = new ResourceRuntime(definition, node, state);
            try
            {
                await endpoints.AcquireAsync(node.NbdAddress, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                return ControlResponse.Failure($"{definition.Name}: {e.Message}", ExitCodes.StateChangeFailed);
            }
            lock (resources)
            {
                resources[definition.Name] = runtime;
            }
            LogUp(logger, definition.Name, node.NodeId, node.NbdAddress);
            Publish(runtime);
            var attached = await AttachVolumesAsync(runtime, null, cancellationToken).ConfigureAwait(false);
            if (!attached.Ok || definition.Nodes.Count < 2)
            {
                return attached;
            }
            // DRBD's `up` is attach + connect.
            if (await StartReplicationAsync(runtime, cancellationToken).ConfigureAwait(false) is { } error)
            {
                LogReplicationNotStarted(logger, definition.Name, error);
                return ControlResponse.Failure($"{definition.Name}: cannot connect to peers: {error}", ExitCodes.StateChangeFailed);
            }
            Publish(runtime);
            return attached;
        }, cancellationToken).ConfigureAwait(false);

    public Task<ControlResponse> AttachAsync(string name, int? volume, CancellationToken cancellationToken) =>
        WithResource(name, runtime => AttachVolumesAsync(runtime, volume, cancellationToken), cancellationToken);

    public Task<ControlResponse> DetachAsync(string name, int? volume, bool force, CancellationToken cancellationToken) =>
        WithResource(name, async runtime =>
        {
            foreach (var number in SelectVolumes(runtime, volume))
            {
                var result = await DetachVolumeAsync(runtime, number, force, cancellationToken).ConfigureAwait(false);
                if (!result.IsSuccess())
                {
                    return Refused(runtime, $"{runtime.ExportName(number)}", result);
                }
            }
            return ControlResponse.Success();
        }, cancellationToken);

    public Task<ControlResponse> PrimaryAsync(string name, bool force, CancellationToken cancellationToken) =>
        WithResource(name, async runtime =>
        {
            var result = await PromoteAsync(runtime, force, peersFenced: false, cancellationToken).ConfigureAwait(false);
            if (result == StateChangeResult.PrimaryNop)
            {
                // DRBD: fence-peer for the peers not known Outdated, then one more try.
                await FencePeersAsync(runtime).ConfigureAwait(false);
                result = await PromoteAsync(runtime, force, peersFenced: true, cancellationToken).ConfigureAwait(false);
                if (result.IsSuccess() && runtime.State.UnfencedPeers().Any())
                {
                    LogForcedSplitBrain(logger, runtime.Name);
                }
            }
            await PersistAsync(runtime, cancellationToken).ConfigureAwait(false);
            if (result.IsSuccess() && force)
            {
                StartInitialSync(runtime);
            }
            Publish(runtime);
            return result.IsSuccess() ? ControlResponse.Success() : Refused(runtime, runtime.Name, result);
        }, cancellationToken);

    public Task<ControlResponse> SecondaryAsync(string name, bool force, CancellationToken cancellationToken) =>
        WithResource(name, async runtime =>
        {
            var result = await DemoteAsync(runtime, force, cancellationToken).ConfigureAwait(false);
            return result.IsSuccess() ? ControlResponse.Success() : Refused(runtime, runtime.Name, result);
        }, cancellationToken);

    public Task<ControlResponse> DownAsync(string name, CancellationToken cancellationToken) =>
        WithResource(name, async runtime =>
        {
            if (runtime.State.Role == Role.Primary && runtime.OpenCount > 0)
            {
                return Refused(runtime, runtime.Name, StateChangeResult.DeviceInUse);
            }
            await TakeDownAsync(runtime, cancellationToken).ConfigureAwait(false);
            return ControlResponse.Success();
        }, cancellationToken);

    /// <summary>The status of one resource (or all), as drbdsetup would report it.</summary>
    public IReadOnlyList<ResourceStatus> Status(string? name)
    {
        gate.Wait();
        try
        {
            return [.. resources.Values.Where(r => name is null || r.Name == name).OrderBy(r => r.Name, StringComparer.Ordinal).Select(r => r.Snapshot())];
        }
        finally
        {
            gate.Release();
        }
    }

    public IReadOnlyList<NbdExportInfo> ListExports()
    {
        lock (resources)
        {
            return [.. resources.Values.SelectMany(r => r.Node.Volumes.Select(v =>
                new NbdExportInfo(r.ExportName(v.Number), $"{r.Name} volume {v.Number} ({r.State.Role})")))];
        }
    }

    public bool TryOpen(string name, out INbdExport? export, out string refusal)
    {
        export = null;
        ResourceRuntime? runtime;
        int? volume = null;
        lock (resources)
        {
            runtime = resources.Values.FirstOrDefault(r => (volume = r.VolumeOfExport(name)) is not null);
        }
        if (runtime is null || volume is null)
        {
            refusal = $"no export named '{name}' on this node";
            return false;
        }
        bool opened = runtime.TryOpen(volume.Value, out var handle, out refusal);
        export = handle;
        return opened;
    }

    private async Task<ControlResponse> AttachVolumesAsync(ResourceRuntime runtime, int? volume, CancellationToken cancellationToken)
    {
        foreach (var number in SelectVolumes(runtime, volume))
        {
            if (runtime.State.Volume(number).Disk != DiskState.Diskless)
            {
                continue;
            }
            string? error = await AttachVolumeAsync(runtime, number, cancellationToken).ConfigureAwait(false);
            Publish(runtime);
            if (error is not null)
            {
                LogAttachFailed(logger, runtime.ExportName(number), error);
                return ControlResponse.Failure($"{runtime.Name}/{number}: attach failed: {error}", ExitCodes.DiskError);
            }
        }
        return ControlResponse.Success();
    }

    private async Task<string?> AttachVolumeAsync(ResourceRuntime runtime, int number, CancellationToken cancellationToken)
    {
        var definition = runtime.Node.Volumes.First(v => v.Number == number);
        var (volume, error) = await VolumeRuntime.OpenAsync(definition, runtime.Node.NodeId, runtime.Definition.DirectIo(definition), cancellationToken).ConfigureAwait(false);
        if (volume is null)
        {
            return error;
        }
        int peersWithoutSlot = runtime.State.Peers.Count(p => volume.Metadata.FindPeerSlot(p.NodeId) < 0);
        int freeSlots = volume.Metadata.Peers.Count(s => s.IsFree);
        string? refusal = peersWithoutSlot > freeSlots
            ? $"the metadata has {volume.Metadata.PeerSlots} peer slot(s) but the config names {runtime.State.Peers.Count} peer(s): run `rbadm create-md --force` to re-create it"
            : ReplicatedAttachRefusal(runtime, number, volume);
        if (refusal is not null)
        {
            await volume.DisposeAsync().ConfigureAwait(false);
            return refusal;
        }
        runtime.State.Attach(number, volume.Metadata);
        runtime.State.AssignPeerSlots(number);
        runtime.Attached[number] = volume;
        if (!await PersistAsync(runtime, cancellationToken).ConfigureAwait(false))
        {
            return "writing the metadata failed";
        }
        var dataPath = runtime.DataPaths.GetValueOrDefault(number);
        if (dataPath is null || dataPath.SizeBytes != volume.DataArea.SizeBytes)
        {
            dataPath = new VolumeDataPath(runtime.ExportName(number), volume.DataArea.SizeBytes, e => OnDiskError(runtime, number, e));
            runtime.DataPaths[number] = dataPath;
        }
        dataPath.Connect(volume.DataArea);
        LogAttached(logger, runtime.ExportName(number), definition.Disk!, volume.DataArea.SizeBytes / (1024 * 1024), definition.MetaDisk, volume.IoMode);
        ReattachToReplica(runtime, number);
        return null;
    }

    /// <summary>
    /// A disk attached to a volume that is replicating (`attach` after an I/O error or a detach) must
    /// fit the running replica: same usable size (what the bitmaps cover; the agreed size stays the
    /// replica's), same bitmap slots (the quick-sync bitmaps in memory stay the replica's). Null when it does.
    /// </summary>
    private static string? ReplicatedAttachRefusal(ResourceRuntime runtime, int number, VolumeRuntime attaching)
    {
        var metadata = attaching.Metadata;
        long usable = attaching.Store.Layout.UsableSizeBytes;
        if (runtime.Replication is not { } host)
        {
            return null;
        }
        return host.Locked(replica =>
        {
            var volume = replica.Volume(number);
            if (usable < volume.AgreedSizeBytes)
            {
                return $"the disk is too small for the device ({usable / 1024} KiB usable, the device is {volume.AgreedSizeBytes / 1024} KiB since the peer grew it): grow the disk, then `down` and `up` the resource";
            }
            if (usable != volume.UsableSizeBytes)
            {
                return $"the disk's usable size ({usable} bytes) differs from the replicated volume's ({volume.UsableSizeBytes} bytes): `down` and `up` the resource to use it";
            }
            return volume.SlotOfPeer.Any(p => metadata.FindPeerSlot(p.Key) != p.Value)
                ? "the disk's metadata assigns other bitmap slots to the peers than the running replication: `down` and `up` the resource to use it"
                : replica.AttachRefusal(number, metadata.GenerationIds);
        });
    }

    /// <summary>
    /// The replica takes the attached disk back: its identifiers and flags as read from the metadata;
    /// while connected it renegotiates with the peers and is resynced by bitmap. Every bitmap page is
    /// written out again (bits set while the disk was gone never reached it).
    /// </summary>
    private static void ReattachToReplica(ResourceRuntime runtime, int number)
    {
        runtime.Replication?.Locked(replica =>
        {
            var bitmaps = replica.Volume(number).Bitmaps;
            for (int slot = 0; slot < bitmaps.PeerSlots; slot++)
            {
                bitmaps.ReturnDirtyPages(new Engine.Bitmap.BitmapWrite(slot, 0, bitmaps.BitCount));
            }
            var state = runtime.State.Volume(number);
            replica.AttachLocal(number, state.Metadata!.GenerationIds, state.Metadata.Flags, state.Disk);
        });
    }

    private async Task<StateChangeResult> DetachVolumeAsync(ResourceRuntime runtime, int number, bool force, CancellationToken cancellationToken)
    {
        var result = ChangeState(runtime, _ => runtime.State.Detach(number, force));
        if (result != StateChangeResult.Success)
        {
            return result;
        }
        Publish(runtime);
        await CloseVolumeAsync(runtime, number, cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// Drains the data path, flushes, writes the final metadata, closes the disk: Diskless. The data
    /// path stays (disconnected): clients keep it, and a replicated volume is served through its peer.
    /// </summary>
    private async Task CloseVolumeAsync(ResourceRuntime runtime, int number, CancellationToken cancellationToken)
    {
        if (runtime.DataPaths.GetValueOrDefault(number) is { } dataPath)
        {
            await dataPath.DisconnectAsync().ConfigureAwait(false);
        }
        if (runtime.Attached.Remove(number, out var volume))
        {
            try
            {
                await volume.FlushAsync(cancellationToken).ConfigureAwait(false);
                await PersistVolumeAsync(runtime, number, volume, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                LogDiskError(logger, runtime.ExportName(number), e.Message);
            }
            await volume.DisposeAsync().ConfigureAwait(false);
        }
        runtime.State.CompleteDetach(number);
        runtime.Replication?.Locked(replica =>
        {
            var current = replica.Volume(number);
            replica.AdoptLocal(number, current.Ids, current.Flags, DiskState.Diskless);
        });
        Publish(runtime);
    }

    /// <summary>
    /// Demotion. Without force, refused while clients hold the device. With force, the role changes
    /// first (so no new client gets in), then clients are revoked: their requests fail, they go.
    /// Data is flushed before the metadata says "not Primary".
    /// </summary>
    private async Task<StateChangeResult> DemoteAsync(ResourceRuntime runtime, bool force, CancellationToken cancellationToken)
    {
        foreach (var volume in runtime.Attached.Values)
        {
            await volume.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        var result = ChangeState(runtime, (replica, open) => runtime.State.Demote(force, open > 0, replica?.HoldsUnconfirmedWrites ?? false));
        if (result == StateChangeResult.Success)
        {
            await runtime.RevokeClientsAsync(RevokeTimeout).ConfigureAwait(false);
            foreach (var volume in runtime.Attached.Values)
            {
                await volume.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        await PersistAsync(runtime, cancellationToken).ConfigureAwait(false);
        Publish(runtime);
        return result;
    }

    /// <summary>down: demote, detach every volume, stop serving its exports, forget it.</summary>
    private async Task TakeDownAsync(ResourceRuntime runtime, CancellationToken cancellationToken)
    {
        await DemoteAsync(runtime, force: true, cancellationToken).ConfigureAwait(false);
        await StopReplicationAsync(runtime).ConfigureAwait(false);
        foreach (var number in runtime.State.Volumes.Select(v => v.Number))
        {
            if (runtime.UnderExportsLock(_ => runtime.State.Detach(number, force: true)) == StateChangeResult.Success)
            {
                await CloseVolumeAsync(runtime, number, cancellationToken).ConfigureAwait(false);
            }
        }
        await endpoints.ReleaseAsync(runtime.Node.NbdAddress).ConfigureAwait(false);
        lock (resources)
        {
            resources.Remove(runtime.Name);
        }
        LogDown(logger, runtime.Name);
        events.Publish(Events2.Diff(runtime.LastPublished, null));
    }

    /// <summary>
    /// A disk I/O error reached the data path. The request fails with EIO either way; then the
    /// `on-io-error` policy applies: `detach` (DRBD 9's default) makes the volume Diskless,
    /// `call-local-io-error` runs the handler and detaches, `pass_on` only reports.
    /// </summary>
    private void OnDiskError(ResourceRuntime runtime, int number, IOException error, bool metadataError = false)
    {
        string subject = runtime.ExportName(number);
        string policy = runtime.Definition.OnIoError(runtime.Node.Volumes.First(v => v.Number == number));
        LogIoError(logger, subject, error.Message, policy);
        if (policy == "pass_on" && !metadataError)
        {
            return; // DRBD passes data I/O errors on, but detaches on meta-data errors whatever the policy
        }
        _ = Task.Run(async () =>
        {
            // A replicated volume fails at once, under the replica's lock: no more I/O goes to the
            // disk and the Primary goes on through its peer while the detach waits for the gate.
            if (runtime.Replication is not null && !MarkDiskFailed(runtime, number))
            {
                return;
            }
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                if (runtime.Replication is null && !MarkDiskFailed(runtime, number))
                {
                    return;
                }
                if (!resources.ContainsKey(runtime.Name) || runtime.State.Volume(number).Disk != DiskState.Failed)
                {
                    return;
                }
                Publish(runtime);
                if (policy == "call-local-io-error" && runtime.Definition.Handlers.TryGetValue("local-io-error", out string? command))
                {
                    await HandlerRunner.RunAsync("local-io-error", command, HandlerEnvironment.For(runtime.Definition, runtime.Node, number, peerNodeId: -1), logger, CancellationToken.None).ConfigureAwait(false);
                }
                await CloseVolumeAsync(runtime, number, CancellationToken.None).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
        });
    }

    /// <summary>Marks the volume Failed (and the replica's with it); false when it is already gone or going.</summary>
    private static bool MarkDiskFailed(ResourceRuntime runtime, int number)
    {
        bool Mark() => runtime.UnderExportsLock(_ =>
        {
            if (runtime.State.Volume(number).Disk is DiskState.Diskless or DiskState.Failed or DiskState.Detaching)
            {
                return false;
            }
            runtime.State.DiskFailed(number);
            return true;
        });
        if (runtime.Replication is not { } host)
        {
            return Mark();
        }
        return host.Locked(replica =>
        {
            if (!Mark())
            {
                return false;
            }
            var volume = replica.Volume(number);
            replica.AdoptLocal(number, volume.Ids, volume.Flags, DiskState.Failed);
            return true;
        });
    }

    /// <summary>Writes every superblock the engine changed. False when a write failed (the disk is then treated as failed).</summary>
    private async Task<bool> PersistAsync(ResourceRuntime runtime, CancellationToken cancellationToken)
    {
        bool ok = true;
        foreach (var (number, volume) in runtime.Attached)
        {
            try
            {
                await PersistVolumeAsync(runtime, number, volume, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                LogDiskError(logger, runtime.ExportName(number), e.Message);
                ok = false;
                // DRBD's meta-data I/O error: the disk is given up (as drbd_md_write's failure does),
                // so a node never goes on with a superblock that does not say what it does.
                OnDiskError(runtime, number, new IOException($"meta-data write failed: {e.Message}", e), metadataError: true);
            }
        }
        return ok;
    }

    private static async Task PersistVolumeAsync(ResourceRuntime runtime, int number, VolumeRuntime volume, CancellationToken cancellationToken)
    {
        var state = runtime.State.Volume(number);
        if (state.MetadataDirty && state.Metadata is not null)
        {
            await volume.Store.WriteAsync(state.Metadata, cancellationToken).ConfigureAwait(false);
            state.MarkMetadataPersisted();
        }
    }

    /// <summary>Logs the engine's transitions DRBD-style and sends the events2 `change` lines.</summary>
    private void Publish(ResourceRuntime runtime)
    {
        if (runtime.Replication is { } host)
        {
            // The replica changes the state from its own threads, always under its lock.
            host.Locked(_ => PublishLocked(runtime));
        }
        else
        {
            lock (runtime)
            {
                PublishLocked(runtime);
            }
        }
    }

    private void PublishLocked(ResourceRuntime runtime)
    {
        foreach (var transition in runtime.State.TakeTransitions())
        {
            LogTransition(logger, transition.ToString());
        }
        var status = runtime.Snapshot();
        events.Publish(Events2.Diff(runtime.LastPublished, status));
        runtime.LastPublished = status;
    }

    private ControlResponse Refused(ResourceRuntime runtime, string subject, StateChangeResult result)
    {
        Publish(runtime);
        return ControlResponse.Failure($"{subject}: {StateChangeResults.Describe(result)}", ExitCodes.StateChangeFailed);
    }

    private static IEnumerable<int> SelectVolumes(ResourceRuntime runtime, int? volume) =>
        volume is int v ? [v] : runtime.Node.Volumes.Select(x => x.Number);

    private Task<ControlResponse> WithResource(string name, Func<ResourceRuntime, Task<ControlResponse>> action, CancellationToken cancellationToken) =>
        Serialized(() => resources.TryGetValue(name, out var runtime)
            ? action(runtime)
            : Task.FromResult(ControlResponse.Failure($"{name}: resource is not up on this node (run `rbadm up {name}`)", ExitCodes.Usage)), cancellationToken);

    private async Task<ControlResponse> Serialized(Func<Task<ControlResponse>> action, CancellationToken cancellationToken)
    {
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await action().ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Resource}: up (node-id {NodeId}), NBD on {NbdAddress}")]
    private static partial void LogUp(ILogger logger, string resource, int nodeId, string nbdAddress);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Subject}: the disk was Primary when it went down: {Extents} activity-log extents marked out of sync ({Kib} KiB) for resync")]
    private static partial void LogCrashedPrimary(ILogger logger, string subject, int extents, long kib);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Resource}: not connecting to peers: {Reason}")]
    private static partial void LogReplicationNotStarted(ILogger logger, string resource, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Resource}: Forced into split brain situation! (promoted with --force; fence-peer did not outdate the peer)")]
    private static partial void LogForcedSplitBrain(ILogger logger, string resource);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Resource}: down")]
    private static partial void LogDown(ILogger logger, string resource);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Transition}")]
    private static partial void LogTransition(ILogger logger, string transition);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Subject}: attached to {Disk}: {UsableMiB} MiB usable, meta-disk {MetaDisk}, {IoMode}")]
    private static partial void LogAttached(ILogger logger, string subject, string disk, long usableMiB, string metaDisk, string ioMode);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Subject}: attach failed: {Reason}")]
    private static partial void LogAttachFailed(ILogger logger, string subject, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Subject}: local disk I/O error: {Reason} (on-io-error {Policy})")]
    private static partial void LogIoError(ILogger logger, string subject, string reason, string policy);

    [LoggerMessage(Level = LogLevel.Error, Message = "{Subject}: metadata write failed: {Reason}")]
    private static partial void LogDiskError(ILogger logger, string subject, string reason);
}

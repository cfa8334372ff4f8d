using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Agent.Replication;
using Redundancy.Block.Engine.ActivityLog;
using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Agent.Resources;

// Resources with peers: `up` starts the replica (peer links over the shared listener, the
// quick-sync bitmaps read from the metadata) and connects; every state change then happens under
// the replica's lock, so the resource's state machine (promotion rules, metadata) and the replica
// (connections, resync, generation identifiers) never see each other half-changed.
internal sealed partial class ResourceManager
{
    /// <summary>
    /// Starts replication for a resource with peers: every volume must be attached (its size and
    /// bitmaps come from the metadata). Leaves the peers StandAlone with the reason logged when the
    /// settings cannot be used.
    /// </summary>
    private async Task<string?> StartReplicationAsync(ResourceRuntime runtime, CancellationToken cancellationToken)
    {
        var definition = runtime.Definition;
        var node = runtime.Node;
        if (node.Address is null)
        {
            return $"{runtime.Name}: `on {node.Name}` has no address: peers cannot connect";
        }
        var peers = new List<(PeerLinkSettings, string)>();
        foreach (var peerNode in definition.Nodes.Where(n => n.NodeId != node.NodeId))
        {
            if (peerNode.Address is null)
            {
                return $"{runtime.Name}: `on {peerNode.Name}` has no address";
            }
            if (!PeerLinkSettings.TryCreate(definition, node, peerNode, out var settings, out string error))
            {
                return error;
            }
            peers.Add((settings, peerNode.Address));
        }
        var volumes = new List<ReplicaVolume>();
        var disks = new Dictionary<int, Engine.Io.IBlockDevice>();
        foreach (var volumeState in runtime.State.Volumes)
        {
            if (!runtime.Attached.TryGetValue(volumeState.Number, out var attached) || volumeState.Metadata is not { } md
                || runtime.DataPaths.GetValueOrDefault(volumeState.Number) is not { } dataPath)
            {
                return $"{runtime.ExportName(volumeState.Number)} is Diskless: replication needs every volume attached";
            }
            var slotOfPeer = runtime.State.Peers.ToDictionary(p => p.NodeId, p => md.FindPeerSlot(p.NodeId));
            var volumeDefinition = node.Volumes.First(v => v.Number == volumeState.Number);
            var start = await VolumeMetadataIo.LoadAsync(attached.Store, md, definition.AlUpdates(volumeDefinition), cancellationToken).ConfigureAwait(false);
            if (md.Flags.HasFlag(MetadataFlags.CrashedPrimary))
            {
                // DRBD's apply-al: writes may have been in flight in the extents the AL names; they are resynced.
                LogCrashedPrimary(logger, runtime.ExportName(volumeState.Number), ActivityLogTracker.ActiveExtentsFrom(start.Recovered).Length, start.CrashResyncBits * 4);
            }
            var outdatedPeers = md.Peers.Where(p => !p.IsFree && p.Flags.HasFlag(PeerSlotFlags.Outdated)).Select(p => p.NodeId);
            // The bitmaps cover all the disk holds; the device is the agreed size (la-size) of it.
            long usable = attached.Store.Layout.UsableSizeBytes;
            volumes.Add(new ReplicaVolume(volumeState.Number, usable, md.GenerationIds, md.Flags, volumeState.Disk, slotOfPeer, start.Bitmaps, md.UsableSizeBytes, outdatedPeers)
            {
                ResyncRate = ResyncRateSettings.From(definition, volumeDefinition),
                ActivityLog = start.ActivityLog,
            });
            disks[volumeState.Number] = dataPath;
        }
        PeerListener listener;
        try
        {
            listener = listeners.Acquire(node.Address);
        }
        catch (Exception e) when (e is IOException or FormatException)
        {
            return $"{runtime.Name}: cannot listen on {node.Address}: {e.Message}";
        }
        runtime.Replication = new ReplicaHost(peers, volumes, disks, listener, dialer, new ReplicaCallbacks(this, runtime), CryptoRandom.Instance, logger);
        runtime.Replication.Locked(replica =>
        {
            replica.SetRole(runtime.State.Role);
            replica.Connect(runtime.Replication.NowMs);
        });
        return null;
    }

    /// <summary>Stops a resource's replication (down, shutdown): connections close, the bitmaps are written out.</summary>
    private async Task StopReplicationAsync(ResourceRuntime runtime)
    {
        if (runtime.Replication is not { } host)
        {
            return;
        }
        await host.DisposeAsync().ConfigureAwait(false);
        await WriteBitmapsAsync(runtime).ConfigureAwait(false);
        runtime.Replication = null;
        await listeners.ReleaseAsync(runtime.Node.Address!).ConfigureAwait(false);
    }

    /// <summary>
    /// A state change of the resource. With peers it runs under the replica's lock with the peers'
    /// states as the replica knows them, is persisted at once, and the replica adopts the result.
    /// </summary>
    private StateChangeResult ChangeState(ResourceRuntime runtime, Func<int, StateChangeResult> change) =>
        ChangeState(runtime, (_, open) => change(open));

    /// <summary>The resource's view of its peers takes what the replica knows now (under the replica's lock).</summary>
    private static void UpdatePeers(ResourceRuntime runtime, Replica replica)
    {
        var firstVolume = runtime.State.Volumes[0].Number;
        foreach (var peer in runtime.State.Peers)
        {
            var link = replica.Links[peer.NodeId];
            runtime.State.UpdatePeer(peer.NodeId, link.State, link.PeerRole, replica.PeerDiskOf(peer.NodeId, firstVolume));
        }
    }

    /// <summary>
    /// get-timeout-type: which startup timeout wait-connect and wait-sync use on this resource
    /// (drbd_adm_get_timeout_type), from the peers' disks as the replica knows them now.
    /// </summary>
    public Task<ControlResponse> TimeoutTypeAsync(string name, CancellationToken cancellationToken) =>
        WithResource(name, runtime =>
        {
            runtime.Replication?.Locked(replica => UpdatePeers(runtime, replica));
            return Task.FromResult(new ControlResponse { Ok = true, TimeoutType = runtime.State.WaitTimeoutType });
        }, cancellationToken);

    /// <summary>As above; <paramref name="change"/> also gets the replica (null without peers), under its lock.</summary>
    private StateChangeResult ChangeState(ResourceRuntime runtime, Func<Replica?, int, StateChangeResult> change)
    {
        if (runtime.Replication is not { } host)
        {
            return runtime.UnderExportsLock(open => change(null, open));
        }
        var result = StateChangeResult.NothingToDo;
        host.Locked(replica =>
        {
            UpdatePeers(runtime, replica);
            result = runtime.UnderExportsLock(open => change(replica, open));
            if (result != StateChangeResult.Success)
            {
                return;
            }
            PersistNow(runtime);
            foreach (var volume in runtime.State.Volumes)
            {
                var current = replica.Volume(volume.Number);
                replica.AdoptLocal(volume.Number, volume.Metadata?.GenerationIds ?? current.Ids, volume.Metadata?.Flags ?? current.Flags, volume.Disk);
            }
            replica.SetRole(runtime.State.Role);
        });
        return result;
    }

    /// <summary>
    /// After `primary --force`: every connected peer whose copy is not UpToDate gets a full sync from
    /// here (DRBD's initial sync).
    /// </summary>
    private static void StartInitialSync(ResourceRuntime runtime)
    {
        runtime.Replication?.Locked(replica =>
        {
            foreach (var (peer, link) in replica.Links)
            {
                foreach (var volume in runtime.State.Volumes)
                {
                    if (link.State == ConnectionState.Connected && link.PeerDisks.GetValueOrDefault(volume.Number) is DiskState.Inconsistent or DiskState.Outdated or DiskState.Consistent
                        && replica.ReplicationOf(peer, volume.Number) == ReplicationState.Established)
                    {
                        replica.StartFullSyncAsSource(peer, volume.Number);
                    }
                }
            }
        });
    }

    /// <summary>connect / disconnect: the peer links of a resource (all peers, as drbdadm without a peer name).</summary>
    public Task<ControlResponse> ConnectAsync(string name, bool connect, bool discardMyData, CancellationToken cancellationToken) =>
        WithResource(name, runtime =>
        {
            if (runtime.Replication is not { } host)
            {
                return Task.FromResult(ControlResponse.Failure($"{name}: no peers are configured, or replication could not start (see the log)", ExitCodes.StateChangeFailed));
            }
            host.Locked(replica =>
            {
                foreach (int peer in replica.Links.Keys)
                {
                    if (connect)
                    {
                        replica.SetDiscardMyData(peer, discardMyData);
                    }
                    else
                    {
                        replica.Disconnect(peer);
                    }
                }
                if (connect)
                {
                    replica.Connect(host.NowMs);
                }
            });
            Publish(runtime);
            return Task.FromResult(ControlResponse.Success());
        }, cancellationToken);

    /// <summary>
    /// invalidate (this node is resynced from its peer) or invalidate-remote (the peer from this node):
    /// every block, or with --reset-bitmap=no (<paramref name="resetBitmap"/> false) the blocks already marked out-of-sync.
    /// </summary>
    public Task<ControlResponse> InvalidateAsync(string name, int? volume, bool remote, bool resetBitmap, CancellationToken cancellationToken) =>
        WithResource(name, runtime =>
        {
            if (runtime.Replication is not { } host)
            {
                return Task.FromResult(ControlResponse.Failure($"{name}: no peer to resync with", ExitCodes.StateChangeFailed));
            }
            var result = StateChangeResult.NoConnection;
            host.Locked(replica =>
            {
                foreach (int number in SelectVolumes(runtime, volume))
                {
                    foreach (var (peer, link) in replica.Links.Where(l => l.Value.State == ConnectionState.Connected))
                    {
                        result = remote ? replica.StartSyncAsSource(peer, number, resetBitmap) : replica.Invalidate(peer, number, resetBitmap);
                    }
                }
            });
            Publish(runtime);
            return Task.FromResult(result.IsSuccess() ? ControlResponse.Success() : Refused(runtime, name, result));
        }, cancellationToken);

    /// <summary>new-current-uuid [--clear-bitmap] on the resource's volumes.</summary>
    public Task<ControlResponse> NewCurrentUuidAsync(string name, int? volume, bool clearBitmap, CancellationToken cancellationToken) =>
        WithResource(name, runtime =>
        {
            if (runtime.Replication is not { } host)
            {
                return Task.FromResult(ControlResponse.Failure($"{name}: new-current-uuid needs a resource with peers", ExitCodes.StateChangeFailed));
            }
            var result = StateChangeResult.NothingToDo;
            host.Locked(replica =>
            {
                foreach (int number in SelectVolumes(runtime, volume))
                {
                    result = replica.NewCurrentUuid(number, clearBitmap);
                    if (!result.IsSuccess())
                    {
                        return;
                    }
                }
            });
            Publish(runtime);
            return Task.FromResult(result.IsSuccess() ? ControlResponse.Success() : Refused(runtime, name, result));
        }, cancellationToken);

    /// <summary>pause-sync / resume-sync on every resync of the resource.</summary>
    public Task<ControlResponse> PauseSyncAsync(string name, int? volume, bool pause, CancellationToken cancellationToken) =>
        WithResource(name, runtime =>
        {
            var result = StateChangeResult.NothingToDo;
            bool resyncing = false;
            runtime.Replication?.Locked(replica =>
            {
                foreach (int number in SelectVolumes(runtime, volume))
                {
                    foreach (int peer in replica.Links.Keys)
                    {
                        resyncing |= replica.Resyncing(peer, number);
                        if (replica.PauseSync(peer, number, pause) == StateChangeResult.Success)
                        {
                            result = StateChangeResult.Success;
                        }
                    }
                }
            });
            Publish(runtime);
            // NothingToDo is a refusal, with DRBD's words when a resync runs but this node's pause
            // flag is already as asked: IsSuccess() would count it as done.
            string refusal = !resyncing ? $"{name}: no resync to {(pause ? "pause" : "resume")}"
                : pause ? $"{name}: Sync-pause flag is already set" : $"{name}: Sync-pause flag is already cleared";
            return Task.FromResult(result == StateChangeResult.Success ? ControlResponse.Success()
                : ControlResponse.Failure(refusal, ExitCodes.StateChangeFailed));
        }, cancellationToken);

    /// <summary>The replica moved a volume on: the resource adopts it and the superblock is written before the replica goes on.</summary>
    private void PersistReplicaVolume(ResourceRuntime runtime, ReplicaVolume volume, IReadOnlyCollection<int> connectedPeers)
    {
        runtime.State.AdoptReplicaState(volume.Number, volume.Ids, volume.Flags, volume.Disk, [.. volume.FencedPeerDisks.Keys], volume.AgreedSizeBytes, [.. connectedPeers]);
        PersistNow(runtime);
    }

    /// <summary>
    /// A promotion met SS_PRIMARY_NOP: fence-peer runs for every peer with fencing that is neither
    /// connected nor known Outdated, and the promotion waits for the handlers (the exit codes are
    /// applied by the replica). The manager's gate stays held meanwhile, as drbdadm primary waits.
    /// </summary>
    private async Task FencePeersAsync(ResourceRuntime runtime)
    {
        if (runtime.Replication is not { } host)
        {
            return;
        }
        var tokens = host.Locked(replica => runtime.State.UnfencedPeers().Select(p => replica.FencePeer(p.NodeId)).Where(t => t != 0).ToList());
        foreach (long token in tokens)
        {
            await host.HandlerSettledAsync(token).ConfigureAwait(false);
        }
    }

    /// <summary>outdate: the local disk of each volume becomes Outdated (DRBD's rules in the state machine).</summary>
    public Task<ControlResponse> OutdateAsync(string name, int? volume, CancellationToken cancellationToken) =>
        WithResource(name, async runtime =>
        {
            foreach (int number in SelectVolumes(runtime, volume))
            {
                var result = ChangeState(runtime, _ => runtime.State.Outdate(number));
                await PersistAsync(runtime, cancellationToken).ConfigureAwait(false);
                if (!result.IsSuccess())
                {
                    return Refused(runtime, runtime.ExportName(number), result);
                }
            }
            Publish(runtime);
            return ControlResponse.Success();
        }, cancellationToken);

    /// <summary>resume-io: application I/O frozen by fencing goes on (a pending new current UUID is made first).</summary>
    public Task<ControlResponse> ResumeIoAsync(string name, CancellationToken cancellationToken) =>
        WithResource(name, runtime =>
        {
            runtime.Replication?.Locked(replica => replica.ResumeIo());
            Publish(runtime);
            return Task.FromResult(ControlResponse.Success());
        }, cancellationToken);

    /// <summary>Writes the changed superblocks synchronously (under the replica's lock, so nothing acts on unpersisted state).</summary>
    private void PersistNow(ResourceRuntime runtime)
    {
        if (!PersistAsync(runtime, CancellationToken.None).GetAwaiter().GetResult())
        {
            LogDiskError(logger, runtime.Name, "the metadata could not be written");
        }
    }

    /// <summary>
    /// call-pri-lost-after-sb: demote if no NBD client holds the device (already under the replica
    /// lock, called from the handshake), persisting the metadata as a `secondary` would.
    /// </summary>
    private bool TryDemoteAfterSplitBrain(ResourceRuntime runtime)
    {
        var result = runtime.UnderExportsLock(open => runtime.State.Demote(force: false, deviceOpen: open > 0));
        if (result == StateChangeResult.Success)
        {
            PersistNow(runtime);
        }
        return result is StateChangeResult.Success or StateChangeResult.NothingToDo;
    }

    /// <summary>A configured handler, run with DRBD's environment for the peer and volume (-1: the resource).</summary>
    private Task<int>? StartHandler(ResourceRuntime runtime, string handler, int peerNodeId, int volume, IReadOnlyDictionary<string, string> state)
    {
        if (!runtime.Definition.Handlers.TryGetValue(handler, out string? command))
        {
            return null;
        }
        var environment = HandlerEnvironment.For(runtime.Definition, runtime.Node, volume, peerNodeId);
        foreach (var (name, value) in state)
        {
            environment[name] = value;
        }
        return HandlerRunner.RunAsync(handler, command, environment, logger, CancellationToken.None);
    }

    /// <summary>The resource side of a <see cref="ReplicaHost"/>: it calls back into the manager for one resource.</summary>
    private sealed class ReplicaCallbacks(ResourceManager manager, ResourceRuntime runtime) : IReplicaResource
    {
        public void PersistVolume(ReplicaVolume volume, IReadOnlyCollection<int> connectedPeers) => manager.PersistReplicaVolume(runtime, volume, connectedPeers);

        public Task<int>? StartHandler(string handler, int peerNodeId, int volume, IReadOnlyDictionary<string, string> state) =>
            manager.StartHandler(runtime, handler, peerNodeId, volume, state);

        public bool TryBecomeSecondary() => manager.TryDemoteAfterSplitBrain(runtime);

        public void Tick() => manager.OnReplicaTick(runtime);

        /// <summary>An AL transaction that cannot be written is a meta-data I/O error: the disk's on-io-error policy applies.</summary>
        public async Task WriteMetadataAsync(int volume, IReadOnlyList<BitmapPageImage> bitmapPages, ActivityLogTransaction? transaction)
        {
            try
            {
                await ResourceManager.WriteMetadataAsync(runtime, volume, bitmapPages, transaction).ConfigureAwait(false);
            }
            catch (IOException e) when (transaction is not null && runtime.Attached.ContainsKey(volume))
            {
                manager.OnDiskError(runtime, volume, e);
                throw;
            }
        }

        public Task RefreshCapacityAsync(int volume) => manager.RefreshCapacityAsync(runtime, volume);
    }

    /// <summary>Every replica tick: publish what changed, write dirty bitmap pages out.</summary>
    private void OnReplicaTick(ResourceRuntime runtime)
    {
        Publish(runtime);
        if (Interlocked.CompareExchange(ref runtime.BitmapWriterBusy, 1, 0) == 0)
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    await WriteBitmapsAsync(runtime).ConfigureAwait(false);
                }
                finally
                {
                    Volatile.Write(ref runtime.BitmapWriterBusy, 0);
                }
            });
        }
    }

    /// <summary>Writes the dirty pages of every quick-sync bitmap: images taken under the lock, written outside it.</summary>
    private async Task WriteBitmapsAsync(ResourceRuntime runtime)
    {
        var host = runtime.Replication;
        if (host is null)
        {
            return;
        }
        var pending = new List<(int Volume, IReadOnlyList<BitmapPageImage> Pages)>();
        host.Locked(replica =>
        {
            foreach (int number in runtime.Attached.Keys)
            {
                var bitmaps = replica.Volume(number).Bitmaps;
                var pages = bitmaps.Images(bitmaps.TakeAllDirtyPages());
                if (pages.Count > 0)
                {
                    pending.Add((number, pages));
                }
            }
        });
        try
        {
            foreach (var (volume, pages) in pending)
            {
                // A cleared bit vouches for data written since (a resync block, a peer's write):
                // that data is made durable first, or a crash could keep the clear bit and lose the
                // data it stands for (DRBD writes bitmap pages with a preflush for the same reason).
                if (runtime.Attached.TryGetValue(volume, out var attached))
                {
                    await attached.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                }
                await WriteMetadataAsync(runtime, volume, pages, null).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            LogDiskError(logger, runtime.Name, $"bitmap write-out: {e.Message}");
        }
    }

    /// <summary>Bitmap pages (then flush), then an AL transaction (FUA): the order DRBD needs before an extent leaves the AL.</summary>
    private static async Task WriteMetadataAsync(ResourceRuntime runtime, int volume, IReadOnlyList<BitmapPageImage> pages, ActivityLogTransaction? transaction)
    {
        if (!runtime.Attached.TryGetValue(volume, out var attached))
        {
            throw new IOException($"{runtime.ExportName(volume)}: no disk attached for its metadata");
        }
        await VolumeMetadataIo.WriteAsync(attached.Store, pages, transaction).ConfigureAwait(false);
    }
}

using System.Buffers;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// One simulated node running a <see cref="Replica"/>: its disks are <see cref="SimulatedDisk"/>s
/// with seeded latency, its transport is the simulated network. Every completion comes back as a
/// scheduled event, never from inside the replica's call. With <see cref="DetachOnIoError"/> a
/// failed disk operation detaches the disk as the agent's `on-io-error detach` does (Failed, then
/// Diskless); <see cref="AttachDisk(int)"/> brings it back with the identifiers last persisted to it.
/// </summary>
public sealed class SimReplicaNode : IReplicaIo
{
    private readonly EventScheduler scheduler;
    private readonly SimulatedNetwork network;
    private readonly SimRandom random;
    private readonly Dictionary<int, SimConnection> connections = [];
    private readonly Dictionary<int, string> peerNames;
    private readonly Dictionary<long, Action<bool>> clientCallbacks = [];
    private readonly Dictionary<long, Action<bool, byte[]>> readCallbacks = [];
    private readonly Dictionary<long, (int Volume, Action<bool, ulong> Done)> trackedWrites = [];
    private readonly Dictionary<int, bool> attached;
    private readonly Dictionary<int, (GenerationIds Ids, MetadataFlags Flags)> metadata;
    private long nextClientToken = 1;

    public SimReplicaNode(string name, int nodeId, EventScheduler scheduler, SimulatedNetwork network, SimRandom random,
        IEnumerable<PeerLinkSettings> peers, IEnumerable<ReplicaVolume> volumes, long diskSizeBytes,
        IReadOnlyDictionary<int, SimulatedDisk>? disks = null)
    {
        Name = name;
        NodeId = nodeId;
        this.scheduler = scheduler;
        this.network = network;
        this.random = random;
        var peerList = peers.ToList();
        peerNames = peerList.ToDictionary(p => p.PeerNodeId, p => p.PeerNodeName);
        var volumeList = volumes.ToList();
        // A restarted node keeps its disks (as they were left by the crash).
        Disks = volumeList.ToDictionary(v => v.Number, v => disks?.GetValueOrDefault(v.Number) ?? new SimulatedDisk($"{name}/{v.Number}", diskSizeBytes));
        attached = volumeList.ToDictionary(v => v.Number, v => v.HasLocalData);
        metadata = volumeList.ToDictionary(v => v.Number, v => (v.Ids, v.Flags));
        Replica = new Replica(peerList, volumeList, this, random);
        network.Listen(name, accepted =>
        {
            int peer = peerNames.First(p => p.Value == accepted.Remote).Key;
            Attach(peer, accepted);
        });
    }

    public string Name { get; }

    public int NodeId { get; }

    public Replica Replica { get; }

    public Dictionary<int, SimulatedDisk> Disks { get; }

    public List<string> Log { get; } = [];

    /// <summary>Called with every line added to <see cref="Log"/> (a replay's timeline interleaves them).</summary>
    public Action<string>? Logged { get; set; }

    public bool Crashed { get; private set; }

    public long DiskLatencyMaxMs { get; set; } = DefaultDiskLatencyMaxMs;

    /// <summary>A simulated disk's latency bound unless a test slows it down.</summary>
    public const long DefaultDiskLatencyMaxMs = 3;

    /// <summary>The node's own clock from simulated time (drift, jumps); the replica sees only this.</summary>
    public Func<long, long> Clock { get; set; } = t => t;

    /// <summary>Now on this node's clock.</summary>
    public long NowMs => Clock(scheduler.NowMs);

    /// <summary>Called after each <see cref="IReplicaIo.PersistVolume"/> with the volume.</summary>
    public Action<int>? Persisted { get; set; }

    /// <summary>call-pri-lost-after-sb: what the resource answers (default: demoted).</summary>
    public Func<bool> BecomeSecondary { get; set; } = () => true;

    /// <summary>`on-io-error detach`: a failed local operation takes the disk away.</summary>
    public bool DetachOnIoError { get; set; }

    /// <summary>Issues a client read; <paramref name="done"/> gets the outcome and the bytes.</summary>
    public void Read(int volume, long offsetBytes, int lengthBytes, Action<bool, byte[]> done)
    {
        long token = nextClientToken++;
        readCallbacks[token] = done;
        Replica.ClientRead(token, volume, offsetBytes, lengthBytes);
    }

    /// <summary>`attach`: the disk is back, with the identifiers and flags last persisted to it.</summary>
    public void AttachDisk(int volume)
    {
        attached[volume] = true;
        var (ids, flags) = metadata[volume];
        Replica.AttachLocal(volume, ids, flags, ReplicaVolume.DiskFromFlags(flags));
    }

    /// <summary>`attach` with identifiers, flags and disk state the caller read from the metadata.</summary>
    public void AttachDisk(int volume, GenerationIds ids, MetadataFlags flags, DiskState disk)
    {
        attached[volume] = true;
        metadata[volume] = (ids, flags);
        Replica.AttachLocal(volume, ids, flags, disk);
    }

    /// <summary>The generation identifiers as last persisted to the disk (what an attach reads).</summary>
    public GenerationIds PersistedIds(int volume) => metadata[volume].Ids;

    /// <summary>A hung disk: writes, zeroing and flushes submitted from now on never complete.</summary>
    public bool DiskStalled { get; set; }

    /// <summary>Damages frames on their way out (a broken NIC): given the type and the frame, returns what travels.</summary>
    public Func<MessageType, byte[], byte[]>? Tamper { get; set; }

    /// <summary>Frames this node sent to its peers, by message type (payload bytes and count).</summary>
    public Dictionary<MessageType, (long Frames, long PayloadBytes)> Sent { get; } = [];

    /// <summary>Issues a client write; <paramref name="done"/> runs with the outcome when the replica completes it.</summary>
    public void Write(int volume, long offsetBytes, byte[] data, Action<bool> done, bool fua = false)
    {
        long token = nextClientToken++;
        clientCallbacks[token] = done;
        Replica.ClientWrite(token, volume, offsetBytes, data, fua);
    }

    /// <summary>Issues a client TRIM (<paramref name="trim"/>) or WRITE_ZEROES; <paramref name="done"/> runs with the outcome.</summary>
    public void Zero(int volume, long offsetBytes, long lengthBytes, bool trim, Action<bool> done)
    {
        long token = nextClientToken++;
        clientCallbacks[token] = done;
        Replica.ClientZero(token, volume, offsetBytes, lengthBytes, trim);
    }

    /// <summary>
    /// Issues a client write; <paramref name="done"/> gets the outcome and the volume's current
    /// generation UUID when the completion reaches the application (the generation the ack belongs to).
    /// </summary>
    public void WriteTracked(int volume, long offsetBytes, byte[] data, Action<bool, ulong> done)
    {
        long token = nextClientToken++;
        trackedWrites[token] = (volume, done);
        Replica.ClientWrite(token, volume, offsetBytes, data, fua: false);
    }

    public void Flush(Action<bool> done)
    {
        long token = nextClientToken++;
        clientCallbacks[token] = done;
        Replica.ClientFlush(token);
    }

    /// <summary>Power loss: the node stops, its unflushed writes are lost, its connections reset.</summary>
    public void Crash(bool tear)
    {
        Crashed = true;
        foreach (var disk in Disks.Values)
        {
            disk.Crash(random, tear);
        }
        foreach (var connection in connections.Values.ToList())
        {
            connection.Abort();
        }
        connections.Clear();
        network.StopListening(Name);
    }

    public void Send(int peerNodeId, ReadOnlySpan<byte> frame)
    {
        if (!Crashed && connections.TryGetValue(peerNodeId, out var connection))
        {
            Engine.Invariant.Assert(FrameHeader.TryRead(frame, out var header, out string? error), $"a valid frame header ({error})");
            var (frames, bytes) = Sent.GetValueOrDefault(header.Type);
            Sent[header.Type] = (frames + 1, bytes + header.PayloadLengthBytes);
            byte[] copy = frame.ToArray();
            connection.Send(Tamper?.Invoke(header.Type, copy) ?? copy);
        }
    }

    public void Send(int peerNodeId, ReadOnlySpan<byte> head, ReadOnlySpan<byte> payload) => Send(peerNodeId, [.. head, .. payload]);

    public void CloseTransport(int peerNodeId, string reason)
    {
        if (connections.Remove(peerNodeId, out var connection))
        {
            connection.Close();
        }
    }

    public void Dial(int peerNodeId)
    {
        if (Crashed)
        {
            return;
        }
        network.Dial(Name, peerNames[peerNodeId], dialled => Attach(peerNodeId, dialled), () => { });
    }

    public void WriteLocal(int volume, long offsetBytes, ReadOnlyMemory<byte> data, bool fua, long token)
    {
        byte[] copy = data.ToArray();
        Later(volume, () => Disks[volume].WriteAsync(offsetBytes, copy, fua).IsCompletedSuccessfully, token);
    }

    public void ReadLocal(int volume, long offsetBytes, int lengthBytes, long token)
    {
        scheduler.After(random.NextInt64(0, DiskLatencyMaxMs + 1), () =>
        {
            if (!Crashed)
            {
                var buffer = new byte[lengthBytes];
                bool ok = attached[volume] && Disks[volume].ReadAsync(offsetBytes, buffer).IsCompletedSuccessfully;
                Replica.LocalReadDone(token, ok, buffer);
                DetachIfFailed(volume, ok);
            }
        });
    }

    public void ZeroLocal(int volume, long offsetBytes, long lengthBytes, bool trim, long token) =>
        Later(volume, () => Disks[volume].WriteZeroesAsync(offsetBytes, lengthBytes, !trim).IsCompletedSuccessfully, token);

    /// <summary>
    /// Flushes every volume's disk; fails when one is not attached, as the agent's data path fails
    /// every request while its disk is detached: writes that went to a disk detached since (on an
    /// I/O error) were not made durable by this flush.
    /// </summary>
    public void FlushLocal(long token)
    {
        if (HoldFlushes)
        {
            heldFlushes.Add(token);
            return;
        }
        Later(null, () => Disks.All(d => attached[d.Key] && d.Value.FlushAsync().IsCompletedSuccessfully), token);
    }

    /// <summary>A slow cache flush: flushes asked for from now on wait until <see cref="ReleaseFlushes"/> (writes go on).</summary>
    public bool HoldFlushes { get; set; }

    private readonly List<long> heldFlushes = [];

    /// <summary>Lets the flushes <see cref="HoldFlushes"/> held back run, and no longer holds new ones.</summary>
    public void ReleaseFlushes()
    {
        HoldFlushes = false;
        foreach (long token in heldFlushes)
        {
            FlushLocal(token);
        }
        heldFlushes.Clear();
    }

    /// <summary>AL transactions written, in order (the simulated metadata always takes them).</summary>
    public List<ulong> ActivityLogTransactions { get; } = [];

    public void WriteActivityLog(int volume, ActivityLogTransaction transaction, IReadOnlyList<uint> evictedExtents, long token)
    {
        ActivityLogTransactions.Add(transaction.TransactionNumber);
        Later(null, () => true, token);
    }

    public void CompleteClient(long clientToken, bool succeeded)
    {
        if (trackedWrites.Remove(clientToken, out var tracked))
        {
            // The generation the application's acknowledgement belongs to: the one current when it
            // arrives (a Primary that lost its peer completes the pending writes, then starts a new one).
            scheduler.After(0, () => tracked.Done(succeeded, Replica.Volume(tracked.Volume).Ids.Current));
            return;
        }
        var callback = clientCallbacks[clientToken];
        clientCallbacks.Remove(clientToken);
        scheduler.After(0, () => callback(succeeded));
    }

    public void CompleteClientRead(long clientToken, bool succeeded, ReadOnlyMemory<byte> data)
    {
        var callback = readCallbacks[clientToken];
        readCallbacks.Remove(clientToken);
        byte[] copy = data.ToArray();
        scheduler.After(0, () => callback(succeeded, copy));
    }

    public void PersistVolume(int volume)
    {
        var state = Replica.Volume(volume);
        if (attached[volume] && state.Disk is not (DiskState.Failed or DiskState.Diskless or DiskState.Detaching))
        {
            metadata[volume] = (state.Ids, state.Flags);
        }
        AddLog($"{Name}/{volume}: generations now current {state.Ids.Current:X16}, disk {state.Disk}, size {state.AgreedSizeBytes}");
        if (Logged is not null)
        {
            Logged($"  bitmap {string.Join(",", state.Ids.Bitmap.Select(u => u.ToString("X16", System.Globalization.CultureInfo.InvariantCulture)))}"
                + $" history {string.Join(",", state.Ids.History.Where(u => u != 0).Select(u => u.ToString("X16", System.Globalization.CultureInfo.InvariantCulture)))}");
        }
        Persisted?.Invoke(volume);
    }

    /// <summary>Handlers the replica asked for, as "name peer/volume".</summary>
    public List<string> HandlerCalls { get; } = [];

    /// <summary>
    /// Handlers this node has "configured", with the exit code each returns after
    /// <see cref="HandlerDurationMs"/> (null: it never returns). The others are not configured.
    /// </summary>
    public Dictionary<string, int?> ScriptedHandlers { get; } = [];

    public long HandlerDurationMs { get; set; } = 50;

    /// <summary>
    /// What each volume's disk holds once the node re-reads it (a peer's resize): the test sets it
    /// to simulate a grown disk; absent, the disk is as it was.
    /// </summary>
    public Dictionary<int, long> GrownUsableBytes { get; } = [];

    public void RefreshCapacity(int volume) => scheduler.After(random.NextInt64(0, DiskLatencyMaxMs + 1), () =>
    {
        if (Crashed)
        {
            return;
        }
        GrowIfAsked(volume);
        Replica.CapacityRefreshed(volume);
    });

    /// <summary>The node's own `resize`: its disk grows to <see cref="GrownUsableBytes"/>, then the replica asks the peers.</summary>
    public Engine.States.StateChangeResult Resize(int volume, bool assumeClean = false)
    {
        GrowIfAsked(volume);
        return Replica.Resize(volume, assumeClean);
    }

    private void GrowIfAsked(int volume)
    {
        if (GrownUsableBytes.TryGetValue(volume, out long usable) && usable > Replica.Volume(volume).UsableSizeBytes && Replica.CanSetCapacity(volume))
        {
            Engine.Invariant.Assert(usable <= Disks[volume].SizeBytes, "the simulated disk holds the grown size");
            Replica.SetCapacity(volume, usable);
        }
    }

    /// <summary>Nothing holds a simulated device open: demotion always succeeds.</summary>
    public bool TryBecomeSecondary() => BecomeSecondary();

    /// <summary>A promotion request has news (<see cref="IReplicaIo.PromotionAnswered"/>): told after the replica's call returned.</summary>
    public Action<long>? PromotionAnswered { get; set; }

    void IReplicaIo.PromotionAnswered(long token) => scheduler.After(0, () =>
    {
        if (!Crashed)
        {
            PromotionAnswered?.Invoke(token);
        }
    });

    public bool RunHandler(string handler, int peerNodeId, int volume, long token)
    {
        HandlerCalls.Add($"{handler} {peerNodeId}/{volume}");
        if (!ScriptedHandlers.TryGetValue(handler, out int? exitCode))
        {
            return false;
        }
        if (token != 0 && exitCode is int code)
        {
            scheduler.After(HandlerDurationMs, () =>
            {
                if (!Crashed)
                {
                    Replica.HandlerDone(token, code);
                }
            });
        }
        return true;
    }

    void IReplicaIo.Log(string line) => AddLog(line);

    private void AddLog(string line)
    {
        Log.Add(line);
        Logged?.Invoke(line);
    }

    private void Later(int? volume, Func<bool> operation, long token)
    {
        scheduler.After(random.NextInt64(0, DiskLatencyMaxMs + 1), () =>
        {
            if (!Crashed && !DiskStalled)
            {
                bool ok = (volume is not int v || attached[v]) && operation();
                Replica.LocalDone(token, ok);
                if (volume is int failed)
                {
                    DetachIfFailed(failed, ok);
                }
            }
        });
    }

    /// <summary>An I/O error the host met outside the replica's I/O (a superblock write): handled as any other.</summary>
    public void HostIoError(int volume) => DetachIfFailed(volume, ok: false);

    /// <summary>`on-io-error detach`: Failed at once (no more I/O reaches the disk), Diskless when the host closed it.</summary>
    private void DetachIfFailed(int volume, bool ok)
    {
        if (ok || !DetachOnIoError || !attached[volume])
        {
            return;
        }
        attached[volume] = false;
        scheduler.After(0, () =>
        {
            var state = Replica.Volume(volume);
            Replica.AdoptLocal(volume, state.Ids, state.Flags, DiskState.Failed);
            scheduler.After(2, () => Replica.AdoptLocal(volume, Replica.Volume(volume).Ids, Replica.Volume(volume).Flags, DiskState.Diskless));
        });
    }

    private void Attach(int peer, SimConnection connection)
    {
        if (Crashed || connections.ContainsKey(peer))
        {
            connection.Close();
            return;
        }
        connections[peer] = connection;
        connection.OnReceive = bytes =>
        {
            if (Crashed || !connections.TryGetValue(peer, out var current) || current != connection)
            {
                return;
            }
            var buffer = new ReadOnlySequence<byte>(bytes);
            Engine.Invariant.Assert(FrameReader.TryReadFrame(ref buffer, 64 << 20, out var header, out var payload, out string? error), $"whole frames only ({error})");
            Replica.Receive(peer, header, payload, NowMs);
        };
        connection.OnClosed = () =>
        {
            if (!Crashed && connections.TryGetValue(peer, out var current) && current == connection)
            {
                connections.Remove(peer);
                Replica.TransportClosed(peer, "connection closed", NowMs);
            }
        };
        Replica.TransportConnected(peer, NowMs);
    }
}

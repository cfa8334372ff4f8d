using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;

namespace Redundancy.Block.Agent.Replication;

/// <summary>
/// What a <see cref="ReplicaHost"/> needs from the resource it replicates (the agent's resource
/// manager): persisting volume state, handlers, demotion after a lost split brain, and a tick.
/// </summary>
public interface IReplicaResource
{
    /// <summary>
    /// A volume's identifiers, flags, disk state or connected peers changed: write the superblock now
    /// (called under the replica lock). <paramref name="connectedPeers"/>: the peers connected now.
    /// </summary>
    void PersistVolume(ReplicaVolume volume, IReadOnlyCollection<int> connectedPeers);

    /// <summary>
    /// Starts the handler if the resource configures it (DRBD's environment, plus <paramref name="state"/>:
    /// the replica's DRBD_CSTATE and UP_TO_DATE_NODES); null when it does not.
    /// </summary>
    Task<int>? StartHandler(string handler, int peerNodeId, int volume, IReadOnlyDictionary<string, string> state);

    /// <summary>Demotes if nothing holds the device open (called under the replica lock). True when Secondary now.</summary>
    bool TryBecomeSecondary();

    /// <summary>
    /// Writes bitmap page images, then (if given) an activity-log transaction, durably, to the
    /// volume's metadata. Fails with <see cref="IOException"/> when the metadata cannot be written.
    /// </summary>
    Task WriteMetadataAsync(int volume, IReadOnlyList<BitmapPageImage> bitmapPages, ActivityLogTransaction? transaction);

    /// <summary>
    /// A peer runs `resize`: re-read the volume's disk and, if it grew, move its metadata and grow the
    /// replica's capacity (<see cref="Replica.SetCapacity"/>, under the replica lock). Called outside the lock.
    /// </summary>
    Task RefreshCapacityAsync(int volume);

    /// <summary>After every replica tick, outside the lock: publish status changes, write bitmaps out.</summary>
    void Tick();
}

using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Resources;

/// <summary>
/// One local volume of a resource (DRBD's "device"): its disk state and the metadata the engine
/// wants on disk. When <see cref="MetadataDirty"/> is set the host must write <see cref="Metadata"/>
/// before it acknowledges the state change to anyone.
/// </summary>
public sealed class VolumeState(int number)
{
    public int Number { get; } = number;

    public DiskState Disk { get; internal set; } = DiskState.Diskless;

    /// <summary>The superblock as it should be on disk; null while Diskless.</summary>
    public Superblock? Metadata { get; internal set; }

    /// <summary>
    /// DRBD's USE_DEGR_WFC_T: the metadata this disk was attached with said Primary and no peer
    /// connected (a degraded Primary went down); cleared once a peer connects.
    /// </summary>
    public bool UseDegradedWfcTimeout { get; internal set; }

    /// <summary>True when <see cref="Metadata"/> differs from what was last persisted.</summary>
    public bool MetadataDirty { get; private set; }

    /// <summary>The host calls this once <see cref="Metadata"/> is durable.</summary>
    public void MarkMetadataPersisted() => MetadataDirty = false;

    internal void UpdateMetadata(Func<Superblock, Superblock> change)
    {
        Invariant.Assert(Metadata is not null, $"volume {Number}: metadata changed while Diskless");
        var updated = change(Metadata);
        if (!updated.Equals(Metadata))
        {
            Metadata = updated;
            MetadataDirty = true;
        }
    }
}

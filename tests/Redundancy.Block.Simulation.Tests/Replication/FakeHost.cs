using System.Collections.Immutable;
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>A node's resource as a peer link sees it, set up by the test.</summary>
public sealed class FakeHost : IPeerLinkHost
{
    public Role Role { get; set; } = Role.Secondary;

    public List<LocalVolumeView> Volumes { get; } = [];

    public IReadOnlyList<LocalVolumeView> VolumesFor(int peerNodeId) => Volumes;

    /// <summary>Freshly created metadata: just-created UUID, Inconsistent.</summary>
    public static FakeHost Fresh(long sizeBytes = 64 << 20) => With(new UuidSet(GenerationIds.JustCreated, 0, ImmutableArray<ulong>.Empty), MetadataFlags.None, DiskState.Inconsistent, sizeBytes);

    /// <summary>A disk that holds generation <paramref name="current"/>, UpToDate.</summary>
    public static FakeHost UpToDate(ulong current, ulong bitmap = 0, long sizeBytes = 64 << 20, params ulong[] history) =>
        With(new UuidSet(current, bitmap, [.. history]), MetadataFlags.Consistent | MetadataFlags.WasUpToDate, DiskState.UpToDate, sizeBytes);

    private static FakeHost With(UuidSet uuids, MetadataFlags flags, DiskState disk, long sizeBytes)
    {
        var host = new FakeHost();
        host.Volumes.Add(new LocalVolumeView(0, uuids, flags, disk, 0, sizeBytes, DiscardMyData: false));
        return host;
    }
}

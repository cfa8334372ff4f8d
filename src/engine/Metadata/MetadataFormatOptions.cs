// What create-md needs to know to write fresh metadata. Random values and times come from the
// caller: the engine has neither a clock nor a random source of its own.
using System.Collections.Immutable;

namespace Redundancy.Block.Engine.Metadata;

public sealed record MetadataFormatOptions
{
    /// <summary>This node's node-id.</summary>
    public required int NodeId { get; init; }
    /// <summary>node-ids of the peers, one slot each in order; remaining slots stay free.</summary>
    public required ImmutableArray<int> PeerNodeIds { get; init; }
    public int AlExtents { get; init; } = Superblock.DefaultAlExtents;
    /// <summary>Random 64-bit device UUID chosen by the caller.</summary>
    public ulong DeviceUuid { get; init; }
    /// <summary>Caller's timestamp (e.g. Unix seconds), stored and dumped as is.</summary>
    public ulong CreationTime { get; init; }
}

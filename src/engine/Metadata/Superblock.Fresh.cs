// The superblock create-md writes: Inconsistent (not Consistent), current UUID = UUID_JUST_CREATED,
// no bitmap or history UUIDs, AL clean (the ring is zeroed).

namespace Redundancy.Block.Engine.Metadata;

public sealed partial record Superblock
{
    /// <summary>Fresh metadata for <paramref name="layout"/>; fails with a message when the options do not fit.</summary>
    public static bool TryCreateFresh(MetadataLayout layout, MetadataFormatOptions options, out Superblock superblock, out string error)
    {
        superblock = null!;
        if (options.PeerNodeIds.IsDefault || options.PeerNodeIds.Length > layout.PeerSlots)
        {
            error = $"{(options.PeerNodeIds.IsDefault ? 0 : options.PeerNodeIds.Length)} peer(s) do not fit in {layout.PeerSlots} peer slot(s)";
            return false;
        }

        var peers = new PeerSlot[layout.PeerSlots];
        for (int i = 0; i < peers.Length; i++)
        {
            peers[i] = i < options.PeerNodeIds.Length
                ? new PeerSlot(options.PeerNodeIds[i], 0, PeerSlotFlags.None, i)
                : PeerSlot.Unused;
        }

        var candidate = new Superblock
        {
            NodeId = options.NodeId,
            UsableSizeBytes = layout.UsableSizeBytes,
            AlExtents = options.AlExtents,
            AlStripes = layout.AlStripes,
            AlStripeSize4k = layout.AlStripeSize4k,
            Flags = MetadataFlags.AlClean,
            CurrentUuid = GenerationIds.JustCreated,
            DeviceUuid = options.DeviceUuid,
            CreationTime = options.CreationTime,
            Peers = [.. peers],
        };
        string? invalid = candidate.ValidationError();
        error = invalid ?? "";
        if (invalid == null)
        {
            superblock = candidate;
        }

        return invalid == null;
    }
}

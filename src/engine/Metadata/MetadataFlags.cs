// Flags kept in the superblock, bit-compatible with DRBD 9's MDF_* (device) and MDF_PEER_* (peer slot)
// so dumps read the same to people who know drbdmeta.

namespace Redundancy.Block.Engine.Metadata;

/// <summary>Device flags (DRBD's <c>MDF_*</c>, same bit values).</summary>
[Flags]
public enum MetadataFlags : uint
{
    None = 0,
    /// <summary>MDF_CONSISTENT: the data is consistent (not in the middle of a resync as target).</summary>
    Consistent = 1 << 0,
    /// <summary>MDF_PRIMARY_IND: the node was Primary when the metadata was last written.</summary>
    PrimaryInd = 1 << 1,
    /// <summary>MDF_FULL_SYNC: a full sync is required (set all bits on next attach).</summary>
    FullSync = 1 << 3,
    /// <summary>MDF_WAS_UP_TO_DATE: the disk was UpToDate; Consistent without it means Outdated.</summary>
    WasUpToDate = 1 << 4,
    /// <summary>MDF_PEER_OUT_DATED: the peer was marked Outdated (fencing).</summary>
    PeerOutdated = 1 << 5,
    /// <summary>MDF_CRASHED_PRIMARY: the node was Primary and did not demote cleanly.</summary>
    CrashedPrimary = 1 << 6,
    /// <summary>MDF_AL_CLEAN: the activity log holds nothing that must be applied to the bitmap.</summary>
    AlClean = 1 << 7,
    /// <summary>MDF_AL_DISABLED: al-updates no; after a crash of the Primary a full sync is needed.</summary>
    AlDisabled = 1 << 8,
    /// <summary>MDF_PRIMARY_LOST_QUORUM.</summary>
    PrimaryLostQuorum = 1 << 9,
    /// <summary>MDF_HAVE_QUORUM.</summary>
    HaveQuorum = 1 << 10,
}

/// <summary>Per peer-slot flags (DRBD's <c>MDF_PEER_*</c>, same bit values).</summary>
[Flags]
public enum PeerSlotFlags : uint
{
    None = 0,
    /// <summary>MDF_PEER_CONNECTED: the peer was connected when the metadata was written.</summary>
    Connected = 1 << 0,
    /// <summary>MDF_PEER_OUTDATED: the peer's disk is known Outdated.</summary>
    Outdated = 1 << 1,
    /// <summary>MDF_PEER_FENCING: the peer is configured with fencing.</summary>
    Fencing = 1 << 2,
    /// <summary>MDF_PEER_FULL_SYNC: a full sync towards this peer is needed.</summary>
    FullSync = 1 << 3,
    /// <summary>MDF_PEER_DEVICE_SEEN: the peer's device was seen at least once.</summary>
    DeviceSeen = 1 << 4,
}

internal static class MetadataFlagBits
{
    public const uint KnownDevice = 0x7FB; // every MetadataFlags bit (bit 2 is DRBD 8.4's CONNECTED_IND, unused)
    public const uint KnownPeer = 0x1F;

    /// <summary>Names of the set flags, space separated ("Consistent WasUpToDate"), or "none".</summary>
    public static string Names<T>(T flags) where T : struct, Enum
    {
        ulong value = Convert.ToUInt64(flags, System.Globalization.CultureInfo.InvariantCulture);
        if (value == 0)
        {
            return "none";
        }

        var names = new List<string>();
        foreach (T flag in Enum.GetValues<T>())
        {
            ulong bit = Convert.ToUInt64(flag, System.Globalization.CultureInfo.InvariantCulture);
            if (bit != 0 && (value & bit) == bit)
            {
                names.Add(flag.ToString());
            }
        }

        return string.Join(' ', names);
    }
}

// The metadata superblock: our own versioned, CRC32C-checked 4 KiB block holding what DRBD 9's
// meta_data_on_disk_9 holds (sizes, generation UUIDs, flags, node-id, peer slots, AL geometry).
// Immutable; Superblock.Encoding.cs turns it into bytes and validates untrusted bytes back.
using System.Collections.Immutable;

namespace Redundancy.Block.Engine.Metadata;

public sealed partial record Superblock
{
    public const int SizeBytes = MetadataLayout.BlockSizeBytes;
    /// <summary>"RBMD".</summary>
    public const uint Magic = 0x52424D44;
    public const int CurrentFormatVersion = 1;
    public const int MaxNodeId = 31;
    /// <summary>History UUIDs kept, as DRBD 9's HISTORY_UUIDS.</summary>
    public const int MaxHistoryUuids = 32;
    public const int DefaultAlExtents = 1237;
    public const int MinAlExtents = 67;
    public const int MaxAlExtents = 65534;

    public int FormatVersion { get; init; } = CurrentFormatVersion;
    /// <summary>Incremented on every write; of two valid copies the higher one wins.</summary>
    public ulong Sequence { get; init; }
    public required int NodeId { get; init; }
    /// <summary>Usable (agreed) data size in bytes, DRBD's la-size; a multiple of 4 KiB.</summary>
    public required long UsableSizeBytes { get; init; }
    public int BytesPerBit { get; init; } = MetadataLayout.BytesPerBit;
    public int AlExtents { get; init; } = DefaultAlExtents;
    public int AlStripes { get; init; } = MetadataLayout.DefaultAlStripes;
    public int AlStripeSize4k { get; init; } = MetadataLayout.DefaultAlStripeSize4k;
    public MetadataFlags Flags { get; init; }
    public ulong CurrentUuid { get; init; }
    public ulong DeviceUuid { get; init; }
    /// <summary>Creation time as given by the caller (the engine has no clock), e.g. Unix seconds.</summary>
    public ulong CreationTime { get; init; }
    /// <summary>One entry per peer slot; the count is the number of bitmap slots.</summary>
    public required ImmutableArray<PeerSlot> Peers { get; init; }
    /// <summary>History UUIDs, newest first, none zero, at most <see cref="MaxHistoryUuids"/>.</summary>
    public ImmutableArray<ulong> HistoryUuids { get; init; } = [];

    public int PeerSlots => Peers.Length;

    public int ActivityLogSize4k => AlStripes * AlStripeSize4k;

    /// <summary>The largest al-extents the AL ring can hold (DRBD's drbd_al_extents_max).</summary>
    public static int MaxAlExtentsFor(int alSize4k) =>
        (int)Math.Min(MaxAlExtents, (long)(alSize4k - 1) * ActivityLogTransaction.ContextPerTransaction);

    /// <summary>The generation identifiers held in this superblock.</summary>
    public GenerationIds GenerationIds =>
        new(CurrentUuid, [.. Peers.Select(p => p.BitmapUuid)], HistoryUuids);

    /// <summary>A copy holding <paramref name="ids"/> (same number of peer slots).</summary>
    public Superblock WithGenerationIds(GenerationIds ids)
    {
        Invariant.Assert(ids.Bitmap.Length == Peers.Length, "one bitmap UUID per peer slot");
        var peers = Peers.ToBuilder();
        for (int i = 0; i < peers.Count; i++)
        {
            peers[i] = peers[i] with { BitmapUuid = ids.Bitmap[i] };
        }

        return this with { CurrentUuid = ids.Current, Peers = peers.MoveToImmutable(), HistoryUuids = ids.History };
    }

    /// <summary>The slot holding node <paramref name="nodeId"/>, or -1.</summary>
    public int FindPeerSlot(int nodeId)
    {
        for (int i = 0; i < Peers.Length; i++)
        {
            if (Peers[i].NodeId == nodeId)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Null when every field is in range; otherwise the first problem, for an operator.</summary>
    public string? ValidationError()
    {
        return CheckScalars() ?? CheckPeers() ?? CheckHistory();
    }

    private string? CheckScalars()
    {
        if (FormatVersion != CurrentFormatVersion)
        {
            return $"unsupported metadata format version {FormatVersion} (this program reads {CurrentFormatVersion})";
        }

        if (NodeId is < 0 or > MaxNodeId)
        {
            return $"node-id {NodeId} out of range 0..{MaxNodeId}";
        }

        if (UsableSizeBytes <= 0 || UsableSizeBytes > MetadataLayout.MaxUsableSizeBytes || UsableSizeBytes % MetadataLayout.BlockSizeBytes != 0)
        {
            return $"usable size {UsableSizeBytes} bytes is not a positive multiple of 4096 up to {MetadataLayout.MaxUsableSizeBytes}";
        }

        if (BytesPerBit != MetadataLayout.BytesPerBit)
        {
            return $"bm-byte-per-bit {BytesPerBit} unsupported (only {MetadataLayout.BytesPerBit})";
        }

        long alSize4k = (long)AlStripes * AlStripeSize4k;
        if (AlStripes < 1 || AlStripeSize4k < 1 || alSize4k is < 2 or > MetadataLayout.MaxAlSize4k)
        {
            return $"activity log geometry invalid: {AlStripes} stripe(s) of {AlStripeSize4k} × 4 KiB";
        }

        int maxExtents = MaxAlExtentsFor((int)alSize4k);
        if (AlExtents < MinAlExtents || AlExtents > maxExtents)
        {
            return $"al-extents {AlExtents} out of range {MinAlExtents}..{maxExtents}";
        }

        if (((uint)Flags & ~MetadataFlagBits.KnownDevice) != 0)
        {
            return $"unknown flags 0x{(uint)Flags:x}";
        }

        return null;
    }

    private string? CheckPeers()
    {
        if (Peers.IsDefault || Peers.Length is < 1 or > MetadataLayout.MaxPeerSlots)
        {
            return $"peer slot count {(Peers.IsDefault ? 0 : Peers.Length)} out of range 1..{MetadataLayout.MaxPeerSlots}";
        }

        ulong nodesSeen = 0, bitmapsSeen = 0;
        for (int i = 0; i < Peers.Length; i++)
        {
            PeerSlot p = Peers[i];
            string? error = CheckPeer(i, p, ref nodesSeen, ref bitmapsSeen);
            if (error != null)
            {
                return error;
            }
        }

        return null;
    }

    private string? CheckPeer(int i, PeerSlot p, ref ulong nodesSeen, ref ulong bitmapsSeen)
    {
        if (p.IsFree)
        {
            return p.BitmapUuid != 0 || p.Flags != PeerSlotFlags.None || p.BitmapIndex != -1
                ? $"peer[{i}] is free but has a bitmap UUID, flags or bitmap index" : null;
        }

        if (p.NodeId is < 0 or > MaxNodeId || p.NodeId == NodeId)
        {
            return $"peer[{i}] node-id {p.NodeId} invalid (0..{MaxNodeId}, not our own {NodeId})";
        }

        if ((nodesSeen & (1UL << p.NodeId)) != 0)
        {
            return $"peer[{i}] node-id {p.NodeId} appears twice";
        }

        nodesSeen |= 1UL << p.NodeId;
        if (((uint)p.Flags & ~MetadataFlagBits.KnownPeer) != 0)
        {
            return $"peer[{i}] unknown flags 0x{(uint)p.Flags:x}";
        }

        if (p.BitmapIndex < -1 || p.BitmapIndex >= Peers.Length)
        {
            return $"peer[{i}] bitmap-index {p.BitmapIndex} out of range -1..{Peers.Length - 1}";
        }

        if (p.BitmapIndex >= 0 && (bitmapsSeen & (1UL << p.BitmapIndex)) != 0)
        {
            return $"peer[{i}] bitmap-index {p.BitmapIndex} used twice";
        }

        if (p.BitmapIndex >= 0)
        {
            bitmapsSeen |= 1UL << p.BitmapIndex;
        }

        return null;
    }

    private string? CheckHistory()
    {
        if (HistoryUuids.IsDefault || HistoryUuids.Length > MaxHistoryUuids)
        {
            return $"more than {MaxHistoryUuids} history UUIDs";
        }

        return HistoryUuids.Contains(0UL) ? "history UUIDs contain a zero entry" : null;
    }

    public bool Equals(Superblock? other) =>
        other is not null
        && FormatVersion == other.FormatVersion && Sequence == other.Sequence && NodeId == other.NodeId
        && UsableSizeBytes == other.UsableSizeBytes && BytesPerBit == other.BytesPerBit
        && AlExtents == other.AlExtents && AlStripes == other.AlStripes && AlStripeSize4k == other.AlStripeSize4k
        && Flags == other.Flags && CurrentUuid == other.CurrentUuid && DeviceUuid == other.DeviceUuid
        && CreationTime == other.CreationTime
        && Peers.SequenceEqual(other.Peers) && HistoryUuids.SequenceEqual(other.HistoryUuids);

    public override int GetHashCode() => HashCode.Combine(Sequence, NodeId, UsableSizeBytes, Flags, CurrentUuid, DeviceUuid, Peers.Length);
}

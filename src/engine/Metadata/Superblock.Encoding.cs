// On-disk encoding of the superblock (4 KiB, big-endian like DRBD). Offsets:
//   0 magic "RBMD" u32 | 4 format version u16 | 6 reserved u16 | 8 sequence u64 | 16 crc32c u32
//  20 node-id s32 | 24 usable size bytes u64 | 32 bytes per bit u32 | 36 al-extents u32
//  40 al stripes u32 | 44 al stripe size (4 KiB units) u32 | 48 flags u32 | 52 peer slots u32
//  56 current uuid u64 | 64 device uuid u64 | 72 creation time u64 | 80 history count u32
// 128 peers[32] × 32 bytes {node-id s32, flags u32, bitmap uuid u64, bitmap index s32, 12 reserved}
// 1152 history[32] × u64 | rest zero. The CRC32C covers all 4096 bytes with the crc field as zero.
using System.Buffers.Binary;
using System.Collections.Immutable;

namespace Redundancy.Block.Engine.Metadata;

public sealed partial record Superblock
{
    private const int CrcOffset = 16;
    private const int PeersOffset = 128;
    private const int PeerEntrySize = 32;
    private const int HistoryOffset = PeersOffset + (MetadataLayout.MaxPeerSlots * PeerEntrySize);

    /// <summary>Encodes into the first 4 KiB of <paramref name="block"/> (the rest of those bytes zeroed).</summary>
    public void Write(Span<byte> block)
    {
        string? error = ValidationError();
        Invariant.Assert(error == null, "writing an invalid superblock: " + error);
        Invariant.Assert(block.Length >= SizeBytes, "superblock buffer is 4 KiB");
        Span<byte> b = block[..SizeBytes];
        b.Clear();
        BinaryPrimitives.WriteUInt32BigEndian(b, Magic);
        BinaryPrimitives.WriteUInt16BigEndian(b[4..], (ushort)FormatVersion);
        BinaryPrimitives.WriteUInt64BigEndian(b[8..], Sequence);
        BinaryPrimitives.WriteInt32BigEndian(b[20..], NodeId);
        BinaryPrimitives.WriteInt64BigEndian(b[24..], UsableSizeBytes);
        BinaryPrimitives.WriteUInt32BigEndian(b[32..], (uint)BytesPerBit);
        BinaryPrimitives.WriteUInt32BigEndian(b[36..], (uint)AlExtents);
        BinaryPrimitives.WriteUInt32BigEndian(b[40..], (uint)AlStripes);
        BinaryPrimitives.WriteUInt32BigEndian(b[44..], (uint)AlStripeSize4k);
        BinaryPrimitives.WriteUInt32BigEndian(b[48..], (uint)Flags);
        BinaryPrimitives.WriteUInt32BigEndian(b[52..], (uint)Peers.Length);
        BinaryPrimitives.WriteUInt64BigEndian(b[56..], CurrentUuid);
        BinaryPrimitives.WriteUInt64BigEndian(b[64..], DeviceUuid);
        BinaryPrimitives.WriteUInt64BigEndian(b[72..], CreationTime);
        BinaryPrimitives.WriteUInt32BigEndian(b[80..], (uint)HistoryUuids.Length);
        for (int i = 0; i < Peers.Length; i++)
        {
            Span<byte> e = b.Slice(PeersOffset + (i * PeerEntrySize), PeerEntrySize);
            BinaryPrimitives.WriteInt32BigEndian(e, Peers[i].NodeId);
            BinaryPrimitives.WriteUInt32BigEndian(e[4..], (uint)Peers[i].Flags);
            BinaryPrimitives.WriteUInt64BigEndian(e[8..], Peers[i].BitmapUuid);
            BinaryPrimitives.WriteInt32BigEndian(e[16..], Peers[i].BitmapIndex);
        }

        for (int i = 0; i < HistoryUuids.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(b[(HistoryOffset + (i * 8))..], HistoryUuids[i]);
        }

        BinaryPrimitives.WriteUInt32BigEndian(b[CrcOffset..], Crc32C.ComputeWithZeroedField(b, CrcOffset));
    }

    /// <summary>
    /// Decodes untrusted bytes: checks magic, version, CRC32C and every field's range. On failure
    /// <paramref name="error"/> says what is wrong and <paramref name="superblock"/> is null.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> block, out Superblock superblock, out string error)
    {
        superblock = null!;
        error = CheckEnvelope(block);
        if (error.Length != 0)
        {
            return false;
        }

        ReadOnlySpan<byte> b = block[..SizeBytes];
        uint peerCount = BinaryPrimitives.ReadUInt32BigEndian(b[52..]);
        uint historyCount = BinaryPrimitives.ReadUInt32BigEndian(b[80..]);
        if (peerCount is < 1 or > MetadataLayout.MaxPeerSlots)
        {
            error = $"peer slot count {peerCount} out of range 1..{MetadataLayout.MaxPeerSlots}";
            return false;
        }

        if (historyCount > MaxHistoryUuids)
        {
            error = $"history UUID count {historyCount} out of range 0..{MaxHistoryUuids}";
            return false;
        }

        if (!UnusedEntriesAreZero(b, (int)peerCount, (int)historyCount))
        {
            error = "unused peer or history entries are not zero";
            return false;
        }

        Superblock candidate = Decode(b, (int)peerCount, (int)historyCount);
        string? invalid = candidate.ValidationError();
        if (invalid != null)
        {
            error = invalid;
            return false;
        }

        superblock = candidate;
        return true;
    }

    private static string CheckEnvelope(ReadOnlySpan<byte> block)
    {
        if (block.Length < SizeBytes)
        {
            return $"superblock needs {SizeBytes} bytes, got {block.Length}";
        }

        uint magic = BinaryPrimitives.ReadUInt32BigEndian(block);
        if (magic != Magic)
        {
            return $"bad magic 0x{magic:x8} (expected 0x{Magic:x8}): no Redundancy.Block metadata here";
        }

        int version = BinaryPrimitives.ReadUInt16BigEndian(block[4..]);
        if (version != CurrentFormatVersion)
        {
            return $"unsupported metadata format version {version} (this program reads {CurrentFormatVersion})";
        }

        uint stored = BinaryPrimitives.ReadUInt32BigEndian(block[CrcOffset..]);
        uint computed = Crc32C.ComputeWithZeroedField(block[..SizeBytes], CrcOffset);
        return stored != computed ? $"checksum mismatch (stored 0x{stored:x8}, computed 0x{computed:x8})" : "";
    }

    private static bool UnusedEntriesAreZero(ReadOnlySpan<byte> b, int peerCount, int historyCount)
    {
        int peersEnd = PeersOffset + (MetadataLayout.MaxPeerSlots * PeerEntrySize);
        int historyEnd = HistoryOffset + (MaxHistoryUuids * 8);
        return !b[(PeersOffset + (peerCount * PeerEntrySize))..peersEnd].ContainsAnyExcept((byte)0)
            && !b[(HistoryOffset + (historyCount * 8))..historyEnd].ContainsAnyExcept((byte)0);
    }

    private static Superblock Decode(ReadOnlySpan<byte> b, int peerCount, int historyCount)
    {
        var peers = ImmutableArray.CreateBuilder<PeerSlot>(peerCount);
        for (int i = 0; i < peerCount; i++)
        {
            ReadOnlySpan<byte> e = b.Slice(PeersOffset + (i * PeerEntrySize), PeerEntrySize);
            peers.Add(new PeerSlot(
                BinaryPrimitives.ReadInt32BigEndian(e),
                BinaryPrimitives.ReadUInt64BigEndian(e[8..]),
                (PeerSlotFlags)BinaryPrimitives.ReadUInt32BigEndian(e[4..]),
                BinaryPrimitives.ReadInt32BigEndian(e[16..])));
        }

        var history = ImmutableArray.CreateBuilder<ulong>(historyCount);
        for (int i = 0; i < historyCount; i++)
        {
            history.Add(BinaryPrimitives.ReadUInt64BigEndian(b[(HistoryOffset + (i * 8))..]));
        }

        return new Superblock
        {
            FormatVersion = BinaryPrimitives.ReadUInt16BigEndian(b[4..]),
            Sequence = BinaryPrimitives.ReadUInt64BigEndian(b[8..]),
            NodeId = BinaryPrimitives.ReadInt32BigEndian(b[20..]),
            UsableSizeBytes = BinaryPrimitives.ReadInt64BigEndian(b[24..]),
            BytesPerBit = ClampToInt(BinaryPrimitives.ReadUInt32BigEndian(b[32..])),
            AlExtents = ClampToInt(BinaryPrimitives.ReadUInt32BigEndian(b[36..])),
            AlStripes = ClampToInt(BinaryPrimitives.ReadUInt32BigEndian(b[40..])),
            AlStripeSize4k = ClampToInt(BinaryPrimitives.ReadUInt32BigEndian(b[44..])),
            Flags = (MetadataFlags)BinaryPrimitives.ReadUInt32BigEndian(b[48..]),
            CurrentUuid = BinaryPrimitives.ReadUInt64BigEndian(b[56..]),
            DeviceUuid = BinaryPrimitives.ReadUInt64BigEndian(b[64..]),
            CreationTime = BinaryPrimitives.ReadUInt64BigEndian(b[72..]),
            Peers = peers.MoveToImmutable(),
            HistoryUuids = history.MoveToImmutable(),
        };
    }

    /// <summary>Out-of-range u32 fields become int.MaxValue, which validation then rejects by name.</summary>
    private static int ClampToInt(uint value) => value > int.MaxValue ? int.MaxValue : (int)value;
}

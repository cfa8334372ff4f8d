// Recognises what already lives at the start of a disk, so create-md can refuse to overwrite a
// filesystem, partition table, swap, LUKS/LVM volume or existing metadata without --force
// (like drbdmeta's check_for_existing_data). Give it the first HeadSizeBytes (fewer on tiny disks).
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Metadata;

public static class FilesystemSignature
{
    /// <summary>How many bytes from the start of the device the caller should read (128 KiB).</summary>
    public const int HeadSizeBytes = 128 * 1024;

    /// <summary>A short name of what <paramref name="head"/> holds ("ext4", "xfs", "GPT partition table"...), or null.</summary>
    public static string? Detect(ReadOnlySpan<byte> head) =>
        DetectMetadata(head) ?? DetectContainer(head) ?? DetectFilesystem(head) ?? DetectPartitionTable(head);

    private static string? DetectMetadata(ReadOnlySpan<byte> head)
    {
        if (At(head, 0, "RBMD"u8))
        {
            return "Redundancy.Block metadata";
        }

        return IsDrbdMetadata(head) ? "DRBD metadata" : null;
    }

    /// <summary>
    /// True when <paramref name="block"/> starts with a DRBD 8.x/9 superblock (magic v08, v08-unclean or
    /// v09 at byte 60). It is at the start of an external meta-disk, and in the last 4 KiB-aligned
    /// block of a disk with internal DRBD metadata: pass that block to check for it.
    /// </summary>
    public static bool IsDrbdMetadata(ReadOnlySpan<byte> block) =>
        block.Length >= 64 && BinaryPrimitives.ReadUInt32BigEndian(block[60..]) is 0x8374026b or 0x8374026c or 0x8374026d;

    private static string? DetectContainer(ReadOnlySpan<byte> head)
    {
        if (At(head, 0, [(byte)'L', (byte)'U', (byte)'K', (byte)'S', 0xba, 0xbe]))
        {
            return "LUKS";
        }

        if (At(head, 512, "LABELONE"u8) && At(head, 536, "LVM2 001"u8))
        {
            return "LVM2 physical volume";
        }

        return At(head, 4086, "SWAPSPACE2"u8) || At(head, 4086, "SWAP-SPACE"u8) ? "swap" : null;
    }

    private static string? DetectFilesystem(ReadOnlySpan<byte> head)
    {
        if (At(head, 0, "XFSB"u8))
        {
            return "xfs";
        }

        if (At(head, 0x10040, "_BHRfS_M"u8))
        {
            return "btrfs";
        }

        if (head.Length >= 1024 + 0x64 && BinaryPrimitives.ReadUInt16LittleEndian(head[1080..]) == 0xEF53)
        {
            uint compat = BinaryPrimitives.ReadUInt32LittleEndian(head[(1024 + 0x5C)..]);
            uint incompat = BinaryPrimitives.ReadUInt32LittleEndian(head[(1024 + 0x60)..]);
            const uint ext4Only = 0x40 | 0x80 | 0x200; // extents, 64bit, flex_bg
            return (incompat & ext4Only) != 0 ? "ext4" : (compat & 0x4) != 0 ? "ext3" : "ext2";
        }

        if (At(head, 0, "hsqs"u8))
        {
            return "squashfs";
        }

        if (At(head, 3, "NTFS    "u8))
        {
            return "ntfs";
        }

        if (At(head, 54, "FAT"u8) || At(head, 82, "FAT32"u8))
        {
            return "vfat";
        }

        return At(head, 0x8001, "CD001"u8) ? "iso9660" : null;
    }

    private static string? DetectPartitionTable(ReadOnlySpan<byte> head)
    {
        if (At(head, 512, "EFI PART"u8))
        {
            return "GPT partition table";
        }

        if (head.Length < 512 || head[510] != 0x55 || head[511] != 0xAA)
        {
            return null;
        }

        for (int entry = 0; entry < 4; entry++)
        {
            if (head[446 + (entry * 16) + 4] != 0) // partition type
            {
                return "MBR partition table";
            }
        }

        return null;
    }

    private static bool At(ReadOnlySpan<byte> head, int offset, ReadOnlySpan<byte> signature) =>
        head.Length >= offset + signature.Length && head.Slice(offset, signature.Length).SequenceEqual(signature);
}

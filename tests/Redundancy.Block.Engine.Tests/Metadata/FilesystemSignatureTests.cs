using System.Buffers.Binary;
using System.Text;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Metadata;

public class FilesystemSignatureTests
{
    private static byte[] Head() => new byte[FilesystemSignature.HeadSizeBytes];

    private static byte[] With(int offset, string ascii)
    {
        byte[] head = Head();
        Encoding.Latin1.GetBytes(ascii).CopyTo(head, offset);
        return head;
    }

    [Fact]
    public void Blank_disk_has_no_signature()
    {
        Assert.Null(FilesystemSignature.Detect(Head()));
        Assert.Null(FilesystemSignature.Detect([]));
    }

    [Theory]
    [InlineData(0, "XFSB", "xfs")]
    [InlineData(0x10040, "_BHRfS_M", "btrfs")]
    [InlineData(4086, "SWAPSPACE2", "swap")]
    [InlineData(0, "LUKS\u00ba\u00be", "LUKS")]
    [InlineData(512, "EFI PART", "GPT partition table")]
    [InlineData(0, "RBMD", "Redundancy.Block metadata")]
    [InlineData(0, "hsqs", "squashfs")]
    [InlineData(3, "NTFS    ", "ntfs")]
    [InlineData(0x8001, "CD001", "iso9660")]
    public void Recognises_magic_strings(int offset, string magic, string expected)
    {
        Assert.Equal(expected, FilesystemSignature.Detect(With(offset, magic)));
    }

    [Theory]
    [InlineData(0u, 0u, "ext2")]
    [InlineData(0x4u, 0u, "ext3")]
    [InlineData(0x4u, 0x2C2u, "ext4")]
    public void Recognises_ext_generations(uint compat, uint incompat, string expected)
    {
        byte[] head = Head();
        BinaryPrimitives.WriteUInt16LittleEndian(head.AsSpan(1080), 0xEF53);
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(1024 + 0x5C), compat);
        BinaryPrimitives.WriteUInt32LittleEndian(head.AsSpan(1024 + 0x60), incompat);
        Assert.Equal(expected, FilesystemSignature.Detect(head));
    }

    [Fact]
    public void Mbr_needs_a_partition_entry()
    {
        byte[] head = Head();
        head[510] = 0x55;
        head[511] = 0xAA;
        Assert.Null(FilesystemSignature.Detect(head));
        head[446 + 16 + 4] = 0x83; // second entry: Linux
        Assert.Equal("MBR partition table", FilesystemSignature.Detect(head));
    }

    [Fact]
    public void Recognises_drbd_and_lvm_headers()
    {
        byte[] head = Head();
        BinaryPrimitives.WriteUInt32BigEndian(head.AsSpan(60), 0x8374026d);
        Assert.Equal("DRBD metadata", FilesystemSignature.Detect(head));
        Assert.True(FilesystemSignature.IsDrbdMetadata(head.AsSpan(0, 4096)));
        head[63] = 0x6e;
        Assert.False(FilesystemSignature.IsDrbdMetadata(head.AsSpan(0, 4096)));
        byte[] lvm = With(512, "LABELONE");
        Encoding.ASCII.GetBytes("LVM2 001").CopyTo(lvm, 536);
        Assert.Equal("LVM2 physical volume", FilesystemSignature.Detect(lvm));
    }

    [Fact]
    public void Short_heads_are_safe()
    {
        Assert.Null(FilesystemSignature.Detect(With(0, "XFS")));
        Assert.Equal("xfs", FilesystemSignature.Detect(Encoding.ASCII.GetBytes("XFSB")));
        Assert.Null(FilesystemSignature.Detect(new byte[1081]));
    }
}

// Linux libc interop for backing disks: the syscalls the BCL does not expose (open with O_DIRECT and
// O_EXCL, fdatasync, fallocate, block-device ioctls, lseek SEEK_DATA/SEEK_HOLE, flock, statx).
// Everything native the Storage folder uses is declared here and in Libc.Aio.cs (asynchronous I/O), with its constants.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Redundancy.Block.Agent.Storage;

internal static partial class Libc
{
    private const string LibraryName = "libc";

    // open(2) flags. O_DIRECT and O_DIRECTORY differ between x86_64 and arm64 (asm-generic vs arm64 uapi).
    public const int O_RDONLY = 0x0;
    public const int O_RDWR = 0x2;
    public const int O_EXCL = 0x80;
    public const int O_CLOEXEC = 0x80000;
    private const int TmpFileBit = 0x400000;

    public static int O_DIRECT => IsArm ? 0x10000 : 0x4000;

    /// <summary>O_TMPFILE includes O_DIRECTORY, as in the kernel's uapi headers.</summary>
    public static int O_TMPFILE => TmpFileBit | (IsArm ? 0x4000 : 0x10000);

    // errno values (Linux, all architectures we run on).
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int EBUSY = 16;
    public const int EINVAL = 22;
    public const int ENOTTY = 25;
    public const int EROFS = 30;
    public const int ENOSYS = 38;
    public const int EOPNOTSUPP = 95;

    // fallocate(2) modes.
    public const int FALLOC_FL_KEEP_SIZE = 0x01;
    public const int FALLOC_FL_PUNCH_HOLE = 0x02;
    public const int FALLOC_FL_ZERO_RANGE = 0x10;

    // lseek(2) whence values for sparse files.
    public const int SEEK_DATA = 3;
    public const int SEEK_HOLE = 4;

    // flock(2) operations.
    public const int LOCK_SH = 1;
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;

    // Block-device ioctls (linux/fs.h).
    public const ulong BLKGETSIZE64 = 0x80081272;
    public const ulong BLKZEROOUT = 0x127f;

    // statx(2).
    public const int AT_FDCWD = -100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_BASIC_STATS = 0x7ff;
    public const ushort S_IFMT = 0xF000;
    public const ushort S_IFREG = 0x8000;
    public const ushort S_IFBLK = 0x6000;

    private static bool IsArm => RuntimeInformation.ProcessArchitecture == Architecture.Arm64;

    [LibraryImport(LibraryName, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, uint mode);

    [LibraryImport(LibraryName, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int FDataSync(SafeFileHandle fd);

    [LibraryImport(LibraryName, EntryPoint = "fallocate", SetLastError = true)]
    public static partial int FAllocate(SafeFileHandle fd, int mode, long offset, long length);

    [LibraryImport(LibraryName, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(SafeFileHandle fd, ulong request, out ulong value);

    /// <summary>ioctl taking a pointer to a u64[2] {start, length}, as BLKDISCARD and BLKZEROOUT do.</summary>
    [LibraryImport(LibraryName, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int IoctlRange(SafeFileHandle fd, ulong request, in ByteRange range);

    [LibraryImport(LibraryName, EntryPoint = "lseek", SetLastError = true)]
    public static partial long LSeek(SafeFileHandle fd, long offset, int whence);

    [LibraryImport(LibraryName, EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(SafeFileHandle fd, int operation);

    [LibraryImport(LibraryName, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxAt(SafeFileHandle dirfd, string path, int flags, uint mask, out StatxBuffer buffer);

    [LibraryImport(LibraryName, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxPath(int dirfd, string path, int flags, uint mask, out StatxBuffer buffer);

    /// <summary>statx on an open descriptor (AT_EMPTY_PATH), throwing an IOException naming the path.</summary>
    public static StatxBuffer FStatx(SafeFileHandle fd, string pathForMessages)
    {
        if (StatxAt(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, out StatxBuffer buffer) != 0)
        {
            throw StorageErrors.Syscall(pathForMessages, "statx", Marshal.GetLastPInvokeError());
        }

        return buffer;
    }

    /// <summary>statx on a path (following symlinks), throwing an IOException naming the path.</summary>
    public static StatxBuffer Statx(string path)
    {
        if (StatxPath(AT_FDCWD, path, 0, STATX_BASIC_STATS, out StatxBuffer buffer) != 0)
        {
            throw StorageErrors.Syscall(path, "statx", Marshal.GetLastPInvokeError());
        }

        return buffer;
    }

    /// <summary>The {start, length} pair BLKDISCARD and BLKZEROOUT read.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public readonly record struct ByteRange(ulong StartBytes, ulong LengthBytes);

    /// <summary>struct statx: the same layout on every Linux architecture (unlike struct stat).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatxBuffer
    {
        [FieldOffset(0)] public uint Mask;
        [FieldOffset(4)] public uint BlockSizeBytes;
        [FieldOffset(28)] public ushort Mode;
        [FieldOffset(40)] public ulong SizeBytes;
        /// <summary>Allocated 512-byte units (st_blocks).</summary>
        [FieldOffset(48)] public ulong Blocks512;
        [FieldOffset(128)] public uint RdevMajor;
        [FieldOffset(132)] public uint RdevMinor;

        public readonly bool IsBlockDevice => (Mode & S_IFMT) == S_IFBLK;

        public readonly bool IsRegularFile => (Mode & S_IFMT) == S_IFREG;
    }
}

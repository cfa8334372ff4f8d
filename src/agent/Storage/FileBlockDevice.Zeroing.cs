// FileBlockDevice's zeroing: discard and write-zeroes, both of which must leave the range reading as
// zeroes (the IBlockDevice contract, stricter than NBD's TRIM, so replicas never diverge).
//
// Regular files: fallocate PUNCH_HOLE|KEEP_SIZE (discard, or write-zeroes that may unmap) or
// ZERO_RANGE|KEEP_SIZE (write-zeroes that must keep the blocks allocated, NBD's NO_HOLE).
// Block devices: BLKDISCARD is not used because it does not promise zeroes; instead the aligned
// interior goes to fallocate PUNCH_HOLE|KEEP_SIZE (the kernel's zero-out that may unmap, and fails
// rather than falls back when the device cannot) or, without unmap or when that is unsupported,
// ioctl BLKZEROOUT (zero-out keeping the blocks). Unaligned head and tail are written as zeroes.
// Whenever the kernel says "not supported", the range is zeroed by writing 1 MiB zero buffers.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Redundancy.Block.Agent.Storage;

public sealed partial class FileBlockDevice
{
    private void Zero(long offsetBytes, long lengthBytes, bool mayUnmap)
    {
        if (lengthBytes == 0)
        {
            return;
        }

        if (!IsBlockDevice)
        {
            int mode = Libc.FALLOC_FL_KEEP_SIZE | (mayUnmap ? Libc.FALLOC_FL_PUNCH_HOLE : Libc.FALLOC_FL_ZERO_RANGE);
            if (!TryFAllocate(mode, offsetBytes, lengthBytes))
            {
                WriteZeroBytes(offsetBytes, lengthBytes);
            }

            return;
        }

        long endBytes = offsetBytes + lengthBytes;
        long innerStart = AlignUp(offsetBytes);
        long innerEnd = AlignDown(endBytes);
        if (innerStart >= innerEnd)
        {
            WriteZeroBytes(offsetBytes, lengthBytes);
            return;
        }

        WriteZeroBytes(offsetBytes, innerStart - offsetBytes);
        ZeroBlockDeviceRange(innerStart, innerEnd - innerStart, mayUnmap);
        WriteZeroBytes(innerEnd, endBytes - innerEnd);
    }

    private void ZeroBlockDeviceRange(long offsetBytes, long lengthBytes, bool mayUnmap)
    {
        if (mayUnmap && TryFAllocate(Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, offsetBytes, lengthBytes))
        {
            return;
        }

        int errno = ZeroOut(offsetBytes, lengthBytes);
        if (errno == 0)
        {
            return;
        }

        if (!IsUnsupported(errno))
        {
            throw StorageErrors.Io(Path, "ioctl(BLKZEROOUT)", offsetBytes, lengthBytes, errno);
        }

        WriteZeroBytes(offsetBytes, lengthBytes);
    }

    /// <summary>fallocate; false when this filesystem or device does not support the mode.</summary>
    private bool TryFAllocate(int mode, long offsetBytes, long lengthBytes)
    {
        int result;
        try
        {
            do
            {
                result = Libc.FAllocate(handle, mode, offsetBytes, lengthBytes);
            }
            while (result != 0 && Marshal.GetLastPInvokeError() == Libc.EINTR);
        }
        catch (ObjectDisposedException)
        {
            throw StorageErrors.Closed(Path, "fallocate");
        }

        if (result == 0)
        {
            return true;
        }

        int errno = Marshal.GetLastPInvokeError();
        return IsUnsupported(errno)
            ? false
            : throw StorageErrors.Io(Path, $"fallocate(mode 0x{mode:x})", offsetBytes, lengthBytes, errno);
    }

    /// <summary>ioctl BLKZEROOUT; returns 0 or the errno.</summary>
    private int ZeroOut(long offsetBytes, long lengthBytes)
    {
        var range = new Libc.ByteRange((ulong)offsetBytes, (ulong)lengthBytes);
        try
        {
            while (Libc.IoctlRange(handle, Libc.BLKZEROOUT, range) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Libc.EINTR)
                {
                    return errno;
                }
            }

            return 0;
        }
        catch (ObjectDisposedException)
        {
            throw StorageErrors.Closed(Path, "ioctl(BLKZEROOUT)");
        }
    }

    private void WriteZeroBytes(long offsetBytes, long lengthBytes)
    {
        for (long doneBytes = 0; doneBytes < lengthBytes;)
        {
            int chunkBytes = (int)Math.Min(ZeroBuffer.SizeBytes, lengthBytes - doneBytes);
            Write(offsetBytes + doneBytes, ZeroBuffer.Span(chunkBytes));
            doneBytes += chunkBytes;
        }
    }

    /// <summary>errnos meaning "this kind of zeroing is not available here", after which we write zeroes.</summary>
    private static bool IsUnsupported(int errno) =>
        errno is Libc.EOPNOTSUPP or Libc.ENOSYS or Libc.ENOTTY or Libc.EINVAL;

    /// <summary>A block device zeroes natively when its queue accepts REQ_OP_WRITE_ZEROES.</summary>
    private static bool BlockDeviceZeroesNatively(Libc.StatxBuffer stat)
    {
        string device = $"/sys/dev/block/{stat.RdevMajor}:{stat.RdevMinor}";
        // A partition has no queue of its own; its parent disk's is one level up.
        foreach (string queue in new[] { "queue", "../queue" })
        {
            try
            {
                string text = File.ReadAllText(System.IO.Path.Combine(device, queue, "write_zeroes_max_bytes"));
                return long.TryParse(text.Trim(), out long maxBytes) && maxBytes > 0;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Try the next location; no sysfs at all means we cannot promise fast zeroing.
            }
        }

        return false;
    }

    /// <summary>
    /// Probes the file's filesystem for fallocate ZERO_RANGE and PUNCH_HOLE on an unnamed O_TMPFILE in
    /// the same directory, so the user's data is never touched. False if the probe cannot be made.
    /// </summary>
    private bool FileSystemZeroesFast()
    {
        string target;
        try
        {
            target = File.ResolveLinkTarget(Path, returnFinalTarget: true)?.FullName ?? System.IO.Path.GetFullPath(Path);
        }
        catch (IOException)
        {
            return false;
        }

        string? directory = System.IO.Path.GetDirectoryName(target);
        if (directory is null)
        {
            return false;
        }

        int fd = Libc.Open(directory, Libc.O_TMPFILE | Libc.O_RDWR | Libc.O_CLOEXEC, 0x180);
        if (fd < 0)
        {
            return false;
        }

        using var probe = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            RandomAccess.Write(probe, ZeroBuffer.Span(2 * AlignmentBytes), 0);
        }
        catch (IOException)
        {
            return false;
        }

        return Libc.FAllocate(probe, Libc.FALLOC_FL_ZERO_RANGE | Libc.FALLOC_FL_KEEP_SIZE, 0, AlignmentBytes) == 0
            && Libc.FAllocate(probe, Libc.FALLOC_FL_PUNCH_HOLE | Libc.FALLOC_FL_KEEP_SIZE, AlignmentBytes, AlignmentBytes) == 0;
    }
}

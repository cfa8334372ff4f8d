// The real backing disk: a regular file or a kernel block device, read and written with
// pread/pwrite on one descriptor, made durable with fdatasync. This file holds opening, sizing and the
// IBlockDevice entry points; the data path, zeroing and allocation queries are in the partial files
// FileBlockDevice.DataPath.cs, FileBlockDevice.Zeroing.cs and FileBlockDevice.Allocation.cs.
//
// Every call completes synchronously and returns a completed ValueTask, so the hot path allocates
// nothing. A disk opened with O_DIRECT also has a DirectIoQueue (Linux AIO) that QueuedBlockDevice
// sends the data path's whole-block reads and writes to; the metadata, which callers wait for
// synchronously, never goes through it. Failures come back as faulted
// ValueTasks holding an IOException that names the disk, the operation, the range and the errno.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Storage;

public sealed partial class FileBlockDevice : IBlockDevice
{
    private readonly SafeFileHandle handle;

    private FileBlockDevice(string path, SafeFileHandle handle, FileBlockDeviceOptions options, bool isBlockDevice)
    {
        Path = path;
        this.handle = handle;
        IsBlockDevice = isBlockDevice;
        IsReadOnly = options.ReadOnly;
        IsDirectIo = options.DirectIo;
        if (options.DirectIo)
        {
            bouncePool = new AlignedBufferPool(BounceBufferBytes, Math.Max(2, Environment.ProcessorCount * 2));
            directQueue = DirectIoQueue.TryCreate(this, handle);
            rmwLocks = new object[RmwLockStripes];
            for (int i = 0; i < rmwLocks.Length; i++)
            {
                rmwLocks[i] = new object();
            }
        }
    }

    /// <summary>The path the disk was opened with, used in every error message.</summary>
    public string Path { get; }

    public long SizeBytes { get; private set; }

    /// <summary>
    /// Whether zeroing is done without writing data. Decided once at open: for a block device, the
    /// kernel's queue/write_zeroes_max_bytes is non-zero (the device zeroes natively, so BLKZEROOUT and
    /// fallocate do not fall back to writing pages); for a regular file, fallocate ZERO_RANGE and
    /// PUNCH_HOLE both succeed on a scratch O_TMPFILE in the same directory (same filesystem). False
    /// when read-only. When false, zeroing still works, by writing zeroes.
    /// </summary>
    public bool CanFastZero { get; private set; }

    public bool IsBlockDevice { get; }

    public bool IsReadOnly { get; }

    public bool IsDirectIo { get; }

    /// <summary>Whether whole-block direct reads and writes can go to the kernel asynchronously (Linux AIO).</summary>
    internal bool HasDirectIoQueue => directQueue is not null;

    /// <summary>Starts a whole-block read on the direct I/O queue; null when it must be done synchronously.</summary>
    internal ValueTask? TryQueueRead(long offsetBytes, Memory<byte> buffer)
    {
        AssertRange(offsetBytes, buffer.Length, "read");
        return directQueue is not null && IsBlockAligned(offsetBytes, buffer.Length) ? directQueue.TryRead(offsetBytes, buffer) : null;
    }

    /// <summary>Starts a whole-block write on the direct I/O queue; null when it must be done synchronously.</summary>
    internal ValueTask? TryQueueWrite(long offsetBytes, ReadOnlyMemory<byte> data, bool fua)
    {
        AssertRange(offsetBytes, data.Length, "write");
        return directQueue is not null && !IsReadOnly && IsBlockAligned(offsetBytes, data.Length) ? directQueue.TryWrite(offsetBytes, data.Span, fua) : null;
    }

    /// <summary>
    /// Opens a backing disk. Throws IOException with a message naming <paramref name="path"/> when it
    /// does not exist, is neither a regular file nor a block device, is in use (Exclusive), or does
    /// not support O_DIRECT (DirectIo).
    /// </summary>
    public static FileBlockDevice Open(string path, FileBlockDeviceOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(options);
        Libc.StatxBuffer pathStat = Libc.Statx(path);
        if (!pathStat.IsRegularFile && !pathStat.IsBlockDevice)
        {
            throw new IOException($"disk {path} is neither a regular file nor a block device");
        }

        SafeFileHandle handle = OpenHandle(path, options, pathStat.IsBlockDevice);
        FileBlockDevice? device = null;
        try
        {
            device = new FileBlockDevice(path, handle, options, pathStat.IsBlockDevice);
            device.Initialize(options);
            return device;
        }
        catch
        {
            if (device is null)
            {
                handle.Dispose();
            }
            else
            {
                device.Dispose();
            }

            throw;
        }
    }

    private static SafeFileHandle OpenHandle(string path, FileBlockDeviceOptions options, bool isBlockDevice)
    {
        int flags = Libc.O_CLOEXEC | (options.ReadOnly ? Libc.O_RDONLY : Libc.O_RDWR);
        flags |= options.DirectIo ? Libc.O_DIRECT : 0;
        flags |= options.Exclusive && isBlockDevice ? Libc.O_EXCL : 0;
        int fd;
        do
        {
            fd = Libc.Open(path, flags, 0);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR);

        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                Libc.EBUSY when isBlockDevice && options.Exclusive => new IOException(
                    $"disk {path} is in use (mounted, or held open exclusively by another process): " +
                    $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno),
                Libc.EINVAL when options.DirectIo => new IOException(
                    $"disk {path}: O_DIRECT is not supported by this filesystem or device " +
                    $"(open failed with EINVAL); open it without direct I/O", errno),
                _ => StorageErrors.Syscall(path, "open", errno),
            };
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    private void Initialize(FileBlockDeviceOptions options)
    {
        Libc.StatxBuffer stat = Libc.FStatx(handle, Path);
        if (stat.IsBlockDevice != IsBlockDevice)
        {
            throw new IOException($"disk {Path} changed from or to a block device while being opened");
        }

        if (options.Exclusive && !IsBlockDevice)
        {
            LockFile(options.ReadOnly);
        }

        SizeBytes = CurrentSizeBytes(stat);
        CanFastZero = !IsReadOnly && (IsBlockDevice ? BlockDeviceZeroesNatively(stat) : FileSystemZeroesFast());
    }

    /// <summary>
    /// `resize`: picks up a disk that grew since it was opened (a file extended, an LV grown) and
    /// returns the size now. The size never shrinks here: data and metadata stay where they were.
    /// </summary>
    public long RefreshSize()
    {
        long now = CurrentSizeBytes(Libc.FStatx(handle, Path));
        if (now > SizeBytes)
        {
            SizeBytes = now;
        }

        return SizeBytes;
    }

    private long CurrentSizeBytes(Libc.StatxBuffer stat)
    {
        long sizeBytes = IsBlockDevice ? BlockDeviceSizeBytes() : checked((long)stat.SizeBytes);
        // O_DIRECT I/O is done in whole aligned blocks; a partial last block could not be written.
        return IsDirectIo ? sizeBytes & ~(long)(AlignedBufferPool.AlignmentBytes - 1) : sizeBytes;
    }

    private void LockFile(bool shared)
    {
        int operation = (shared ? Libc.LOCK_SH : Libc.LOCK_EX) | Libc.LOCK_NB;
        int result;
        do
        {
            result = Libc.Flock(handle, operation);
        }
        while (result != 0 && Marshal.GetLastPInvokeError() == Libc.EINTR);

        if (result != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno == Libc.EAGAIN
                ? new IOException($"disk {Path} is in use: another process (or another open in this one) " +
                    "holds its lock", errno)
                : StorageErrors.Syscall(Path, "flock", errno);
        }
    }

    private long BlockDeviceSizeBytes()
    {
        if (Libc.Ioctl(handle, Libc.BLKGETSIZE64, out ulong sizeBytes) != 0)
        {
            throw StorageErrors.Syscall(Path, "ioctl(BLKGETSIZE64)", Marshal.GetLastPInvokeError());
        }

        return checked((long)sizeBytes);
    }

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, buffer.Length, "read");
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            Read(offsetBytes, buffer.Span);
            return default;
        }
        catch (IOException ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, data.Length, "write");
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            EnsureWritable("write");
            Write(offsetBytes, data.Span);
            if (fua)
            {
                Flush();
            }

            return default;
        }
        catch (IOException ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            Flush();
            return default;
        }
        catch (IOException ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, lengthBytes, "discard");
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            EnsureWritable("discard");
            Zero(offsetBytes, lengthBytes, mayUnmap: true);
            return default;
        }
        catch (IOException ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, lengthBytes, "write-zeroes");
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            EnsureWritable("write-zeroes");
            Zero(offsetBytes, lengthBytes, mayUnmap);
            return default;
        }
        catch (IOException ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default)
    {
        AssertRange(offsetBytes, lengthBytes, "allocation query");
        Invariant.Assert(lengthBytes > 0, "an allocation query must cover at least one byte");
        ArgumentNullException.ThrowIfNull(extents);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        try
        {
            DescribeAllocation(offsetBytes, lengthBytes, extents);
            return default;
        }
        catch (IOException ex)
        {
            return ValueTask.FromException(ex);
        }
    }

    public void Dispose()
    {
        // First: the queue waits for the kernel to finish with the handle and the bounce buffers.
        directQueue?.Dispose();
        handle.Dispose();
        bouncePool?.Dispose();
    }

    private void AssertRange(long offsetBytes, long lengthBytes, string operation)
    {
        // Built only on failure: the message would otherwise allocate on every request.
        if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes > SizeBytes - lengthBytes)
        {
            Invariant.Fail($"disk {Path}: {operation} of {lengthBytes} bytes at offset {offsetBytes} " +
                $"is outside [0, {SizeBytes})");
        }
    }

    private void EnsureWritable(string operation)
    {
        if (IsReadOnly)
        {
            throw StorageErrors.ReadOnly(Path, operation);
        }
    }

    private void Flush()
    {
        int result;
        try
        {
            do
            {
                result = Libc.FDataSync(handle);
            }
            while (result != 0 && Marshal.GetLastPInvokeError() == Libc.EINTR);
        }
        catch (ObjectDisposedException)
        {
            throw StorageErrors.Closed(Path, "flush");
        }

        if (result != 0)
        {
            throw StorageErrors.Syscall(Path, "fdatasync", Marshal.GetLastPInvokeError());
        }
    }
}

// Builds the IOExceptions backing disks report: every one names the disk, the operation, the byte
// range and the errno with its strerror text, and carries the errno in HResult so callers (the NBD
// server) can map it to an NBD error code.
using System.Runtime.InteropServices;

namespace Redundancy.Block.Agent.Storage;

internal static class StorageErrors
{
    /// <summary>A failed data-path call: "disk /x: write of 4096 bytes at offset 8192 failed: ...".</summary>
    public static IOException Io(string path, string operation, long offsetBytes, long lengthBytes, int errno) =>
        new($"disk {path}: {operation} of {lengthBytes} bytes at offset {offsetBytes} failed: " +
            $"{Describe(errno)}", errno);

    /// <summary>A failed data-path call reported by the BCL (RandomAccess) rather than by errno.</summary>
    public static IOException Io(string path, string operation, long offsetBytes, long lengthBytes, Exception inner)
    {
        int errno = inner.HResult is > 0 and < 4096 ? inner.HResult : Libc.EIO;
        return new IOException(
            $"disk {path}: {operation} of {lengthBytes} bytes at offset {offsetBytes} failed: {inner.Message}",
            inner) { HResult = errno };
    }

    /// <summary>A failed call that is not about a byte range (open, statx, fdatasync, flock).</summary>
    public static IOException Syscall(string path, string operation, int errno) =>
        new($"disk {path}: {operation} failed: {Describe(errno)}", errno);

    /// <summary>A read that hit end of file before the requested bytes.</summary>
    public static IOException ShortRead(string path, long offsetBytes, long lengthBytes, long doneBytes) =>
        new($"disk {path}: read of {lengthBytes} bytes at offset {offsetBytes} failed: end of file after " +
            $"{doneBytes} bytes (the file is shorter than when it was opened)", Libc.EIO);

    /// <summary>The device was disposed (detached) while a request was still using it.</summary>
    public static IOException Closed(string path, string operation) =>
        new($"disk {path}: {operation} failed: the disk has been closed", Libc.EBADF);

    public static IOException ReadOnly(string path, string operation) =>
        new($"disk {path}: {operation} refused: the disk is open read-only", Libc.EROFS);

    private static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}

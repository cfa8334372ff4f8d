// Linux native asynchronous I/O (io_setup, io_submit, io_getevents, io_destroy), called through
// syscall(2): glibc has no wrappers and libaio is not a dependency we take. The structures are the
// kernel's uapi layouts (linux/aio_abi.h) for little-endian 64-bit machines.
using System.Runtime.InteropServices;

namespace Redundancy.Block.Agent.Storage;

internal static partial class Libc
{
    public const ushort IOCB_CMD_PREAD = 0;
    public const ushort IOCB_CMD_PWRITE = 1;

    /// <summary>RWF_DSYNC in aio_rw_flags: this write is durable when it completes (FUA).</summary>
    public const int RWF_DSYNC = 0x2;

    /// <summary>struct iocb: one request.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Iocb
    {
        public ulong Data;
        public uint Key;
        public int RwFlags;
        public ushort Opcode;
        public short RequestPriority;
        public uint FileDescriptor;
        public ulong Buffer;
        public ulong LengthBytes;
        public long OffsetBytes;
        public ulong Reserved2;
        public uint Flags;
        public uint ResultFileDescriptor;
    }

    /// <summary>struct io_event: one completion; Result is the byte count or a negative errno.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoEvent
    {
        public ulong Data;
        public ulong Request;
        public long Result;
        public long Result2;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>Whether this architecture's AIO syscall numbers are known here (x86_64, arm64).</summary>
    public static bool HasAio => RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    // Syscall numbers: x86_64 (arch/x86/entry/syscalls) and arm64 (asm-generic/unistd.h).
    private static long IoSetupNumber => IsArm ? 0 : 206;
    private static long IoDestroyNumber => IsArm ? 1 : 207;
    private static long IoSubmitNumber => IsArm ? 2 : 209;
    private static long IoGetEventsNumber => IsArm ? 4 : 208;

    [LibraryImport(LibraryName, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5);

    public static unsafe long IoSetup(uint maxEvents, ulong* context) => Syscall(IoSetupNumber, (nint)maxEvents, (nint)context, 0, 0, 0);

    public static long IoDestroy(ulong context) => Syscall(IoDestroyNumber, (nint)context, 0, 0, 0, 0);

    public static unsafe long IoSubmit(ulong context, long count, Iocb** requests) => Syscall(IoSubmitNumber, (nint)context, (nint)count, (nint)requests, 0, 0);

    public static unsafe long IoGetEvents(ulong context, long minimum, long maximum, IoEvent* events, Timespec* timeout) =>
        Syscall(IoGetEventsNumber, (nint)context, (nint)minimum, (nint)maximum, (nint)events, (nint)timeout);
}

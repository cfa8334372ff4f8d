// How a backing disk is opened: direct I/O, read-only, exclusive. Mirrors DRBD's disk options where
// they exist (DRBD always opens its backing device exclusively).
namespace Redundancy.Block.Agent.Storage;

public sealed record FileBlockDeviceOptions
{
    /// <summary>
    /// Open with O_DIRECT, bypassing the page cache. I/O is then done in whole 4096-byte blocks through
    /// aligned bounce buffers (read-modify-write for unaligned edges), and the usable size is rounded
    /// down to a multiple of 4096 bytes.
    /// </summary>
    public bool DirectIo { get; init; }

    /// <summary>Open read-only; every write, discard and write-zeroes fails with EROFS.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// Keep others off the disk: O_EXCL for block devices (fails while mounted or held by another
    /// exclusive opener), flock for regular files (LOCK_EX, or LOCK_SH when read-only).
    /// </summary>
    public bool Exclusive { get; init; } = true;

    public static FileBlockDeviceOptions Default { get; } = new();
}

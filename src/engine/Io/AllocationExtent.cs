namespace Redundancy.Block.Engine.Io;

/// <summary>Allocation flags, bit-compatible with NBD's base:allocation context.</summary>
[Flags]
public enum AllocationFlags : uint
{
    /// <summary>Allocated, data may be non-zero.</summary>
    Data = 0,
    /// <summary>Not allocated (a hole).</summary>
    Hole = 1,
    /// <summary>Reads as zeroes.</summary>
    Zero = 2,
}

/// <summary>A run of bytes with the same allocation status.</summary>
public readonly record struct AllocationExtent(long LengthBytes, AllocationFlags Flags);

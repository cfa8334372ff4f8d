// FileBlockDevice's allocation query (NBD base:allocation). Regular files are walked with
// lseek SEEK_DATA/SEEK_HOLE: holes read as zeroes (Hole|Zero), everything else is Data. A block
// device cannot tell, so it reports one Data extent, as the IBlockDevice contract allows.
using System.Runtime.InteropServices;
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Storage;

public sealed partial class FileBlockDevice
{
    /// <summary>Bounds the work of one query; the caller asks again from where the extents end.</summary>
    private const int MaxExtentsPerQuery = 1024;

    private void DescribeAllocation(long offsetBytes, long lengthBytes, List<AllocationExtent> extents)
    {
        long endBytes = offsetBytes + lengthBytes;
        if (IsBlockDevice)
        {
            extents.Add(new AllocationExtent(lengthBytes, AllocationFlags.Data));
            return;
        }

        long position = offsetBytes;
        for (int added = 0; position < endBytes && added < MaxExtentsPerQuery; added++)
        {
            long dataStart = Seek(position, Libc.SEEK_DATA);
            if (dataStart == NoMoreData || dataStart > position)
            {
                long holeEnd = dataStart == NoMoreData ? endBytes : Math.Min(dataStart, endBytes);
                extents.Add(new AllocationExtent(holeEnd - position, AllocationFlags.Hole | AllocationFlags.Zero));
                position = holeEnd;
                continue;
            }

            long holeStart = Seek(position, Libc.SEEK_HOLE);
            // A hole at our position means the file changed under us; Data is always a safe answer.
            long dataEnd = holeStart == NoMoreData || holeStart <= position ? endBytes : Math.Min(holeStart, endBytes);
            extents.Add(new AllocationExtent(dataEnd - position, AllocationFlags.Data));
            position = dataEnd;
        }

        Invariant.Assert(position > offsetBytes, "an allocation query must describe at least one byte");
    }

    private const long NoMoreData = -1;

    /// <summary>lseek SEEK_DATA/SEEK_HOLE; NoMoreData for ENXIO (no data at or after the position).</summary>
    private long Seek(long position, int whence)
    {
        long result;
        try
        {
            result = Libc.LSeek(handle, position, whence);
        }
        catch (ObjectDisposedException)
        {
            throw StorageErrors.Closed(Path, "allocation query");
        }

        if (result >= 0)
        {
            return result;
        }

        int errno = Marshal.GetLastPInvokeError();
        return errno == Libc.ENXIO
            ? NoMoreData
            : throw StorageErrors.Io(Path, whence == Libc.SEEK_DATA ? "lseek(SEEK_DATA)" : "lseek(SEEK_HOLE)",
                position, 0, errno);
    }
}

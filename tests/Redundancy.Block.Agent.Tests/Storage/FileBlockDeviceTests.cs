// FileBlockDevice on a regular file (buffered I/O): data path, durability calls, zeroing, allocation
// reporting, range assertions, exclusivity and error reporting.
using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Tests.Storage;

public sealed class FileBlockDeviceTests : IDisposable
{
    private const long SizeBytes = 8 << 20;
    private const int MiB = 1 << 20;
    private readonly TempDiskFile file = new(SizeBytes);

    public void Dispose() => file.Dispose();

    [Fact]
    public void Open_ReportsFileLengthAndKind()
    {
        using var device = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default);

        Assert.Equal(SizeBytes, device.SizeBytes);
        Assert.False(device.IsBlockDevice);
        Assert.False(device.IsDirectIo);
        Assert.True(device.CanFastZero, "ext4/xfs under RB_TEST_DISK_DIR support ZERO_RANGE and PUNCH_HOLE");
    }

    [Fact]
    public async Task Write_ThenRead_RoundTripsAtOddOffsetsAndLengths()
    {
        using var device = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default);
        var model = new byte[SizeBytes];
        (long Offset, int Length)[] writes = [(12_345, 7_777), (1, 1), (MiB - 3, 9), (SizeBytes - 4_099, 4_099), (15_000, 3 * MiB + 1)];
        for (int i = 0; i < writes.Length; i++)
        {
            byte[] data = TempDiskFile.Pattern(writes[i].Length, seed: i);
            await device.WriteAsync(writes[i].Offset, data, fua: false);
            data.CopyTo(model, writes[i].Offset);
        }

        var whole = new byte[SizeBytes];
        await device.ReadAsync(0, whole);
        Assert.True(model.AsSpan().SequenceEqual(whole), "device contents differ from the model");
        var piece = new byte[333];
        await device.ReadAsync(12_346, piece);
        Assert.True(model.AsSpan(12_346, 333).SequenceEqual(piece));
    }

    [Fact]
    public async Task FuaWriteAndFlush_AreVisibleToAnotherOpenOfTheFile()
    {
        byte[] data = TempDiskFile.Pattern(5_000, seed: 7);
        using (var device = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default))
        {
            await device.WriteAsync(4_000, data, fua: true);
            await device.WriteAsync(100_000, data, fua: false);
            await device.FlushAsync();
        }

        byte[] onDisk = await File.ReadAllBytesAsync(file.Path);
        Assert.True(data.AsSpan().SequenceEqual(onDisk.AsSpan(4_000, 5_000)));
        Assert.True(data.AsSpan().SequenceEqual(onDisk.AsSpan(100_000, 5_000)));
    }

    [Fact]
    public async Task Discard_ReadsZeroAndPunchesAHole()
    {
        using var device = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default);
        byte[] data = TempDiskFile.Pattern(3 * MiB, seed: 1);
        await device.WriteAsync(MiB, data, fua: false);
        await device.FlushAsync();

        await device.DiscardAsync(2 * MiB, MiB);
        await device.DiscardAsync(MiB + 1_000, 8_000); // unaligned: the filesystem zeroes partial blocks

        var contents = new byte[3 * MiB];
        await device.ReadAsync(MiB, contents);
        Array.Clear(data, MiB, MiB);
        Array.Clear(data, 1_000, 8_000);
        Assert.True(data.AsSpan().SequenceEqual(contents), "discarded ranges must read as zeroes, the rest unchanged");
        List<AllocationExtent> extents = await Allocation(device, 2 * MiB, MiB);
        Assert.Equal([new AllocationExtent(MiB, AllocationFlags.Hole | AllocationFlags.Zero)], extents);
    }

    [Fact]
    public async Task WriteZeroes_WithUnmapPunchesAHole_WithoutUnmapKeepsBlocksAllocated()
    {
        using var device = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default);
        await device.WriteAsync(0, TempDiskFile.Pattern(4 * MiB, seed: 2), fua: false);
        await device.FlushAsync();
        ulong allocatedBefore = Libc.Statx(file.Path).Blocks512;

        await device.WriteZeroesAsync(0, 2 * MiB, mayUnmap: false);
        await device.FlushAsync();
        Assert.Equal(allocatedBefore, Libc.Statx(file.Path).Blocks512);

        await device.WriteZeroesAsync(2 * MiB, 2 * MiB, mayUnmap: true);
        await device.FlushAsync();
        Assert.Equal(allocatedBefore - (2 * MiB / 512), Libc.Statx(file.Path).Blocks512);
        var contents = new byte[4 * MiB];
        await device.ReadAsync(0, contents);
        Assert.True(contents.AsSpan().IndexOfAnyExcept((byte)0) < 0, "zeroed range must read as zeroes");
        List<AllocationExtent> extents = await Allocation(device, 2 * MiB, 2 * MiB);
        Assert.Equal([new AllocationExtent(2 * MiB, AllocationFlags.Hole | AllocationFlags.Zero)], extents);
    }

    [Fact]
    public async Task GetAllocation_ReportsHolesAroundDataInTheMiddle()
    {
        using var device = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default);
        await device.WriteAsync(4 * MiB, TempDiskFile.Pattern(64 << 10, seed: 3), fua: false);
        await device.FlushAsync();
        const AllocationFlags hole = AllocationFlags.Hole | AllocationFlags.Zero;

        List<AllocationExtent> whole = await Allocation(device, 0, SizeBytes);
        Assert.Equal(
            [new(4 * MiB, hole), new(64 << 10, AllocationFlags.Data), new(SizeBytes - (4 * MiB) - (64 << 10), hole)],
            whole);
        List<AllocationExtent> fromInsideData = await Allocation(device, (4 * MiB) + 4096, 8192);
        Assert.Equal([new AllocationExtent(8192, AllocationFlags.Data)], fromInsideData);
        List<AllocationExtent> tail = await Allocation(device, SizeBytes - 4096, 4096);
        Assert.Equal([new AllocationExtent(4096, hole)], tail);
    }

    [Fact]
    public async Task OutOfRangeRequests_FailTheInvariant()
    {
        using var device = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default);
        var buffer = new byte[20];

        await Assert.ThrowsAsync<InvariantViolationException>(async () => await device.ReadAsync(SizeBytes - 10, buffer));
        await Assert.ThrowsAsync<InvariantViolationException>(async () => await device.ReadAsync(-1, buffer));
        await Assert.ThrowsAsync<InvariantViolationException>(
            async () => await device.WriteAsync(SizeBytes, buffer, fua: false));
        await Assert.ThrowsAsync<InvariantViolationException>(async () => await device.DiscardAsync(0, SizeBytes + 1));
        await Assert.ThrowsAsync<InvariantViolationException>(
            async () => await device.WriteZeroesAsync(long.MaxValue, 2, mayUnmap: true));
        await Assert.ThrowsAsync<InvariantViolationException>(async () => await device.GetAllocationAsync(0, 0, []));
        await device.ReadAsync(SizeBytes - 20, buffer); // the last bytes themselves are fine
    }

    [Fact]
    public void Exclusive_SecondOpenOfTheSameFileFailsUntilTheFirstIsClosed()
    {
        using (var first = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default))
        {
            var ex = Assert.Throws<IOException>(() => FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default));
            Assert.Contains($"disk {file.Path} is in use", ex.Message, StringComparison.Ordinal);
            var readOnly = new FileBlockDeviceOptions { ReadOnly = true };
            Assert.Throws<IOException>(() => FileBlockDevice.Open(file.Path, readOnly));
        }

        using var again = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default);
        Assert.Equal(SizeBytes, again.SizeBytes);
    }

    [Fact]
    public void Exclusive_ReadOnlyOpensShareButKeepWritersOut()
    {
        var readOnly = new FileBlockDeviceOptions { ReadOnly = true };
        using var first = FileBlockDevice.Open(file.Path, readOnly);
        using var second = FileBlockDevice.Open(file.Path, readOnly);

        var ex = Assert.Throws<IOException>(() => FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default));
        Assert.Contains("is in use", ex.Message, StringComparison.Ordinal);
        using var nonExclusive = FileBlockDevice.Open(file.Path, new FileBlockDeviceOptions { Exclusive = false });
    }

    [Fact]
    public async Task ReadOnly_RefusesChangesWithEROFS()
    {
        using var device = FileBlockDevice.Open(file.Path, new FileBlockDeviceOptions { ReadOnly = true });

        Assert.False(device.CanFastZero);
        var write = await Assert.ThrowsAsync<IOException>(async () => await device.WriteAsync(0, new byte[512], fua: false));
        Assert.Equal(30, write.HResult);
        await Assert.ThrowsAsync<IOException>(async () => await device.DiscardAsync(0, 4096));
        await Assert.ThrowsAsync<IOException>(async () => await device.WriteZeroesAsync(0, 4096, mayUnmap: false));
        await device.ReadAsync(0, new byte[512]);
        await device.FlushAsync();
    }

    [Fact]
    public async Task ReadPastEndOfAShrunkenFile_IsAnIOExceptionNamingPathAndRange()
    {
        // Not exclusive: the flock would (rightly) keep the FileStream below out.
        using var device = FileBlockDevice.Open(file.Path, new FileBlockDeviceOptions { Exclusive = false });
        using (var stream = new FileStream(file.Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            stream.SetLength(SizeBytes - 4096);
        }

        var ex = await Assert.ThrowsAsync<IOException>(async () => await device.ReadAsync(SizeBytes - 8192, new byte[8192]));
        Assert.Contains(file.Path, ex.Message, StringComparison.Ordinal);
        Assert.Contains($"at offset {SizeBytes - 8192}", ex.Message, StringComparison.Ordinal);
        Assert.Contains("end of file", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RequestsAfterDispose_FailWithIOExceptionInsteadOfCrashing()
    {
        var device = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default);
        device.Dispose();

        var read = await Assert.ThrowsAsync<IOException>(async () => await device.ReadAsync(0, new byte[10]));
        Assert.Contains("closed", read.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<IOException>(async () => await device.WriteAsync(0, new byte[10], fua: true));
        await Assert.ThrowsAsync<IOException>(async () => await device.FlushAsync());
        await Assert.ThrowsAsync<IOException>(async () => await device.DiscardAsync(0, 4096));
        await Assert.ThrowsAsync<IOException>(async () => await device.GetAllocationAsync(0, 4096, []));
    }

    [Fact]
    public void Open_RefusesMissingPathsAndDirectoriesWithTheirName()
    {
        string missing = file.Path + ".missing";
        var notFound = Assert.Throws<IOException>(() => FileBlockDevice.Open(missing, FileBlockDeviceOptions.Default));
        Assert.Contains(missing, notFound.Message, StringComparison.Ordinal);
        Assert.Contains("No such file", notFound.Message, StringComparison.Ordinal);

        string directory = System.IO.Path.GetDirectoryName(file.Path)!;
        var notADisk = Assert.Throws<IOException>(() => FileBlockDevice.Open(directory, FileBlockDeviceOptions.Default));
        Assert.Contains("neither a regular file nor a block device", notADisk.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OnTmpfs_CanFastZeroIsFalseAndZeroingFallsBackToWritingZeroes()
    {
        Assert.True(Directory.Exists("/dev/shm"), "this test needs /dev/shm (tmpfs: no fallocate ZERO_RANGE)");
        using var shmFile = new TempDiskFile(MiB, "/dev/shm");
        using var device = FileBlockDevice.Open(shmFile.Path, FileBlockDeviceOptions.Default);
        Assert.False(device.CanFastZero);

        await device.WriteAsync(0, TempDiskFile.Pattern(MiB, seed: 4), fua: false);
        await device.WriteZeroesAsync(100, 300_000, mayUnmap: false);
        await device.DiscardAsync(500_000, 200_000);

        var contents = new byte[MiB];
        await device.ReadAsync(0, contents);
        byte[] expected = TempDiskFile.Pattern(MiB, seed: 4);
        Array.Clear(expected, 100, 300_000);
        Array.Clear(expected, 500_000, 200_000);
        Assert.True(expected.AsSpan().SequenceEqual(contents));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // O_DIRECT: unaligned requests go through pooled native bounce buffers
    public void DataPath_AllocatesNothingPerRequest(bool directIo)
    {
        using var device = FileBlockDevice.Open(file.Path, new FileBlockDeviceOptions { DirectIo = directIo });
        var buffer = new byte[4096];
        var extents = new List<AllocationExtent>(4);
        void Requests()
        {
            Assert.True(device.WriteAsync(8192, buffer, fua: false).IsCompletedSuccessfully);
            Assert.True(device.ReadAsync(8191, buffer).IsCompletedSuccessfully);
            Assert.True(device.FlushAsync().IsCompletedSuccessfully);
            extents.Clear();
            Assert.True(device.GetAllocationAsync(0, 4096, extents).IsCompletedSuccessfully);
        }

        Requests(); // warm up: JIT, lazy handle state
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 100; i++)
        {
            Requests();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    internal static async Task<List<AllocationExtent>> Allocation(IBlockDevice device, long offsetBytes, long lengthBytes)
    {
        var extents = new List<AllocationExtent>();
        await device.GetAllocationAsync(offsetBytes, lengthBytes, extents);
        Assert.NotEmpty(extents);
        Assert.Equal(lengthBytes, extents.Sum(e => e.LengthBytes));
        return extents;
    }
}

// FileBlockDevice on a real kernel block device: a 64 MiB loop device made per test and always
// detached afterwards. Checks the size from BLKGETSIZE64, the data path (buffered and O_DIRECT),
// zeroing through fallocate/BLKZEROOUT with explicit unaligned edges, and O_EXCL exclusivity.
using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Tests.Storage;

public sealed class LoopBlockDeviceTests
{
    private const long SizeBytes = 64 << 20;

    [LoopDeviceFact]
    public async Task LoopDevice_SizeFromKernelAndRoundTrip()
    {
        using var loop = new LoopDevice(SizeBytes);
        using var device = FileBlockDevice.Open(loop.DevicePath, FileBlockDeviceOptions.Default);
        Assert.True(device.IsBlockDevice);
        Assert.Equal(SizeBytes, device.SizeBytes);
        Assert.True(device.CanFastZero, "loop devices accept REQ_OP_WRITE_ZEROES");

        byte[] data = TempDiskFile.Pattern(100_003, seed: 40);
        await device.WriteAsync(1_234_567, data, fua: true);
        await device.WriteAsync(SizeBytes - 3, data.AsMemory(0, 3), fua: false);
        await device.FlushAsync();
        var back = new byte[100_003];
        await device.ReadAsync(1_234_567, back);
        Assert.Equal(data, back);
        var last = new byte[3];
        await device.ReadAsync(SizeBytes - 3, last);
        Assert.Equal(data.AsSpan(0, 3).ToArray(), last);
        List<AllocationExtent> extents = await FileBlockDeviceTests.Allocation(device, 0, SizeBytes);
        Assert.Equal([new AllocationExtent(SizeBytes, AllocationFlags.Data)], extents);
    }

    [LoopDeviceFact]
    public async Task LoopDevice_DiscardAndWriteZeroesReadAsZeroes()
    {
        using var loop = new LoopDevice(SizeBytes);
        using var device = FileBlockDevice.Open(loop.DevicePath, FileBlockDeviceOptions.Default);
        const int regionBytes = 8 << 20;
        byte[] expected = TempDiskFile.Pattern(regionBytes, seed: 41);
        await device.WriteAsync(0, expected, fua: false);
        await device.FlushAsync();

        await device.DiscardAsync(1_000, 2_000_000);               // unaligned head and tail
        await device.WriteZeroesAsync(3_000_001, 1_500_000, mayUnmap: false);
        await device.WriteZeroesAsync(5 << 20, 1 << 20, mayUnmap: true);
        await device.DiscardAsync(7_000_000, 100);                  // inside one block
        Array.Clear(expected, 1_000, 2_000_000);
        Array.Clear(expected, 3_000_001, 1_500_000);
        Array.Clear(expected, 5 << 20, 1 << 20);
        Array.Clear(expected, 7_000_000, 100);

        var contents = new byte[regionBytes];
        await device.ReadAsync(0, contents);
        Assert.True(expected.AsSpan().SequenceEqual(contents), "zeroed ranges must read as zeroes, the rest unchanged");
    }

    [LoopDeviceFact]
    public async Task LoopDevice_DirectIoRoundTripWithUnalignedRequests()
    {
        using var loop = new LoopDevice(SizeBytes);
        using var device = FileBlockDevice.Open(loop.DevicePath, new FileBlockDeviceOptions { DirectIo = true });
        Assert.Equal(SizeBytes, device.SizeBytes);
        byte[] model = TempDiskFile.Pattern(1 << 20, seed: 42);
        await device.WriteAsync(0, model, fua: false);
        byte[] patch = TempDiskFile.Pattern(9_999, seed: 43);
        await device.WriteAsync(4_097, patch, fua: true);
        patch.CopyTo(model, 4_097);
        await device.DiscardAsync(600_001, 70_000);
        Array.Clear(model, 600_001, 70_000);

        var back = new byte[1 << 20];
        await device.ReadAsync(0, back);
        Assert.True(model.AsSpan().SequenceEqual(back));
    }

    [LoopDeviceFact]
    public void LoopDevice_ExclusiveOpenKeepsOthersOut()
    {
        using var loop = new LoopDevice(SizeBytes);
        using (var first = FileBlockDevice.Open(loop.DevicePath, FileBlockDeviceOptions.Default))
        {
            var ex = Assert.Throws<IOException>(() => FileBlockDevice.Open(loop.DevicePath, FileBlockDeviceOptions.Default));
            Assert.Contains($"disk {loop.DevicePath} is in use", ex.Message, StringComparison.Ordinal);
            using var shared = FileBlockDevice.Open(loop.DevicePath, new FileBlockDeviceOptions { Exclusive = false });
            Assert.Equal(SizeBytes, shared.SizeBytes);
        }

        using var again = FileBlockDevice.Open(loop.DevicePath, FileBlockDeviceOptions.Default);
        Assert.Equal(SizeBytes, again.SizeBytes);
    }
}

// FaultInjectingBlockDevice: switched-on faults surface as IOException with the chosen errno, never
// reach the inner device, and stop when switched off.
using Redundancy.Block.Agent.Storage;

namespace Redundancy.Block.Agent.Tests.Storage;

public sealed class FaultInjectingBlockDeviceTests : IDisposable
{
    private readonly TempDiskFile file = new(1 << 20);
    private readonly FaultInjectingBlockDevice device;

    public FaultInjectingBlockDeviceTests() =>
        device = new FaultInjectingBlockDevice(FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default));

    public void Dispose()
    {
        device.Dispose();
        file.Dispose();
    }

    [Fact]
    public async Task FailReads_RaisesIOExceptionWithEIO()
    {
        device.FailReads = true;
        var ex = await Assert.ThrowsAsync<IOException>(async () => await device.ReadAsync(4096, new byte[512]));
        Assert.Equal(5, ex.HResult);
        Assert.Contains("Read of 512 bytes at offset 4096", ex.Message, StringComparison.Ordinal);
        await device.WriteAsync(0, new byte[512], fua: false); // writes still work
        device.FailReads = false;
        await device.ReadAsync(4096, new byte[512]);
        Assert.Equal(1, device.InjectedFaults);
    }

    [Fact]
    public async Task FailWrites_FailsEveryChangeAndLeavesTheDiskUntouched()
    {
        device.FailWrites = true;
        byte[] data = TempDiskFile.Pattern(4096, seed: 30);
        await Assert.ThrowsAsync<IOException>(async () => await device.WriteAsync(0, data, fua: false));
        await Assert.ThrowsAsync<IOException>(async () => await device.DiscardAsync(0, 4096));
        await Assert.ThrowsAsync<IOException>(async () => await device.WriteZeroesAsync(0, 4096, mayUnmap: false));

        var contents = new byte[4096];
        await device.ReadAsync(0, contents);
        Assert.False(contents.AsSpan().ContainsAnyExcept((byte)0), "a failed write must not reach the disk");
        Assert.Equal(3, device.InjectedFaults);
    }

    [Fact]
    public async Task FailFlush_FailsFlushAndFuaWritesOnly()
    {
        device.FailFlush = true;
        device.Errno = 28; // ENOSPC
        var flush = await Assert.ThrowsAsync<IOException>(async () => await device.FlushAsync());
        Assert.Equal(28, flush.HResult);
        await Assert.ThrowsAsync<IOException>(async () => await device.WriteAsync(0, new byte[1], fua: true));
        await device.WriteAsync(0, new byte[1], fua: false);
    }

    [Fact]
    public async Task FailWhen_FailsOnlyTheMatchingRange()
    {
        device.FailWhen = (operation, offsetBytes, lengthBytes) =>
            operation == BlockOperation.Read && offsetBytes < 8192 && offsetBytes + lengthBytes > 4096;
        await device.ReadAsync(0, new byte[4096]);
        await Assert.ThrowsAsync<IOException>(async () => await device.ReadAsync(4000, new byte[200]));
        await device.ReadAsync(8192, new byte[4096]);
        await device.WriteAsync(4096, new byte[10], fua: false);
        Assert.Equal(1, device.InjectedFaults);
    }
}

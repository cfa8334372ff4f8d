// SubrangeBlockDevice: offsets are shifted onto the inner device and every request stays in range.
using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Tests.Storage;

public sealed class SubrangeBlockDeviceTests : IDisposable
{
    private const long InnerBytes = 4 << 20;
    private const long ViewOffsetBytes = 1 << 20;
    private const long ViewBytes = 2 << 20;
    private readonly TempDiskFile file = new(InnerBytes);
    private readonly FileBlockDevice inner;
    private readonly SubrangeBlockDevice view;

    public SubrangeBlockDeviceTests()
    {
        inner = FileBlockDevice.Open(file.Path, FileBlockDeviceOptions.Default);
        view = new SubrangeBlockDevice(inner, ViewOffsetBytes, ViewBytes);
    }

    public void Dispose()
    {
        view.Dispose();
        inner.Dispose();
        file.Dispose();
    }

    [Fact]
    public async Task ReadsAndWrites_AreShiftedByTheViewOffset()
    {
        byte[] data = TempDiskFile.Pattern(1_000, seed: 20);
        await view.WriteAsync(123, data, fua: false);

        var seenByInner = new byte[1_000];
        await inner.ReadAsync(ViewOffsetBytes + 123, seenByInner);
        Assert.Equal(data, seenByInner);
        var seenByView = new byte[1_000];
        await view.ReadAsync(123, seenByView);
        Assert.Equal(data, seenByView);
        Assert.Equal(ViewBytes, view.SizeBytes);
        Assert.Equal(inner.CanFastZero, view.CanFastZero);
    }

    [Fact]
    public async Task ZeroingAndAllocation_AreShiftedByTheViewOffset()
    {
        await inner.WriteAsync(0, TempDiskFile.Pattern((int)InnerBytes, seed: 21), fua: false);
        await view.DiscardAsync(0, 4096);
        await view.WriteZeroesAsync(ViewBytes - 4096, 4096, mayUnmap: true);

        var edge = new byte[8192];
        await inner.ReadAsync(ViewOffsetBytes - 4096, edge);
        Assert.True(edge.AsSpan(0, 4096).ContainsAnyExcept((byte)0),
            "bytes before the view must be untouched");
        Assert.False(edge.AsSpan(4096).ContainsAnyExcept((byte)0), "the view's first block must be zero");
        var extents = await FileBlockDeviceTests.Allocation(view, ViewBytes - 4096, 4096);
        Assert.Equal([new AllocationExtent(4096, AllocationFlags.Hole | AllocationFlags.Zero)], extents);
        var after = new byte[4096];
        await inner.ReadAsync(ViewOffsetBytes + ViewBytes, after);
        Assert.True(after.AsSpan().ContainsAnyExcept((byte)0), "bytes after the view must be untouched");
    }

    [Fact]
    public async Task RequestsOutsideTheView_FailTheInvariant()
    {
        await Assert.ThrowsAsync<InvariantViolationException>(async () => await view.ReadAsync(ViewBytes - 1, new byte[2]));
        await Assert.ThrowsAsync<InvariantViolationException>(async () => await view.WriteAsync(-1, new byte[2], fua: false));
        await Assert.ThrowsAsync<InvariantViolationException>(async () => await view.DiscardAsync(ViewBytes, 1));
        await Assert.ThrowsAsync<InvariantViolationException>(
            async () => await view.WriteZeroesAsync(1, ViewBytes, mayUnmap: false));
        await Assert.ThrowsAsync<InvariantViolationException>(async () => await view.GetAllocationAsync(ViewBytes, 1, []));
    }

    [Fact]
    public void Construction_RejectsRangesThatDoNotFit()
    {
        Assert.Throws<InvariantViolationException>(() => new SubrangeBlockDevice(inner, -1, 10));
        Assert.Throws<InvariantViolationException>(() => new SubrangeBlockDevice(inner, 0, InnerBytes + 1));
        Assert.Throws<InvariantViolationException>(() => new SubrangeBlockDevice(inner, InnerBytes - 10, 11));
        using var whole = new SubrangeBlockDevice(inner, 0, InnerBytes);
        Assert.Equal(InnerBytes, whole.SizeBytes);
    }

    [Fact]
    public async Task DisposingTheView_LeavesTheInnerDeviceOpen()
    {
        view.Dispose();
        await inner.ReadAsync(0, new byte[16]);
    }
}

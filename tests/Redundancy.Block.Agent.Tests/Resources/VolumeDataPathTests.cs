// The volume data path consumes every result its disk returns, also one that completed before it
// looked: the direct I/O queue's pooled requests go back to the pool only in GetResult, and a data
// path that only checked IsCompletedSuccessfully leaked them until every request fell back to
// synchronous I/O.
using System.Threading.Tasks.Sources;
using Redundancy.Block.Agent.Resources;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Tests.Resources;

public sealed class VolumeDataPathTests
{
    [Fact]
    public async Task A_result_that_completed_at_once_is_still_consumed()
    {
        var disk = new PooledResultDisk();
        using var path = new VolumeDataPath("r0/0", disk.SizeBytes, _ => { });
        path.Connect(disk);
        for (int i = 0; i < 10; i++)
        {
            await path.WriteAsync(i * 4096L, new byte[4096], fua: false);
            await path.ReadAsync(i * 4096L, new byte[4096]);
        }

        Assert.Equal(20, disk.Started);
        Assert.Equal(20, disk.Consumed);
    }

    /// <summary>A disk whose every result is a pooled source that has already completed when returned.</summary>
    private sealed class PooledResultDisk : IBlockDevice, IValueTaskSource
    {
        private ManualResetValueTaskSourceCore<bool> core;

        public long SizeBytes => 1 << 20;

        public bool CanFastZero => false;

        public int Started { get; private set; }

        public int Consumed { get; private set; }

        public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) => Completed();

        public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default) => Completed();

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => default;

        public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) => default;

        public ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) => default;

        public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default) => default;

        public void Dispose()
        {
        }

        public ValueTaskSourceStatus GetStatus(short token) => core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            core.OnCompleted(continuation, state, token, flags);

        public void GetResult(short token)
        {
            core.GetResult(token);
            Consumed++;
            core.Reset();
        }

        private ValueTask Completed()
        {
            // The previous result must have been consumed (Reset) before the source is used again.
            Assert.Equal(Started, Consumed);
            Started++;
            core.SetResult(true);
            return new ValueTask(this, core.Version);
        }
    }
}

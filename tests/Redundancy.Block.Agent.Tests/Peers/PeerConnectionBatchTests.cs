// Send batches on a PeerConnection: frames sent while the thread's SendBatch is open are held and
// leave when it closes, in order; another thread's send, a large frame or a close pushes them first.
// Each batch runs on a thread of its own, without awaits inside (a batch belongs to a thread).
using System.Buffers;
using Redundancy.Block.Agent.Batching;
using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Tests.Peers;

public sealed class PeerConnectionBatchTests
{
    /// <summary>Long enough for an unheld frame to cross loopback many times over.</summary>
    private static readonly TimeSpan HeldFor = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task Frames_sent_in_a_batch_are_held_until_it_closes_then_arrive_in_order()
    {
        var (a, b, sink) = await StartedPairAsync();
        await using var _ = a;
        await using var __ = b;

        await OnThreadAsync(() =>
        {
            SendBatch.Open();
            for (ulong epoch = 1; epoch <= 10; epoch++)
            {
                Assert.True(a.SendRaw(Barrier(epoch)));
            }

            Thread.Sleep(HeldFor);
            Assert.Empty(sink.Frames);
            SendBatch.Close();
        });

        await sink.WaitForAsync(10);
        Assert.Equal(Enumerable.Range(1, 10).Select(e => (ulong)e), Epochs(sink));
        Assert.Equal(a.BytesSent, b.BytesReceived);
    }

    [Fact]
    public async Task A_nested_batch_sends_only_when_the_outermost_closes()
    {
        var (a, b, sink) = await StartedPairAsync();
        await using var _ = a;
        await using var __ = b;

        await OnThreadAsync(() =>
        {
            SendBatch.Open();
            SendBatch.Open();
            Assert.True(a.SendRaw(Barrier(1)));
            SendBatch.Close();
            Thread.Sleep(HeldFor);
            Assert.Empty(sink.Frames);
            SendBatch.Close();
        });

        await sink.WaitForAsync(1);
    }

    [Fact]
    public async Task Frames_held_past_the_limit_leave_while_the_batch_stays_open()
    {
        var (a, b, sink) = await StartedPairAsync();
        await using var _ = a;
        await using var __ = b;

        await OnThreadAsync(() =>
        {
            SendBatch.Open();
            Assert.True(a.SendRaw(Barrier(1)));
            Thread.Sleep(TimeSpan.FromMicroseconds(SendBatch.HoldLimitMicroseconds * 20));
            SendBatch.FlushIfHeldTooLong(); // held long enough: it leaves now
            Assert.True(sink.WaitForAsync(1).Wait(PeerTestSupport.Patience));
            Assert.True(a.SendRaw(Barrier(2))); // the batch is still open: held again
            Thread.Sleep(HeldFor);
            Assert.Single(sink.Frames);
            SendBatch.Close();
        });

        await sink.WaitForAsync(1);
        Assert.Equal([1UL, 2UL], Epochs(sink));
    }

    [Fact]
    public async Task Another_threads_send_pushes_the_held_frames_ahead_of_its_own()
    {
        var (a, b, sink) = await StartedPairAsync();
        await using var _ = a;
        await using var __ = b;
        using var held = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();

        Task batch = OnThreadAsync(() =>
        {
            SendBatch.Open();
            Assert.True(a.SendRaw(Barrier(1)));
            Assert.True(a.SendRaw(Barrier(2)));
            held.Set();
            Assert.True(release.Wait(PeerTestSupport.Patience));
            SendBatch.Close(); // nothing left to send: the other thread pushed it
        });

        Assert.True(held.Wait(PeerTestSupport.Patience));
        Assert.True(a.SendRaw(Barrier(3))); // this test's thread has no batch open
        await sink.WaitForAsync(3);
        release.Set();
        await batch;
        Assert.Equal([1UL, 2UL, 3UL], Epochs(sink));
        Assert.Equal(a.BytesSent, b.BytesReceived);
    }

    [Fact]
    public async Task A_large_frame_is_not_held_and_goes_out_behind_the_held_ones()
    {
        var (a, b, sink) = await StartedPairAsync();
        await using var _ = a;
        await using var __ = b;
        byte[] block = PeerTestSupport.Pattern(64 * 1024, seed: 7);

        await OnThreadAsync(() =>
        {
            SendBatch.Open();
            Assert.True(a.SendRaw(Barrier(1)));
            Assert.True(a.SendFrame(0, Data(offsetBytes: 2, block), block)); // typed sends are never held
            Assert.True(a.SendRaw(Frame(Data(offsetBytes: 3, block), block))); // 64 KiB: over what a batch holds
            Assert.True(sink.WaitForAsync(3).Wait(PeerTestSupport.Patience));
            SendBatch.Close();
        });

        Assert.Equal([1UL, 2UL, 3UL], Epochs(sink));
        Assert.Equal(block, sink.Frames.ElementAt(2).Payload.AsSpan(DataMessage.Size).ToArray());
    }

    [Fact]
    public async Task A_local_close_sends_the_held_frames_before_the_end_of_stream()
    {
        var (a, b, sink) = await StartedPairAsync(startB: false);
        await using var _ = a;
        await using var __ = b;
        var closed = new CloseRecorder();
        b.Start(sink.OnFrame, closed.OnClosed);

        await OnThreadAsync(() =>
        {
            SendBatch.Open();
            Assert.True(a.SendRaw(Barrier(1)));
            a.Close("done");
            Assert.False(a.SendRaw(Barrier(2)));
            SendBatch.Close();
        });

        await sink.WaitForAsync(1);
        Assert.Equal([1UL], Epochs(sink));
        Assert.Equal(PeerCloseKind.PeerClosed, (await closed.FirstAsync()).Kind);
    }

    /// <summary>A started pair; B's frames go to the returned sink (the close test starts B itself).</summary>
    private static async Task<(PeerConnection A, PeerConnection B, FrameSink Sink)> StartedPairAsync(bool startB = true)
    {
        var (a, b) = await PeerTestSupport.ConnectionPairAsync();
        b.SetMaxPayloadBytes(1 << 20);
        var sink = new FrameSink();
        a.Start((in FrameHeader _, in ReadOnlySequence<byte> _) => { }, _ => { });
        if (startB)
        {
            b.Start(sink.OnFrame, _ => { });
        }

        return (a, b, sink);
    }

    private static byte[] Barrier(ulong epoch) => Frame(new BarrierMessage(epoch), []);

    private static DataMessage Data(ulong offsetBytes, byte[] block) => new(offsetBytes, (uint)block.Length, 1, 1, DataFlags.None);

    private static byte[] Frame<T>(in T message, byte[] trailing)
        where T : struct, IPeerMessage<T>
    {
        var writer = new ArrayBufferWriter<byte>();
        FrameWriter.Write(writer, 0, in message, trailing.Length);
        writer.Write(trailing);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>The first 8 payload bytes of every received frame: a Barrier's epoch, a Data frame's offset.</summary>
    private static List<ulong> Epochs(FrameSink sink) =>
        [.. sink.Frames.Select(f => System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(f.Payload))];

    /// <summary>Runs <paramref name="body"/> on a dedicated thread (a batch is the thread's).</summary>
    private static Task OnThreadAsync(Action body) =>
        Task.Factory.StartNew(body, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
}

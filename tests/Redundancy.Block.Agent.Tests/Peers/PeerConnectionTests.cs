// PeerConnection over real loopback sockets: ordering under concurrent senders, large frames split
// across receives, payload limits, protocol errors, local and remote closes.
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Tests.Peers;

public sealed class PeerConnectionTests
{
    [Fact]
    public async Task Frames_from_concurrent_senders_arrive_complete_and_in_per_sender_order_both_ways()
    {
        const int Threads = 4, PerThread = 1000;
        var (a, b) = await PeerTestSupport.ConnectionPairAsync();
        await using var _ = a;
        await using var __ = b;
        var sinkA = new FrameSink();
        var sinkB = new FrameSink();
        a.Start(sinkA.OnFrame, _ => { });
        b.Start(sinkB.OnFrame, _ => { });

        var senders = new List<Task>();
        foreach (PeerConnection from in new[] { a, b })
        {
            for (int t = 0; t < Threads; t++)
            {
                int thread = t;
                senders.Add(Task.Run(() =>
                {
                    for (int i = 0; i < PerThread; i++)
                    {
                        Assert.True(from.SendFrame(0, new BarrierMessage(((ulong)thread << 32) | (uint)i)));
                    }
                }));
            }
        }

        await Task.WhenAll(senders);
        await sinkA.WaitForAsync(Threads * PerThread);
        await sinkB.WaitForAsync(Threads * PerThread);
        foreach (var (sink, sender, receiver) in new[] { (sinkB, a, b), (sinkA, b, a) })
        {
            var next = new uint[Threads];
            foreach (var (header, payload) in sink.Frames)
            {
                Assert.Equal(MessageType.Barrier, header.Type);
                Assert.True(BarrierMessage.TryRead(payload, out BarrierMessage barrier, out string? error), error);
                int thread = (int)(barrier.Epoch >> 32);
                Assert.Equal(next[thread]++, (uint)barrier.Epoch);
            }

            Assert.All(next, count => Assert.Equal((uint)PerThread, count));
            Assert.Equal(Threads * PerThread, sender.FramesSent);
            Assert.Equal(Threads * PerThread, receiver.FramesReceived);
            Assert.Equal(sender.BytesSent, receiver.BytesReceived);
            Assert.Equal(Threads * PerThread * (FrameHeader.Size + BarrierMessage.Size), receiver.BytesReceived);
        }
    }

    [Fact]
    public async Task Large_frames_split_across_receives_arrive_intact()
    {
        const int PayloadBytes = 1 << 20;
        var (a, b, sink) = await PeerTestSupport.SendingPairAsync(new PeerConnectionOptions { ReceiveBufferBytes = 16 << 10 });
        await using var _ = a;
        await using var __ = b;

        byte[][] blocks = [.. Enumerable.Range(0, 3).Select(seed => PeerTestSupport.Pattern(PayloadBytes, seed))];
        for (int i = 0; i < blocks.Length; i++)
        {
            var data = new DataMessage((ulong)i * PayloadBytes, PayloadBytes, (ulong)i, (ulong)i, DataFlags.None);
            Assert.True(a.SendFrame(1, data, blocks[i]));
        }

        await sink.WaitForAsync(blocks.Length);
        int index = 0;
        foreach (var (header, payload) in sink.Frames)
        {
            Assert.Equal(MessageType.Data, header.Type);
            Assert.Equal((ushort)1, header.Volume);
            Assert.Equal((uint)(DataMessage.Size + PayloadBytes), header.PayloadLengthBytes);
            Assert.True(DataMessage.TryRead(payload, out DataMessage data, out string? error), error);
            Assert.Equal((ulong)index, data.RequestId);
            Assert.True(payload.AsSpan(DataMessage.Size).SequenceEqual(blocks[index]), $"block {index} differs");
            index++;
        }
    }

    [Fact]
    public async Task Once_large_frames_have_left_nothing_counts_as_queued_so_small_frames_go_straight_to_the_socket()
    {
        // Large frames go through the send pipe; while it holds anything every frame queues behind
        // it. Senders on two threads keep writing while the send loop drains, as the NBD session and
        // the receive loop of a busy Primary do.
        var (a, b, sink) = await PeerTestSupport.SendingPairAsync();
        await using var _ = a;
        await using var __ = b;
        const int FramesPerSender = 48;
        const int PayloadBytes = 1 << 20;
        byte[] block = PeerTestSupport.Pattern(PayloadBytes, 7);

        Task Sender(int sender) => Task.Run(() =>
        {
            byte[] head = new byte[FrameHeader.Size + DataMessage.Size];
            byte[] barrier = new byte[FrameHeader.Size + BarrierMessage.Size];
            for (int i = 0; i < FramesPerSender; i++)
            {
                ulong id = (ulong)(sender * FramesPerSender + i);
                FrameWriter.Write(head, 0, new DataMessage(id * PayloadBytes, PayloadBytes, id, 1, DataFlags.None), PayloadBytes);
                Assert.True(a.SendRaw(head, block));
                FrameWriter.Write(barrier, 0, new BarrierMessage(id), 0);
                Assert.True(a.SendRaw(barrier));
            }
        });
        await Task.WhenAll(Sender(0), Sender(1));
        await sink.WaitForAsync(4 * FramesPerSender);
        Assert.Equal(a.BytesSent, b.BytesReceived);

        // Everything arrived, so the send loop has sent it all: within moments it counts nothing queued.
        await PeerTestSupport.WaitUntilAsync(() => a.QueuedBytes == 0, () => $"{a.QueuedBytes} bytes still counted as queued");
    }

    [Theory]
    [InlineData(4 << 10)] // joined into one buffer, sent by the direct path
    [InlineData(1 << 20)] // copied into the send pipe piece by piece
    public async Task A_frame_sent_as_head_and_payload_arrives_whole_and_in_order_with_the_others(int payloadBytes)
    {
        var (a, b, sink) = await PeerTestSupport.SendingPairAsync();
        await using var _ = a;
        await using var __ = b;

        byte[][] blocks = [.. Enumerable.Range(0, 3).Select(seed => PeerTestSupport.Pattern(payloadBytes, seed))];
        for (int i = 0; i < blocks.Length; i++)
        {
            var data = new DataMessage((ulong)i * (ulong)payloadBytes, (uint)payloadBytes, (ulong)i, (ulong)i, DataFlags.None);
            byte[] head = new byte[FrameHeader.Size + DataMessage.Size];
            Assert.Equal(head.Length, FrameWriter.Write(head, 1, data, payloadBytes));
            Assert.True(a.SendRaw(head, blocks[i]));
            Assert.True(a.SendFrame(0, new BarrierMessage((ulong)i)));
        }

        await sink.WaitForAsync(2 * blocks.Length);
        var frames = sink.Frames.ToArray();
        for (int i = 0; i < blocks.Length; i++)
        {
            var (header, payload) = frames[2 * i];
            Assert.Equal(MessageType.Data, header.Type);
            Assert.Equal((ushort)1, header.Volume);
            Assert.True(DataMessage.TryRead(payload, out DataMessage data, out string? error), error);
            Assert.Equal((ulong)i, data.RequestId);
            Assert.True(payload.AsSpan(DataMessage.Size).SequenceEqual(blocks[i]), $"block {i} differs");
            Assert.Equal(MessageType.Barrier, frames[2 * i + 1].Header.Type);
        }
        Assert.Equal(a.BytesSent, b.BytesReceived);
    }

    [Fact]
    public async Task A_frame_over_the_handshake_limit_closes_but_a_raised_limit_lets_it_through()
    {
        var block = PeerTestSupport.Pattern(8192, 7);
        var data = new DataMessage(0, 8192, 1, 1, DataFlags.None);

        // Before negotiation: 8 KiB is over the 4 KiB handshake limit.
        var (a, b) = await PeerTestSupport.ConnectionPairAsync();
        var closedB = new CloseRecorder();
        var sink = new FrameSink();
        a.Start((in FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => { }, _ => { });
        b.Start(sink.OnFrame, closedB.OnClosed);
        Assert.True(a.SendFrame(0, data, block));
        PeerCloseReason reason = await closedB.FirstAsync();
        Assert.Equal(PeerCloseKind.FrameError, reason.Kind);
        Assert.Contains("exceeds the maximum of 4096", reason.Message, StringComparison.Ordinal);
        Assert.Empty(sink.Frames);
        await a.DisposeAsync();
        await b.DisposeAsync();

        // The receiver raises its limit while handling Features; the Data frame right behind it passes.
        (a, b) = await PeerTestSupport.ConnectionPairAsync();
        await using var _ = a;
        await using var __ = b;
        sink = new FrameSink();
        PeerConnection receiver = b;
        b.Start((in FrameHeader header, in System.Buffers.ReadOnlySequence<byte> payload) =>
        {
            if (header.Type == MessageType.Features)
            {
                receiver.SetMaxPayloadBytes(1 << 20);
            }

            sink.OnFrame(header, payload);
        }, _ => { });
        a.Start((in FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => { }, _ => { });
        Assert.True(a.SendFrame(0, new FeaturesMessage(1, 1, FeatureFlags.None, 1 << 20)));
        Assert.True(a.SendFrame(0, data, block));
        await sink.WaitForAsync(2);
        Assert.True(sink.Frames.Last().Payload.AsSpan(DataMessage.Size).SequenceEqual(block));
        Assert.Null(b.CloseReason);
    }

    [Fact]
    public async Task A_corrupt_header_closes_with_the_reason_and_the_peer_sees_the_close()
    {
        var (a, b) = await PeerTestSupport.ConnectionPairAsync();
        await using var _ = a;
        await using var __ = b;
        var closedA = new CloseRecorder();
        var closedB = new CloseRecorder();
        var sink = new FrameSink();
        a.Start((in FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => { }, closedA.OnClosed);
        b.Start(sink.OnFrame, closedB.OnClosed);

        Assert.True(a.SendFrame(0, new BarrierMessage(1)));
        Assert.True(a.SendRaw(Enumerable.Repeat((byte)0xAB, FrameHeader.Size).ToArray()));

        PeerCloseReason reasonB = await closedB.FirstAsync();
        Assert.Equal(PeerCloseKind.FrameError, reasonB.Kind);
        Assert.Contains("bad frame magic 0xABABABAB", reasonB.Message, StringComparison.Ordinal);
        PeerCloseReason reasonA = await closedA.FirstAsync();
        Assert.Contains(reasonA.Kind, new[] { PeerCloseKind.PeerClosed, PeerCloseKind.ConnectionReset });
        Assert.Single(sink.Frames);
        Assert.False(b.SendFrame(0, new BarrierMessage(2)));
    }

    [Fact]
    public async Task A_local_close_sends_what_was_queued_then_the_peer_sees_end_of_stream()
    {
        var (a, b) = await PeerTestSupport.ConnectionPairAsync();
        await using var _ = a;
        await using var __ = b;
        var closedA = new CloseRecorder();
        var closedB = new CloseRecorder();
        var sink = new FrameSink();
        a.Start((in FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => { }, closedA.OnClosed);
        b.Start(sink.OnFrame, closedB.OnClosed);

        for (int i = 0; i < 100; i++)
        {
            Assert.True(a.SendFrame(0, new BarrierMessage((ulong)i)));
        }

        a.Close("disconnect requested");
        Assert.False(a.SendFrame(0, new BarrierMessage(100)));
        Assert.Equal(new PeerCloseReason(PeerCloseKind.LocalClose, "disconnect requested"), await closedA.FirstAsync());
        Assert.Equal(PeerCloseKind.PeerClosed, (await closedB.FirstAsync()).Kind);
        Assert.Equal(100, sink.Frames.Count);
    }

    [Fact]
    public async Task Closing_an_unstarted_connection_with_unread_bytes_ends_the_peer_stream_without_a_reset()
    {
        // What the listener does to a connection that sent no Hello in time: its last bytes may still
        // be unread in the socket when the timeout closes it. The peer must see end of stream.
        var (client, server) = await PeerTestSupport.SocketPairAsync();
        using var _ = client;
        client.Send(new byte[36]);
        Assert.True(server.Poll(PeerTestSupport.Patience, SelectMode.SelectRead), "the bytes never arrived");
        Assert.Equal(36, server.Available);

        var accepted = new PeerConnection(server, "peer 127.0.0.1", new PeerConnectionOptions(), NullLogger.Instance);
        accepted.Close("no Hello within 200 ms");
        await accepted.DisposeAsync();

        client.ReceiveTimeout = (int)PeerTestSupport.Patience.TotalMilliseconds;
        Assert.Equal(0, client.Receive(new byte[16])); // a reset would throw SocketException (ConnectionReset)
    }

    [Fact]
    public async Task Disposal_closes_both_sides_and_fires_Closed_exactly_once()
    {
        var (a, b) = await PeerTestSupport.ConnectionPairAsync();
        var closedA = new CloseRecorder();
        var closedB = new CloseRecorder();
        a.Start((in FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => { }, closedA.OnClosed);
        b.Start((in FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => { }, closedB.OnClosed);

        await a.DisposeAsync();
        a.Close("again");
        await a.DisposeAsync();
        Assert.Equal(PeerCloseKind.LocalClose, (await closedA.FirstAsync()).Kind);
        Assert.Equal(PeerCloseKind.PeerClosed, (await closedB.FirstAsync()).Kind);
        await b.DisposeAsync();
        Assert.Equal(1, closedA.Calls);
        Assert.Equal(1, closedB.Calls);
        Assert.Equal("connection closed locally", a.CloseReason!.Message);
    }

    [Fact]
    public async Task A_handler_that_throws_closes_the_connection_with_the_error()
    {
        var (a, b) = await PeerTestSupport.ConnectionPairAsync();
        await using var _ = a;
        await using var __ = b;
        var closedB = new CloseRecorder();
        a.Start((in FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => { }, _ => { });
        b.Start((in FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => throw new InvalidDataException("engine bug"), closedB.OnClosed);
        Assert.True(a.SendFrame(0, new BarrierMessage(1)));
        PeerCloseReason reason = await closedB.FirstAsync();
        Assert.Equal(PeerCloseKind.HandlerFailed, reason.Kind);
        Assert.Contains("engine bug", reason.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_paused_send_pipe_makes_senders_wait_until_the_peer_reads()
    {
        var options = new PeerConnectionOptions { SocketBufferBytes = 64 << 10, SendPauseThresholdBytes = 256 << 10, SendResumeThresholdBytes = 128 << 10 };
        var (a, b) = await PeerTestSupport.ConnectionPairAsync(options);
        await using var _ = a;
        await using var __ = b;
        b.SetMaxPayloadBytes(1 << 20);
        a.Start((in FrameHeader h, in System.Buffers.ReadOnlySequence<byte> p) => { }, _ => { });
        byte[] block = PeerTestSupport.Pattern(64 << 10, 3);
        var data = new DataMessage(0, (uint)block.Length, 1, 1, DataFlags.None);
        for (int i = 0; i < 64; i++)
        {
            Assert.True(a.SendFrame(0, data, block)); // 4 MiB: far more than socket buffers and pipe threshold
        }

        Task capacity = a.WaitForSendCapacityAsync();
        await Task.Delay(100);
        Assert.False(capacity.IsCompleted, "the peer reads nothing yet, so the queue stays over the threshold");

        var sink = new FrameSink();
        b.Start(sink.OnFrame, _ => { });
        await capacity.WaitAsync(PeerTestSupport.Patience);
        await sink.WaitForAsync(64);
    }
}

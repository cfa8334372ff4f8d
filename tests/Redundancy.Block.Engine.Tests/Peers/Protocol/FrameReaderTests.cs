using System.Buffers;
using System.Buffers.Binary;
using Redundancy.Block.Engine.Peers.Protocol;
using static Redundancy.Block.Engine.Tests.Peers.Protocol.WireTestHelpers;

namespace Redundancy.Block.Engine.Tests.Peers.Protocol;

public class FrameReaderTests
{
    private const int Max = 1 << 20;

    private static byte[] Stream()
    {
        byte[] data = Enumerable.Range(0, 8192).Select(i => (byte)(i * 7)).ToArray();
        return
        [
            .. Frame(0, new PingMessage()),
            .. Frame(2, new DataMessage(4096, 8192, 11, 12, DataFlags.SendWriteAck), data),
            .. Frame(2, new AckMessage(AckKind.WriteAck, 4096, 8192, 11, 12)),
            .. Frame(0, new BarrierMessage(5)),
            .. Frame(0, new DisconnectMessage(DisconnectReason.Requested, "bye")),
        ];
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(19)]
    [InlineData(21)]
    [InlineData(100000)]
    public void Frames_fed_byte_by_byte_over_segments_come_out_whole(int segmentBytes)
    {
        byte[] stream = Stream();
        var frames = new List<(FrameHeader Header, byte[] Payload)>();
        int consumed = 0;
        for (int available = 0; available <= stream.Length; available++)
        {
            // The pipe holds [consumed, available), cut into segments; read as many frames as are whole.
            var buffer = Segmented(stream[consumed..available], segmentBytes);
            long before = buffer.Length;
            while (FrameReader.TryReadFrame(ref buffer, Max, out var header, out var payload, out string? error))
            {
                Assert.Null(error);
                frames.Add((header, payload.ToArray()));
            }

            Assert.True(buffer.Length >= 0);
            consumed += (int)(before - buffer.Length);
        }

        Assert.Equal(stream.Length, consumed);
        Assert.Equal([MessageType.Ping, MessageType.Data, MessageType.Ack, MessageType.Barrier, MessageType.Disconnect], frames.Select(f => f.Header.Type));
        Assert.Equal(2, frames[1].Header.Volume);
        Assert.True(DataMessage.TryRead(frames[1].Payload, out var data, out string? dataError), dataError);
        Assert.Equal(8192u, data.LengthBytes);
        Assert.True(DisconnectMessage.TryRead(frames[4].Payload, out var bye, out _));
        Assert.Equal("bye", bye.Text);
    }

    [Fact]
    public void Incomplete_frame_leaves_the_buffer_alone()
    {
        byte[] frame = Frame(1, new SizesMessage(1 << 30, 1 << 29, 0, 1 << 20));
        var buffer = Segmented(frame[..^1], 7);
        Assert.False(FrameReader.TryReadFrame(ref buffer, Max, out _, out _, out string? error));
        Assert.Null(error);
        Assert.Equal(frame.Length - 1, buffer.Length);
    }

    [Fact]
    public void Oversize_frame_is_refused_from_its_header_without_allocating_its_payload()
    {
        byte[] header = new byte[FrameHeader.Size];
        new FrameHeader(MessageType.Data, 0, 64u << 20).Write(header);
        var buffer = Segmented(header, 3);
        FrameReader.TryReadFrame(ref buffer, Max, out _, out _, out _); // warm up (JIT)

        buffer = Segmented(header, 3);
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool ok = FrameReader.TryReadFrame(ref buffer, Max, out var parsed, out _, out string? error);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.False(ok);
        Assert.Contains("exceeds the maximum of 1048576", error);
        Assert.Equal(64u << 20, parsed.PayloadLengthBytes);
        Assert.True(allocated < 1024, $"allocated {allocated} bytes"); // only the error text
        Assert.Equal(FrameHeader.Size, buffer.Length);
    }

    [Fact]
    public void Reading_whole_frames_allocates_nothing()
    {
        byte[] stream = Stream()[..^(FrameHeader.Size + 9)]; // without the Disconnect frame
        var warm = Segmented(stream, 5);
        while (FrameReader.TryReadFrame(ref warm, Max, out _, out var p, out _))
        {
            _ = DataMessage.TryRead(p, out _, out _, out _);
            _ = FramePayload.TryRead<AckMessage>(p, out _, out _);
        }

        var buffer = Segmented(stream, 5);
        long before = GC.GetAllocatedBytesForCurrentThread();
        int frames = 0, dataBytes = 0, goodMessages = 0;
        ulong ackId = 0;
        while (FrameReader.TryReadFrame(ref buffer, Max, out var header, out var payload, out _))
        {
            frames++;
            if (header.Type == MessageType.Data && DataMessage.TryRead(payload, out _, out var data, out _))
            {
                dataBytes = (int)data.Length;
                goodMessages++;
            }
            else if (header.Type == MessageType.Ack && FramePayload.TryRead<AckMessage>(payload, out var ack, out _))
            {
                ackId = ack.RequestId;
                goodMessages++;
            }
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before; // asserts after: xunit's allocate
        Assert.Equal(4, frames);
        Assert.Equal(2, goodMessages);
        Assert.Equal(8192, dataBytes);
        Assert.Equal(11UL, ackId);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Unknown_type_is_an_error_unless_optional()
    {
        byte[] frame = new byte[FrameHeader.Size + 3];
        new FrameHeader((MessageType)0x7777, 0, 3).Write(frame);
        var buffer = new ReadOnlySequence<byte>(frame);
        Assert.False(FrameReader.TryReadFrame(ref buffer, Max, out _, out _, out string? error));
        Assert.Equal("unknown message type 0x7777", error);

        new FrameHeader((MessageType)0x7777, 4, 3, FrameFlags.Optional).Write(frame);
        buffer = new ReadOnlySequence<byte>(frame);
        Assert.True(FrameReader.TryReadFrame(ref buffer, Max, out var header, out var payload, out error), error);
        Assert.Equal(3, payload.Length);
        Assert.True(buffer.IsEmpty);
        Assert.Null(MessageTypes.CheckPlace(header, PeerPhase.Established)); // the caller skips it
        Assert.False(MessageTypes.IsAllowed(header.Type, PeerPhase.Established));
    }

    [Theory]
    [InlineData(MessageType.Ping, 0, 1, "Ping payload must be 0 bytes, got 1")]
    [InlineData(MessageType.Ack, 1, 31, "Ack payload must be 32 bytes, got 31")]
    [InlineData(MessageType.Uuids, 1, 300, "Uuids payload must be 32..288 bytes, got 300")]
    [InlineData(MessageType.Barrier, 1, 8, "Barrier is connection-wide but names volume 1")]
    [InlineData(MessageType.BitmapChunk, 1, 20 + 16385, "BitmapChunk payload must be 20..16404 bytes")]
    public void Frames_whose_size_or_volume_cannot_fit_their_type_are_refused_from_the_header(MessageType type, ushort volume, uint length, string expected)
    {
        byte[] header = new byte[FrameHeader.Size];
        new FrameHeader(type, volume, length).Write(header);
        var buffer = new ReadOnlySequence<byte>(header);
        Assert.False(FrameReader.TryReadFrame(ref buffer, Max, out _, out _, out string? error));
        Assert.Contains(expected, error);
    }

    [Fact]
    public void Corrupt_header_in_a_segmented_buffer_is_an_error()
    {
        byte[] frame = Frame(0, new PingMessage());
        BinaryPrimitives.WriteUInt32BigEndian(frame, 0xDEADBEEF);
        var buffer = Segmented(frame, 1);
        Assert.False(FrameReader.TryReadFrame(ref buffer, Max, out _, out _, out string? error));
        Assert.Contains("bad frame magic 0xDEADBEEF", error);
    }

    [Fact]
    public void Phase_table_refuses_out_of_place_messages()
    {
        Assert.True(MessageTypes.IsAllowed(MessageType.Features, PeerPhase.Handshake));
        Assert.False(MessageTypes.IsAllowed(MessageType.Features, PeerPhase.Established));
        Assert.False(MessageTypes.IsAllowed(MessageType.Data, PeerPhase.Handshake));
        Assert.False(MessageTypes.IsAllowed(MessageType.DataRequest, PeerPhase.Handshake));
        Assert.True(MessageTypes.IsAllowed(MessageType.DataRequest, PeerPhase.Established));
        Assert.True(MessageTypes.IsAllowed(MessageType.DataReply, PeerPhase.Established));
        Assert.True(MessageTypes.IsAllowed(MessageType.NegDReply, PeerPhase.Established));
        Assert.True(MessageTypes.IsAllowed(MessageType.Ping, PeerPhase.Handshake));
        Assert.True(MessageTypes.IsAllowed(MessageType.Disconnect, PeerPhase.Established));
        Assert.Equal("Data is not allowed during Handshake", MessageTypes.CheckPlace(new FrameHeader(MessageType.Data, 0, 40), PeerPhase.Handshake));
        Assert.Equal("unknown message type 0x0099", MessageTypes.CheckPlace(new FrameHeader((MessageType)0x99, 0, 0), PeerPhase.Handshake));
        foreach (MessageType type in Enum.GetValues<MessageType>())
        {
            Assert.True(MessageTypes.TryGetInfo(type, out var info), $"{type} is in the table");
            Assert.True(info.MinPayloadBytes <= info.MaxPayloadBytes, $"{type} bounds");
        }
    }
}

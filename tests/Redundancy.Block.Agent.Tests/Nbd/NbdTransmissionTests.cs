// Transmission-phase behaviour of NbdServer: data round trips, pipelining, reordering, block status,
// FUA/flush/zeroing, device errors.
using System.Buffers.Binary;
using Redundancy.Block.Agent.Tests.Nbd.TestSupport;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd;

public class NbdTransmissionTests
{
    private const long SizeBytes = 8L << 20;

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Write_then_read_round_trips(bool structured)
    {
        var catalog = new TestCatalog();
        MemoryBlockDevice device = catalog.Add("r0", SizeBytes);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0", structured);
        byte[] data = Pattern(70_000, 1);

        client.SendRequest(NbdCommand.Write, 1, 12_345, (uint)data.Length, NbdCommandFlags.Fua, data);
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 1), client.ReadSimpleReply());
        Assert.Equal(data, device.Peek(12_345, data.Length));
        Assert.Equal(1, device.FuaWrites);

        client.SendRequest(NbdCommand.Read, 2, 12_345, (uint)data.Length, structured ? NbdCommandFlags.DontFragment : NbdCommandFlags.None);
        if (structured)
        {
            NbdTestClient.Chunk chunk = client.ReadChunk();
            Assert.Equal((NbdChunkFlags.Done, NbdChunkType.OffsetData, 2UL), (chunk.Flags, chunk.Type, chunk.Cookie));
            Assert.Equal(12_345UL, BinaryPrimitives.ReadUInt64BigEndian(chunk.Payload));
            Assert.Equal(data, chunk.Payload[8..]);
        }
        else
        {
            Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 2), client.ReadSimpleReply());
            Assert.Equal(data, client.ReadExact(data.Length));
        }
    }

    [Fact]
    public async Task Pipelined_requests_all_get_their_own_cookie_and_data()
    {
        var catalog = new TestCatalog();
        catalog.Add("r0", SizeBytes);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0");
        const int Count = 128;
        var writes = new List<byte>();
        for (int i = 0; i < Count; i++)
        {
            var message = new byte[NbdRequestHeader.SizeBytes + 4096];
            new NbdRequestHeader(NbdCommandFlags.None, NbdCommand.Write, (ulong)(1000 + i), (ulong)i * 4096, 4096).Write(message);
            Pattern(4096, i).CopyTo(message, NbdRequestHeader.SizeBytes);
            writes.AddRange(message);
        }

        client.Send([.. writes]);
        var cookies = new HashSet<ulong>();
        for (int i = 0; i < Count; i++)
        {
            NbdTestClient.SimpleReply reply = client.ReadSimpleReply();
            Assert.Equal(NbdError.None, reply.Error);
            Assert.True(cookies.Add(reply.Cookie));
        }

        Assert.Equal(Enumerable.Range(1000, Count).Select(i => (ulong)i).ToHashSet(), cookies);
        var reads = new List<byte>();
        for (int i = 0; i < Count; i++)
        {
            var header = new byte[NbdRequestHeader.SizeBytes];
            new NbdRequestHeader(NbdCommandFlags.None, NbdCommand.Read, (ulong)(5000 + i), (ulong)i * 4096, 4096).Write(header);
            reads.AddRange(header);
        }

        client.Send([.. reads]);
        for (int i = 0; i < Count; i++)
        {
            (ulong cookie, NbdError error, byte[] data) = client.ReadAnyReply(_ => 4096);
            Assert.Equal(NbdError.None, error);
            Assert.Equal(Pattern(4096, (int)cookie - 5000), data);
        }
    }

    [Fact]
    public async Task Replies_come_back_out_of_order_when_an_earlier_request_is_slow()
    {
        var catalog = new TestCatalog();
        MemoryBlockDevice device = catalog.Add("r0", SizeBytes);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0");
        device.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.SendRequest(NbdCommand.Flush, 1, 0, 0);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref device.Started) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the flush never reached the device");
            await Task.Delay(5);
        }

        TaskCompletionSource gate = device.Gate;
        device.Gate = null;
        client.SendRequest(NbdCommand.Write, 2, 0, 4, payload: [1, 2, 3, 4]);
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 2), client.ReadSimpleReply());
        gate.SetResult();
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 1), client.ReadSimpleReply());
        Assert.Equal(1, device.Flushes);
    }

    [Fact]
    public async Task Block_status_reports_holes_and_data_within_the_request()
    {
        var catalog = new TestCatalog();
        catalog.Add("r0", SizeBytes);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0", baseAllocation: true);
        client.SendRequest(NbdCommand.Write, 1, 8192, 4096, payload: Pattern(4096, 3));
        Assert.Equal(NbdError.None, client.ReadSimpleReply().Error);

        client.SendRequest(NbdCommand.BlockStatus, 2, 0, 20_000);
        NbdTestClient.Chunk chunk = client.ReadChunk();
        Assert.Equal((NbdChunkFlags.Done, NbdChunkType.BlockStatus, 2UL), (chunk.Flags, chunk.Type, chunk.Cookie));
        Assert.Equal(NbdSessionContextId, BinaryPrimitives.ReadUInt32BigEndian(chunk.Payload));
        List<(uint Length, uint Flags)> extents = Descriptors(chunk.Payload);
        Assert.Equal([(8192u, 3u), (4096u, 0u), (20_000u - 12_288u, 3u)], extents);

        client.SendRequest(NbdCommand.BlockStatus, 3, 100, 20_000, NbdCommandFlags.ReqOne);
        Assert.Equal([(8092u, 3u)], Descriptors(client.ReadChunk().Payload));
    }

    private const uint NbdSessionContextId = 1;

    private static List<(uint, uint)> Descriptors(byte[] payload)
    {
        List<(uint, uint)> descriptors = [];
        for (int at = 4; at < payload.Length; at += 8)
        {
            descriptors.Add((BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(at)), BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(at + 4))));
        }

        return descriptors;
    }

    [Fact]
    public async Task Trim_write_zeroes_cache_and_flush_reach_the_device_with_the_right_flags()
    {
        var catalog = new TestCatalog();
        MemoryBlockDevice device = catalog.Add("r0", 8L << 30, canFastZero: true);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0");
        Assert.True((client.TransmissionFlags & NbdTransmissionFlags.SendFastZero) != 0);
        client.SendRequest(NbdCommand.Write, 1, 0, 8, payload: [1, 1, 1, 1, 1, 1, 1, 1]);
        client.SendRequest(NbdCommand.WriteZeroes, 2, 2, 4, NbdCommandFlags.NoHole | NbdCommandFlags.FastZero);
        client.SendRequest(NbdCommand.WriteZeroes, 3, 0, uint.MaxValue, NbdCommandFlags.Fua);
        client.SendRequest(NbdCommand.Trim, 4, 1L << 32, uint.MaxValue);
        client.SendRequest(NbdCommand.Cache, 5, 0, uint.MaxValue, NbdCommandFlags.Fua);
        client.SendRequest(NbdCommand.Flush, 6, 0, 0, NbdCommandFlags.Fua);
        var cookies = Enumerable.Range(0, 6).Select(_ => client.ReadSimpleReply()).ToList();
        Assert.All(cookies, reply => Assert.Equal(NbdError.None, reply.Error));
        Assert.Equal(new ulong[] { 1, 2, 3, 4, 5, 6 }, cookies.Select(reply => reply.Cookie).Order());
        Assert.Contains((2L, 4L, false), device.Zeroes);
        Assert.Contains((0L, (long)uint.MaxValue, true), device.Zeroes);
        Assert.True(device.Flushes >= 2);    // FUA zeroing and FLUSH
        Assert.Equal(new byte[8], device.Peek(0, 8));
    }

    [Fact]
    public async Task A_device_io_error_becomes_eio_and_the_connection_goes_on()
    {
        var catalog = new TestCatalog();
        MemoryBlockDevice device = catalog.Add("r0", SizeBytes);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0", structured: true);
        device.FailWithIoError = true;
        client.SendRequest(NbdCommand.Write, 1, 0, 512, payload: new byte[512]);
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.Io, 1), client.ReadSimpleReply());
        client.SendRequest(NbdCommand.Read, 2, 0, 512);
        NbdTestClient.Chunk error = client.ReadChunk();
        Assert.Equal((NbdChunkFlags.Done, NbdChunkType.Error, 2UL), (error.Flags, error.Type, error.Cookie));
        Assert.Equal((uint)NbdError.Io, BinaryPrimitives.ReadUInt32BigEndian(error.Payload));

        device.FailWithIoError = false;
        client.SendRequest(NbdCommand.Read, 3, 0, 512);
        Assert.Equal(NbdChunkType.OffsetData, client.ReadChunk().Type);
    }
}

// The spec's "malformed requests" rules: each bad request gets the right error and the stream stays
// in sync (a valid request right after it still works); DoS-sized payloads and bad magic disconnect.
using System.Buffers.Binary;
using Redundancy.Block.Agent.Nbd;
using Redundancy.Block.Agent.Tests.Nbd.TestSupport;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd;

public class NbdMalformedRequestTests
{
    private const long SizeBytes = 1L << 20;

    public static TheoryData<string, ushort, ushort, ulong, uint, int, uint> SimpleCases => new()
    {
        // name, command, flags, offset, length, payload bytes sent, expected error
        { "read past the end", 0, 0, SizeBytes - 512, 4096, 0, (uint)NbdError.Invalid },
        { "read starting past the end", 0, 0, SizeBytes + 1, 0, 0, (uint)NbdError.Invalid },
        { "write past the end", 1, 0, SizeBytes - 512, 4096, 4096, (uint)NbdError.NoSpace },
        { "write zeroes past the end", 6, 0, SizeBytes, 1, 0, (uint)NbdError.NoSpace },
        { "trim past the end", 4, 0, SizeBytes, 1, 0, (uint)NbdError.Invalid },
        { "offset wrapping 2^64", 0, 0, ulong.MaxValue - 10, 512, 0, (uint)NbdError.Invalid },
        { "unknown command", 42, 0, 0, 0, 0, (uint)NbdError.Invalid },
        { "unknown flag", 0, 0x40, 0, 512, 0, (uint)NbdError.Invalid },
        { "DF without structured replies", 0, (ushort)NbdCommandFlags.DontFragment, 0, 512, 0, (uint)NbdError.Invalid },
        { "NO_HOLE on a write", 1, (ushort)NbdCommandFlags.NoHole, 0, 512, 512, (uint)NbdError.Invalid },
        { "REQ_ONE on a read", 0, (ushort)NbdCommandFlags.ReqOne, 0, 512, 0, (uint)NbdError.Invalid },
        { "FAST_ZERO without fast zeroing", 6, (ushort)NbdCommandFlags.FastZero, 0, 512, 0, (uint)NbdError.NotSupported },
        { "block status without a context", 7, 0, 0, 512, 0, (uint)NbdError.Invalid },
        { "read larger than the payload cap", 0, 0, 0, (32u << 20) + 1, 0, (uint)NbdError.Invalid },
        { "zero-length read", 0, 0, 0, 0, 0, 0 },
        { "zero-length write", 1, 0, 0, 0, 0, 0 },
        { "zero-length trim at the end", 4, 0, SizeBytes, 0, 0, 0 },
        { "FUA on a read", 0, (ushort)NbdCommandFlags.Fua, 0, 16, 0, 0 },
    };

    [Theory]
    [MemberData(nameof(SimpleCases))]
    public async Task Malformed_request_gets_its_error_and_the_stream_stays_in_sync(
        string name, ushort command, ushort flags, ulong offsetBytes, uint lengthBytes, int payloadBytes, uint expected)
    {
        var catalog = new TestCatalog();
        catalog.Add("r0", 64L << 20);
        catalog.Add("small", SizeBytes);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go(lengthBytes > SizeBytes ? "r0" : "small");
        client.SendRequest((NbdCommand)command, 7, offsetBytes, lengthBytes, (NbdCommandFlags)flags, new byte[payloadBytes]);
        NbdTestClient.SimpleReply reply = client.ReadSimpleReply();
        Assert.True(new NbdTestClient.SimpleReply((NbdError)expected, 7) == reply, $"{name}: got {reply}");
        if (reply.Error == NbdError.None && command == 0)
        {
            client.ReadExact((int)lengthBytes);
        }

        AssertStillInSync(client);
    }

    private static void AssertStillInSync(NbdTestClient client)
    {
        client.SendRequest(NbdCommand.Write, 99, 0, 4, payload: [9, 8, 7, 6]);
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 99), client.ReadSimpleReply());
        client.SendRequest(NbdCommand.Read, 100, 0, 4);
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 100), client.ReadSimpleReply());
        Assert.Equal([9, 8, 7, 6], client.ReadExact(4));
    }

    [Fact]
    public async Task Writes_and_trims_on_a_read_only_export_get_eperm()
    {
        var catalog = new TestCatalog();
        catalog.Add("ro", SizeBytes, readOnly: true);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("ro");
        Assert.True((client.TransmissionFlags & NbdTransmissionFlags.ReadOnly) != 0);
        client.SendRequest(NbdCommand.Write, 1, 0, 512, payload: new byte[512]);
        client.SendRequest(NbdCommand.Trim, 2, 0, 512);
        client.SendRequest(NbdCommand.WriteZeroes, 3, 0, 512);
        Assert.All(Enumerable.Range(0, 3).Select(_ => client.ReadSimpleReply()), reply => Assert.Equal(NbdError.Perm, reply.Error));
        client.SendRequest(NbdCommand.Read, 4, 0, 8);
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 4), client.ReadSimpleReply());
        Assert.Equal(new byte[8], client.ReadExact(8));
    }

    [Fact]
    public async Task Structured_read_errors_are_error_chunks_and_oversized_reads_overflow()
    {
        var catalog = new TestCatalog();
        catalog.Add("r0", 64L << 20);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0", structured: true);
        client.SendRequest(NbdCommand.Read, 1, 0, (32u << 20) + 1);
        client.SendRequest(NbdCommand.Read, 2, 0, 512, (NbdCommandFlags)0x80);
        client.SendRequest(NbdCommand.Read, 3, 0, 0);
        foreach ((ulong cookie, NbdError error) in new[] { (1UL, NbdError.Overflow), (2UL, NbdError.Invalid) })
        {
            NbdTestClient.Chunk chunk = client.ReadChunk();
            Assert.Equal((NbdChunkFlags.Done, NbdChunkType.Error, cookie), (chunk.Flags, chunk.Type, chunk.Cookie));
            Assert.Equal((uint)error, BinaryPrimitives.ReadUInt32BigEndian(chunk.Payload));
        }

        NbdTestClient.Chunk empty = client.ReadChunk();
        Assert.Equal((NbdChunkFlags.Done, NbdChunkType.None, 3UL), (empty.Flags, empty.Type, empty.Cookie));
    }

    [Fact]
    public async Task An_oversized_write_is_consumed_and_rejected()
    {
        var catalog = new TestCatalog();
        MemoryBlockDevice device = catalog.Add("r0", 64L << 20);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog, new NbdServerOptions { MaxPayloadBytes = 1 << 20 });
        using NbdTestClient client = fixture.Connect();
        client.Go("r0");
        byte[] payload = new byte[(1 << 20) + 4096];
        payload.AsSpan().Fill(0xee);
        client.SendRequest(NbdCommand.Write, 1, 0, (uint)payload.Length, payload: payload);
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.Invalid, 1), client.ReadSimpleReply());
        Assert.Equal(new byte[16], device.Peek(0, 16));
        AssertStillInSync(client);
    }

    [Fact]
    public async Task A_dos_sized_write_disconnects()
    {
        var catalog = new TestCatalog();
        catalog.Add("r0", SizeBytes);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0");
        client.SendRequest(NbdCommand.Write, 1, 0, (64u << 20) + 1);
        Assert.True(client.IsClosedByServer());
    }

    [Fact]
    public async Task Bad_request_magic_disconnects()
    {
        var catalog = new TestCatalog();
        catalog.Add("r0", SizeBytes);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0");
        var garbage = new byte[NbdRequestHeader.SizeBytes];
        garbage[0] = 0x12;
        client.Send(garbage);
        Assert.True(client.IsClosedByServer());
    }
}

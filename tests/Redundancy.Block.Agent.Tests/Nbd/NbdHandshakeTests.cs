// Negotiation-phase behaviour of NbdServer, driven over a real socket with a raw client.
using System.Buffers.Binary;
using Redundancy.Block.Agent.Nbd;
using Redundancy.Block.Agent.Tests.Nbd.TestSupport;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd;

public class NbdHandshakeTests
{
    private static async Task<NbdServerFixture> StartAsync()
    {
        var catalog = new TestCatalog();
        catalog.Add("r0", 1 << 20, description: "resource r0");
        catalog.Add("r1", 1 << 20, refusal: "r1 is Secondary; NBD clients are refused until it is promoted");
        return await NbdServerFixture.StartAsync(catalog);
    }

    private static bool IsInfo(NbdTestClient.OptionReply reply, NbdInfoType type) =>
        reply.Type == NbdOptionReplyType.Info && BinaryPrimitives.ReadUInt16BigEndian(reply.Data) == (ushort)type;

    [Fact]
    public async Task Info_and_go_give_identical_answers_and_go_enters_transmission()
    {
        await using NbdServerFixture fixture = await StartAsync();
        using NbdTestClient client = fixture.Connect();
        byte[] request = NbdTestClient.InfoRequest("r0", NbdInfoType.Name, NbdInfoType.Description, NbdInfoType.BlockSize, (NbdInfoType)77);
        client.SendOption(NbdOption.Info, request);
        List<NbdTestClient.OptionReply> info = client.ReadOptionReplies();
        client.SendOption(NbdOption.Go, request);
        List<NbdTestClient.OptionReply> go = client.ReadOptionReplies();

        Assert.Equal(info.Select(reply => (reply.Type, Convert.ToHexString(reply.Data))), go.Select(reply => (reply.Type, Convert.ToHexString(reply.Data))));
        Assert.Equal((uint)NbdOption.Go, go[0].Option);
        byte[] export = go.Single(reply => IsInfo(reply, NbdInfoType.Export)).Data;
        Assert.Equal(1UL << 20, BinaryPrimitives.ReadUInt64BigEndian(export.AsSpan(2)));
        var flags = (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(export.AsSpan(10));
        Assert.Equal(
            NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua | NbdTransmissionFlags.SendTrim
            | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.CanMultiConn | NbdTransmissionFlags.SendCache,
            flags);
        Assert.Contains(go, reply => IsInfo(reply, NbdInfoType.Name) && reply.Text[2..] == "r0");
        Assert.Contains(go, reply => IsInfo(reply, NbdInfoType.Description) && reply.Text[2..] == "resource r0");
        byte[] blockSize = go.Single(reply => IsInfo(reply, NbdInfoType.BlockSize)).Data;
        Assert.Equal([1u, 4096u, 32u << 20], [BinaryPrimitives.ReadUInt32BigEndian(blockSize.AsSpan(2)), BinaryPrimitives.ReadUInt32BigEndian(blockSize.AsSpan(6)), BinaryPrimitives.ReadUInt32BigEndian(blockSize.AsSpan(10))]);

        client.SendRequest(NbdCommand.Read, 9, 0, 16);
        Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 9), client.ReadSimpleReply());
        Assert.Equal(new byte[16], client.ReadExact(16));
        Assert.Equal(1, fixture.Server.ConnectionCount("r0"));
        Assert.Equal(2, fixture.Catalog.OpenCount);
        Assert.Equal(1, fixture.Catalog.DisposeCount);    // INFO's open was released
    }

    [Fact]
    public async Task List_names_every_export_and_rejects_data_while_staying_in_sync()
    {
        await using NbdServerFixture fixture = await StartAsync();
        using NbdTestClient client = fixture.Connect();
        client.SendOption(NbdOption.List, [1, 2, 3]);
        NbdTestClient.OptionReply invalid = client.ReadOptionReply();
        Assert.Equal(NbdOptionReplyType.ErrInvalid, invalid.Type);

        client.SendOption(NbdOption.List, []);
        List<NbdTestClient.OptionReply> replies = client.ReadOptionReplies();
        Assert.Equal([NbdOptionReplyType.Server, NbdOptionReplyType.Server, NbdOptionReplyType.Ack], replies.Select(reply => reply.Type));
        byte[] first = replies[0].Data;
        int nameLength = (int)BinaryPrimitives.ReadUInt32BigEndian(first);
        Assert.Equal("r0", System.Text.Encoding.UTF8.GetString(first, 4, nameLength));
        Assert.Equal("resource r0", System.Text.Encoding.UTF8.GetString(first, 4 + nameLength, first.Length - 4 - nameLength));
    }

    [Fact]
    public async Task Abort_is_acknowledged_then_the_connection_closes()
    {
        await using NbdServerFixture fixture = await StartAsync();
        using NbdTestClient client = fixture.Connect();
        client.SendOption(NbdOption.Abort, []);
        Assert.Equal(NbdOptionReplyType.Ack, client.ReadOptionReply().Type);
        Assert.True(client.IsClosedByServer());
    }

    [Fact]
    public async Task Unknown_option_and_starttls_get_unsup_and_the_next_option_is_still_parsed()
    {
        await using NbdServerFixture fixture = await StartAsync();
        using NbdTestClient client = fixture.Connect();
        client.SendOption(0x1234, new byte[300]);
        Assert.Equal(NbdOptionReplyType.ErrUnsup, client.ReadOptionReply().Type);
        client.SendOption(NbdOption.StartTls, []);
        Assert.Equal(NbdOptionReplyType.ErrUnsup, client.ReadOptionReply().Type);
        client.Go("r0");
    }

    [Fact]
    public async Task Set_meta_context_needs_structured_replies_first()
    {
        await using NbdServerFixture fixture = await StartAsync();
        using NbdTestClient client = fixture.Connect();
        client.SendOption(NbdOption.SetMetaContext, NbdTestClient.MetaContextRequest("r0", NbdLimits.BaseAllocation));
        Assert.Equal(NbdOptionReplyType.ErrInvalid, client.ReadOptionReply().Type);

        client.SendOption(NbdOption.ListMetaContext, NbdTestClient.MetaContextRequest("r0"));
        List<NbdTestClient.OptionReply> listed = client.ReadOptionReplies();
        Assert.Equal([NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack], listed.Select(reply => reply.Type));
        Assert.Equal(NbdLimits.BaseAllocation, listed[0].Text[4..]);

        client.SendOption(NbdOption.ListMetaContext, NbdTestClient.MetaContextRequest("nope"));
        Assert.Equal(NbdOptionReplyType.ErrUnknown, client.ReadOptionReply().Type);

        client.Go("r0", baseAllocation: true);
        Assert.True((client.TransmissionFlags & NbdTransmissionFlags.SendDf) != 0);
    }

    [Fact]
    public async Task Refused_and_unknown_exports_get_errors_carrying_the_catalog_message()
    {
        await using NbdServerFixture fixture = await StartAsync();
        using NbdTestClient client = fixture.Connect();
        client.SendOption(NbdOption.Go, NbdTestClient.InfoRequest("r1"));
        NbdTestClient.OptionReply refused = client.ReadOptionReply();
        Assert.Equal(NbdOptionReplyType.ErrPolicy, refused.Type);
        Assert.Equal("r1 is Secondary; NBD clients are refused until it is promoted", refused.Text);

        client.SendOption(NbdOption.Info, NbdTestClient.InfoRequest("r9"));
        NbdTestClient.OptionReply unknown = client.ReadOptionReply();
        Assert.Equal(NbdOptionReplyType.ErrUnknown, unknown.Type);
        Assert.Contains("r9", unknown.Text);

        client.Go("r0");
    }

    [Fact]
    public async Task Export_name_option_enters_transmission_and_a_refusal_closes()
    {
        await using NbdServerFixture fixture = await StartAsync();
        using (NbdTestClient client = fixture.Connect(clientFlags: (uint)NbdClientFlags.FixedNewstyle))
        {
            client.SendOption(NbdOption.ExportName, "r0"u8);
            byte[] reply = client.ReadExact(10 + 124);
            Assert.Equal(1UL << 20, BinaryPrimitives.ReadUInt64BigEndian(reply));
            Assert.All(reply[10..], value => Assert.Equal(0, value));
            client.SendRequest(NbdCommand.Flush, 5, 0, 0);
            Assert.Equal(new NbdTestClient.SimpleReply(NbdError.None, 5), client.ReadSimpleReply());
        }

        using NbdTestClient refused = fixture.Connect();
        refused.SendOption(NbdOption.ExportName, "r1"u8);
        Assert.True(refused.IsClosedByServer());
    }

    [Theory]
    [InlineData(0xFFFFFFFFu)]
    [InlineData(64u << 20)]
    public async Task Hostile_option_lengths_drop_the_client(uint length)
    {
        await using NbdServerFixture fixture = await StartAsync();
        using NbdTestClient client = fixture.Connect();
        var header = new byte[NbdOptionHeader.SizeBytes];
        new NbdOptionHeader((uint)NbdOption.Go, length).Write(header);
        client.Send(header);
        Assert.True(client.IsClosedByServer());
    }

    [Fact]
    public async Task Names_longer_than_4096_bytes_are_invalid_but_not_fatal()
    {
        await using NbdServerFixture fixture = await StartAsync();
        using NbdTestClient client = fixture.Connect();
        client.SendOption(NbdOption.Go, NbdTestClient.InfoRequest(new string('a', 5000)));
        Assert.Equal(NbdOptionReplyType.ErrInvalid, client.ReadOptionReply().Type);
        var lying = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(lying, 0xFFFFFFF0);    // name length far beyond the data
        client.SendOption(NbdOption.Info, lying);
        Assert.Equal(NbdOptionReplyType.ErrInvalid, client.ReadOptionReply().Type);
        client.Go("r0");
    }

    [Fact]
    public async Task Unknown_client_flags_drop_the_client()
    {
        await using NbdServerFixture fixture = await StartAsync();
        using NbdTestClient client = fixture.Connect(clientFlags: 0x80000001);
        Assert.True(client.IsClosedByServer());
    }

    [Fact]
    public async Task A_client_that_does_not_finish_the_handshake_in_time_is_dropped()
    {
        var catalog = new TestCatalog();
        catalog.Add("r0", 4096);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog, new NbdServerOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(200) });
        using NbdTestClient client = fixture.Connect();
        Assert.True(client.IsClosedByServer());
    }
}

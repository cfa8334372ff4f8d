// Pins the sizes and byte layouts of the engine's NBD wire encoders and parsers.
using System.Buffers.Binary;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd;

public class NbdWireFormatTests
{
    [Fact]
    public void Sizes_match_the_spec()
    {
        Assert.Equal(28, NbdRequestHeader.SizeBytes);
        Assert.Equal(16, NbdOptionHeader.SizeBytes);
        Assert.Equal(16, NbdReplyWriter.SimpleReplySizeBytes);
        Assert.Equal(20, NbdReplyWriter.ChunkHeaderSizeBytes);
        Assert.Equal(28, NbdReplyWriter.OffsetDataHeaderSizeBytes);
        Assert.Equal(26, NbdReplyWriter.ErrorChunkSizeBytes);
        Assert.Equal(18, NbdHandshakeWriter.GreetingSizeBytes);
        Assert.Equal(20, NbdHandshakeWriter.OptionReplyHeaderSizeBytes);
        Assert.Equal(20 + 12, NbdHandshakeWriter.InfoExport(7, 1, NbdTransmissionFlags.HasFlags).Length);
        Assert.Equal(20 + 14, NbdHandshakeWriter.InfoBlockSize(7, 1, 4096, 1 << 25).Length);
        Assert.Equal(10 + 124, NbdHandshakeWriter.ExportNameReply(1, NbdTransmissionFlags.HasFlags, noZeroes: false).Length);
        Assert.Equal(10, NbdHandshakeWriter.ExportNameReply(1, NbdTransmissionFlags.HasFlags, noZeroes: true).Length);
    }

    [Fact]
    public void Request_header_round_trips_big_endian_and_rejects_bad_magic()
    {
        var header = new NbdRequestHeader(NbdCommandFlags.Fua, NbdCommand.Write, 0x0102030405060708, 0x1122334455667788, 0xAABBCCDD);
        var bytes = new byte[NbdRequestHeader.SizeBytes];
        header.Write(bytes);
        Assert.Equal("25609513000100010102030405060708112233445566778 8AABBCCDD".Replace(" ", ""), Convert.ToHexString(bytes));
        Assert.True(NbdRequestHeader.TryRead(bytes, out NbdRequestHeader parsed));
        Assert.Equal(header, parsed);
        Assert.False(NbdRequestHeader.TryRead(bytes.AsSpan(0, 27), out _));
        bytes[0] ^= 1;
        Assert.False(NbdRequestHeader.TryRead(bytes, out _));
    }

    [Fact]
    public void Replies_are_laid_out_as_the_spec_says()
    {
        var simple = new byte[16];
        NbdReplyWriter.WriteSimpleReply(simple, NbdError.NoSpace, 42);
        Assert.Equal("674466980000001C000000000000002A", Convert.ToHexString(simple));

        var error = new byte[NbdReplyWriter.ErrorChunkSizeBytes];
        NbdReplyWriter.WriteErrorChunk(error, NbdError.Io, 1);
        Assert.Equal("668E33EF" + "0001" + "8001" + "0000000000000001" + "00000006" + "00000005" + "0000", Convert.ToHexString(error));

        var data = new byte[28];
        NbdReplyWriter.WriteOffsetDataHeader(data, NbdChunkFlags.Done, 3, 4096, 512);
        Assert.Equal(512u + 8, BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(16)));
        Assert.Equal(4096UL, BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(20)));
    }

    [Fact]
    public void Option_parser_checks_every_length()
    {
        byte[] good = [0, 0, 0, 2, (byte)'r', (byte)'0', 0, 2, 0, 3, 0, 1];
        Assert.True(NbdOptionParser.TryParseInfoRequest(good, out NbdInfoRequest? request, out _));
        Assert.Equal("r0", request!.ExportName);
        Assert.Equal(new ushort[] { 3, 1 }, request.InfoTypes);
        Assert.False(NbdOptionParser.TryParseInfoRequest(good[..^1], out _, out _));
        Assert.False(NbdOptionParser.TryParseInfoRequest([0xFF, 0xFF, 0xFF, 0xFF, 0, 0], out _, out _));
        Assert.False(NbdOptionParser.TryParseInfoRequest([0, 0, 0, 1, 0xFF, 0, 0], out _, out string error));
        Assert.Contains("UTF-8", error);

        byte[] meta = [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5, (byte)'b', (byte)'a', (byte)'s', (byte)'e', (byte)':'];
        Assert.True(NbdOptionParser.TryParseMetaContextRequest(meta, out NbdMetaContextRequest? metaRequest, out _));
        Assert.Equal(["base:"], metaRequest!.Queries);
        Assert.False(NbdOptionParser.TryParseMetaContextRequest([0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF], out _, out _));
    }

    [Theory]
    [InlineData(NbdCommand.Read, NbdCommandFlags.None, 0UL, 4096u, false, NbdError.None)]
    [InlineData(NbdCommand.Write, NbdCommandFlags.None, 0UL, 4096u, true, NbdError.Perm)]
    [InlineData(NbdCommand.Trim, NbdCommandFlags.None, 1UL << 20, 1u, false, NbdError.Invalid)]
    [InlineData(NbdCommand.WriteZeroes, NbdCommandFlags.None, 1UL << 20, 1u, false, NbdError.NoSpace)]
    [InlineData(NbdCommand.BlockStatus, NbdCommandFlags.ReqOne, 0UL, 0u, false, NbdError.Invalid)]
    [InlineData(NbdCommand.Flush, NbdCommandFlags.Fua, 123UL, 456u, false, NbdError.None)]
    [InlineData((NbdCommand)8, NbdCommandFlags.None, 0UL, 0u, false, NbdError.Invalid)]
    public void Validator_follows_the_malformed_request_rules(
        NbdCommand command, NbdCommandFlags flags, ulong offsetBytes, uint lengthBytes, bool readOnly, NbdError expected)
    {
        var limits = new NbdExportLimits(1UL << 20, readOnly, StructuredReplies: true, CanFastZero: false, HasMetaContext: true, 1u << 25);
        Assert.Equal(expected, NbdRequestValidator.Validate(new NbdRequestHeader(flags, command, 1, offsetBytes, lengthBytes), limits));
    }
}

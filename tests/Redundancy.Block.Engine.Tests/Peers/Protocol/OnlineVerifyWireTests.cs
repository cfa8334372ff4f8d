// Online verify and csums-alg on the wire: the digests each algorithm puts in OvReply and
// CsumRsRequest (including VerifyT's all-zero digest for an unreadable block), and the refusals a
// StartVerify can be answered with.
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.Peers.Protocol.WireTestHelpers;

namespace Redundancy.Block.Engine.Tests.Peers.Protocol;

public class OnlineVerifyWireTests
{
    [Theory]
    [InlineData(DigestAlgorithm.Crc32C, 4)]
    [InlineData(DigestAlgorithm.Md5, 16)]
    [InlineData(DigestAlgorithm.Sha1, 20)]
    [InlineData(DigestAlgorithm.Sha256, 32)]
    [InlineData(DigestAlgorithm.Sha512, 64)]
    public void Digests_of_every_algorithm_travel_in_OvReply_and_CsumRsRequest(DigestAlgorithm algorithm, int lengthBytes)
    {
        byte[] block = [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 7))];
        var digest = Digest.Compute(algorithm, block);
        Assert.Equal(lengthBytes, digest.LengthBytes);
        var zeroes = new Digest(new byte[lengthBytes]); // VerifyT's answer for a block it cannot read

        foreach (var sent in new[] { digest, zeroes })
        {
            Assert.True(OvReplyMessage.TryRead(Payload(new OvReplyMessage(8192, 4096, 2, sent)), out var reply, out string? error), error);
            Assert.Equal((8192UL, 4096U, 2UL, sent), (reply.OffsetBytes, reply.LengthBytes, reply.RequestId, reply.Digest));
            Assert.True(CsumRsRequestMessage.TryRead(Payload(new CsumRsRequestMessage(0, 4096, 9, sent)), out var csum, out error), error);
            Assert.Equal(sent, csum.Digest);
        }
        Assert.NotEqual(zeroes, digest);
        block[4095] ^= 1;
        Assert.NotEqual(digest, Digest.Compute(algorithm, block)); // one flipped bit is a mismatch
    }

    [Fact]
    public void An_OvReply_without_room_for_its_digest_is_refused()
    {
        byte[] payload = Payload(new OvReplyMessage(0, 4096, 1, Digest.Compute(DigestAlgorithm.Sha256, "x"u8)));
        Assert.False(OvReplyMessage.TryRead(payload.AsSpan(0, payload.Length - 1), out _, out string? error));
        Assert.NotNull(error);
    }

    [Theory]
    [InlineData(StateChangeResult.NoVerifyAlg, "(-14) Need a verify algorithm to start online verify")]
    [InlineData(StateChangeResult.NoRemoteDisk, "(-5) Can not resync without remote disk")]
    [InlineData(StateChangeResult.NoConnection, "(-15) Need a connection to start verify or resync")]
    public void A_refused_StartVerify_is_answered_with_DRBDs_reason(StateChangeResult result, string reason)
    {
        Assert.True(StateChangeReplyMessage.TryRead(Payload(new StateChangeReplyMessage(7, result)), out var reply, out string? error), error);
        Assert.Equal((7U, result), (reply.RequestId, reply.Result));
        Assert.False(reply.Result.IsSuccess());
        Assert.EndsWith(reason, StateChangeResults.Describe(result), StringComparison.Ordinal);
    }
}

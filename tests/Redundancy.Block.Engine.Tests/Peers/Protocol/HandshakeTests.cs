using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Tests.Peers.Protocol;

public class HandshakeTests
{
    private sealed class SeededRandom(int seed) : IRandom
    {
        private readonly Random _random = new(seed);

        public ulong NextUInt64() => (ulong)_random.NextInt64() ^ ((ulong)_random.Next() << 63);
    }

    [Fact]
    public void Features_negotiate_highest_common_version_shared_flags_and_smaller_payload()
    {
        var local = new FeaturesMessage(1, 3, FeatureFlags.Lz4Compression | FeatureFlags.Trim, 1 << 20);
        var peer = new FeaturesMessage(2, 5, FeatureFlags.Trim | FeatureFlags.OnlineVerify, 1 << 22);
        Assert.True(FeaturesMessage.TryNegotiate(local, peer, out var negotiated, out string? error), error);
        Assert.Equal(new NegotiatedFeatures(3, FeatureFlags.Trim, 1 << 20), negotiated);

        Assert.False(FeaturesMessage.TryNegotiate(local, new FeaturesMessage(4, 5, 0, 1 << 20), out _, out error));
        Assert.Equal("no common protocol version (we speak 1..3, peer 4..5)", error);
        Assert.False(FeaturesMessage.TryNegotiate(local, peer with { Flags = FeatureFlags.Authentication }, out _, out error));
        Assert.Contains("peer requires authentication", error);
        Assert.False(FeaturesMessage.TryNegotiate(local with { Flags = FeatureFlags.Authentication }, peer, out _, out error));
        Assert.Contains("peer does not authenticate", error);
    }

    private static ProtocolSettingsMessage Settings(string sb0, string node) =>
        new(ReplicationProtocol.C,
            ProtocolSettingsValues.TryParseAfterSb0Pri(sb0, node, out var p0) ? p0 : throw new ArgumentException(sb0),
            AfterSb1Pri.DiscardSecondary, AfterSb2Pri.Disconnect, 0, DigestAlgorithm.None, DigestAlgorithm.Sha1, DigestAlgorithm.Crc32C, 0);

    [Fact]
    public void Settings_mismatch_names_the_setting_and_both_values()
    {
        var alpha = Settings("discard-zero-changes", "alpha");
        Assert.Null(SettingsMismatch.Find(alpha, Settings("discard-zero-changes", "beta")));
        Assert.Null(SettingsMismatch.Find(alpha, alpha with { Compression = CompressionAlgorithm.Lz4 })); // per-sender choice

        Assert.Equal("incompatible protocol settings (local C, peer A)", SettingsMismatch.Find(alpha, alpha with { Protocol = ReplicationProtocol.A }).ToString());
        Assert.Equal("incompatible after-sb-0pri settings (local discard-zero-changes, peer disconnect)",
            SettingsMismatch.Find(alpha, alpha with { AfterSb0Pri = AfterSb0Pri.Disconnect }).ToString());
        Assert.Equal("after-sb-1pri", SettingsMismatch.Find(alpha, alpha with { AfterSb1Pri = AfterSb1Pri.Consensus })?.Setting);
        Assert.Equal("violently-as0p", SettingsMismatch.Find(alpha, alpha with { AfterSb2Pri = AfterSb2Pri.ViolentlyAs0p })?.Peer);
        Assert.Equal(new SettingsMismatch("allow-two-primaries", "no", "yes"),
            SettingsMismatch.Find(alpha, alpha with { Flags = ProtocolSettingsFlags.AllowTwoPrimaries }));
        Assert.Equal("always-asbp", SettingsMismatch.Find(alpha, alpha with { Flags = ProtocolSettingsFlags.AlwaysAsbp })?.Setting);
        Assert.Equal(new SettingsMismatch("data-integrity-alg", "none", "sha256"),
            SettingsMismatch.Find(alpha, alpha with { DataIntegrityAlg = DigestAlgorithm.Sha256 }));
        Assert.Equal("csums-alg", SettingsMismatch.Find(alpha, alpha with { CsumsAlg = DigestAlgorithm.Md5 })?.Setting);
        Assert.Equal(new SettingsMismatch("verify-alg", "crc32c", "sha512"), SettingsMismatch.Find(alpha, alpha with { VerifyAlg = DigestAlgorithm.Sha512 }));
    }

    [Fact]
    public void Discard_node_is_compared_as_the_same_node_from_both_sides()
    {
        var onAlpha = Settings("discard-node-alpha", "alpha");
        var onBeta = Settings("discard-node-alpha", "beta");
        Assert.Equal(AfterSb0Pri.DiscardLocal, onAlpha.AfterSb0Pri);
        Assert.Equal(AfterSb0Pri.DiscardRemote, onBeta.AfterSb0Pri);
        Assert.Null(SettingsMismatch.Find(onAlpha, onBeta));
        Assert.Null(SettingsMismatch.Find(onBeta, onAlpha));
        // Each side names the other: they disagree about whom to discard.
        Assert.Equal("after-sb-0pri", SettingsMismatch.Find(onAlpha, Settings("discard-node-beta", "beta"))?.Setting);
        Assert.Equal("after-sb-0pri", SettingsMismatch.Find(onAlpha, Settings("discard-zero-changes", "beta"))?.Setting);
    }

    [Fact]
    public void Config_values_parse_and_unknown_ones_do_not()
    {
        Assert.True(ProtocolSettingsValues.TryParseProtocol("B", out var protocol));
        Assert.Equal(ReplicationProtocol.B, protocol);
        Assert.False(ProtocolSettingsValues.TryParseProtocol("D", out _));
        foreach (string v in new[] { "disconnect", "discard-younger-primary", "discard-older-primary", "discard-zero-changes", "discard-least-changes", "discard-local", "discard-remote" })
        {
            Assert.True(ProtocolSettingsValues.TryParseAfterSb0Pri(v, "alpha", out var p));
            Assert.Equal(v, ProtocolSettingsValues.Name(p));
        }

        foreach (string v in new[] { "disconnect", "consensus", "violently-as0p", "discard-secondary", "call-pri-lost-after-sb" })
        {
            Assert.True(ProtocolSettingsValues.TryParseAfterSb1Pri(v, out var p));
            Assert.Equal(v, ProtocolSettingsValues.Name(p));
        }

        foreach (string v in new[] { "disconnect", "violently-as0p", "call-pri-lost-after-sb" })
        {
            Assert.True(ProtocolSettingsValues.TryParseAfterSb2Pri(v, out var p));
            Assert.Equal(v, ProtocolSettingsValues.Name(p));
        }

        Assert.False(ProtocolSettingsValues.TryParseAfterSb0Pri("discard-node-", "alpha", out _));
        Assert.False(ProtocolSettingsValues.TryParseAfterSb1Pri("discard-zero-changes", out _));
        Assert.False(ProtocolSettingsValues.TryParseAfterSb2Pri("discard-secondary", out _));
        Assert.True(ProtocolSettingsValues.TryParseCompression("lz4", out var lz4));
        Assert.Equal(CompressionAlgorithm.Lz4, lz4);
        Assert.False(ProtocolSettingsValues.TryParseCompression("zstd", out _));
        Assert.True(DigestAlgorithms.TryParse("hmac(sha256)", out var sha));
        Assert.Equal(DigestAlgorithm.Sha256, sha);
        Assert.False(DigestAlgorithms.TryParse("sha3", out _));
    }

    [Fact]
    public void Mutual_hmac_authentication_accepts_the_right_secret_only()
    {
        Assert.True(PeerAuthentication.TryParseAlgorithm("sha256", out var alg, out _));
        var random = new SeededRandom(42);
        var alphaChallenge = AuthChallengeMessage.Create(random);
        var betaChallenge = AuthChallengeMessage.Create(random);
        Assert.NotEqual(alphaChallenge, betaChallenge);

        // beta (node 1) answers alpha's challenge; alpha (node 0) answers beta's.
        var betaAnswer = PeerAuthentication.ComputeResponse(alg, "change-me", alphaChallenge, ownNodeId: 1);
        var alphaAnswer = PeerAuthentication.ComputeResponse(alg, "change-me", betaChallenge, ownNodeId: 0);
        Assert.Equal(32, betaAnswer.Hmac.LengthBytes);
        Assert.True(PeerAuthentication.Verify(alg, "change-me", alphaChallenge, peerNodeId: 1, betaAnswer, out string? error), error);
        Assert.True(PeerAuthentication.Verify(alg, "change-me", betaChallenge, peerNodeId: 0, alphaAnswer, out error), error);

        var wrong = PeerAuthentication.ComputeResponse(alg, "wrong", alphaChallenge, 1);
        Assert.False(PeerAuthentication.Verify(alg, "change-me", alphaChallenge, 1, wrong, out error));
        Assert.Equal("authentication of peer failed (wrong shared-secret?)", error);
        // A response bound to another node-id (replayed from the other direction) fails.
        var replayed = PeerAuthentication.ComputeResponse(alg, "change-me", alphaChallenge, 0);
        Assert.False(PeerAuthentication.Verify(alg, "change-me", alphaChallenge, 1, replayed, out _));
        var sha1 = PeerAuthentication.ComputeResponse(DigestAlgorithm.Sha1, "change-me", alphaChallenge, 1);
        Assert.False(PeerAuthentication.Verify(alg, "change-me", alphaChallenge, 1, sha1, out error));
        Assert.Contains("cram-hmac-alg differs", error);

        Assert.True(PeerAuthentication.IsReflected(alphaChallenge, new AuthChallengeMessage(alphaChallenge.Bytes)));
        Assert.False(PeerAuthentication.IsReflected(alphaChallenge, betaChallenge));
        Assert.False(PeerAuthentication.TryParseAlgorithm("crc32c", out _, out error));
        Assert.Contains("cram-hmac-alg", error);
        Assert.NotNull(PeerAuthentication.CheckSecret(new string('s', 65)));
        Assert.NotNull(PeerAuthentication.CheckSecret(""));
        Assert.Null(PeerAuthentication.CheckSecret("change-me"));
    }

    [Fact]
    public void Hmac_matches_an_independent_computation()
    {
        var challenge = new AuthChallengeMessage(Enumerable.Range(0, 64).Select(i => (byte)(255 - i)).ToArray());
        var response = PeerAuthentication.ComputeResponse(DigestAlgorithm.Sha256, "secret", challenge, 5);
        byte[] expected = System.Security.Cryptography.HMACSHA256.HashData("secret"u8.ToArray(), (byte[])[.. challenge.Bytes, 0, 0, 0, 5]);
        Assert.Equal(expected, response.Hmac.Bytes.ToArray());
    }
}

// Mutual challenge-response from cram-hmac-alg + shared-secret, as DRBD 9's drbd_do_auth: each side
// sends 64 random bytes and answers the peer's with HMAC(secret, peer challenge ‖ own node-id as u32
// big-endian). Binding the node-id means a response cannot be replayed as the other side's, and a
// challenge equal to ours (a reflection attack) is refused. Deterministic: randomness comes from the caller.
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Redundancy.Block.Engine.Peers.Protocol;

public static class PeerAuthentication
{
    /// <summary>DRBD's limit on shared-secret.</summary>
    public const int MaxSecretBytes = 64;

    /// <summary>Parses cram-hmac-alg ("sha1", "sha256", "sha512", "md5", or "hmac(sha256)"); null means no authentication.</summary>
    public static bool TryParseAlgorithm(string? cramHmacAlg, out DigestAlgorithm algorithm, out string? error)
    {
        if (!DigestAlgorithms.TryParse(cramHmacAlg, out algorithm) || algorithm == DigestAlgorithm.Crc32C)
        {
            error = $"cram-hmac-alg \"{cramHmacAlg}\" is not one of md5, sha1, sha256, sha512";
            return false;
        }

        error = null;
        return true;
    }

    /// <summary>Checks a shared-secret: 1..64 bytes of UTF-8.</summary>
    public static string? CheckSecret(string? sharedSecret) =>
        string.IsNullOrEmpty(sharedSecret) || Encoding.UTF8.GetByteCount(sharedSecret) > MaxSecretBytes
            ? $"shared-secret must be 1..{MaxSecretBytes} bytes"
            : null;

    /// <summary>Our answer to the peer's challenge: HMAC(secret, challenge ‖ our node-id).</summary>
    public static AuthResponseMessage ComputeResponse(DigestAlgorithm algorithm, string sharedSecret, in AuthChallengeMessage peerChallenge, int ownNodeId)
    {
        Invariant.Assert(CheckSecret(sharedSecret) is null, "shared-secret was checked with the configuration");
        Span<byte> input = stackalloc byte[AuthChallengeMessage.Size + 4];
        peerChallenge.Bytes.CopyTo(input);
        BinaryPrimitives.WriteInt32BigEndian(input[AuthChallengeMessage.Size..], ownNodeId);
        Span<byte> key = stackalloc byte[MaxSecretBytes];
        int keyLength = Encoding.UTF8.GetBytes(sharedSecret, key);
        Span<byte> mac = stackalloc byte[DigestAlgorithms.MaxLengthBytes];
        int length = algorithm switch
        {
#pragma warning disable CA5351, CA5350 // md5/sha1 are cram-hmac-alg choices DRBD offers
            DigestAlgorithm.Md5 => HMACMD5.HashData(key[..keyLength], input, mac),
            DigestAlgorithm.Sha1 => HMACSHA1.HashData(key[..keyLength], input, mac),
#pragma warning restore CA5351, CA5350
            DigestAlgorithm.Sha256 => HMACSHA256.HashData(key[..keyLength], input, mac),
            DigestAlgorithm.Sha512 => HMACSHA512.HashData(key[..keyLength], input, mac),
            _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "not an HMAC algorithm"),
        };
        return new AuthResponseMessage(new Digest(mac[..length]));
    }

    /// <summary>
    /// Checks the peer's answer to our challenge (constant time). The error names the cause for the
    /// log, e.g. "authentication of peer failed (wrong shared-secret?)".
    /// </summary>
    public static bool Verify(
        DigestAlgorithm algorithm, string sharedSecret, in AuthChallengeMessage ourChallenge, int peerNodeId,
        in AuthResponseMessage response, out string? error)
    {
        var expected = ComputeResponse(algorithm, sharedSecret, ourChallenge, peerNodeId);
        error = expected.Hmac.LengthBytes != response.Hmac.LengthBytes
            ? $"authentication of peer failed: {response.Hmac.LengthBytes}-byte response, {DigestAlgorithms.Name(algorithm)} gives {expected.Hmac.LengthBytes} (cram-hmac-alg differs?)"
            : expected.Hmac != response.Hmac ? "authentication of peer failed (wrong shared-secret?)" : null;
        return error is null;
    }

    /// <summary>True when the peer sent back our own challenge: refuse (reflection attack).</summary>
    public static bool IsReflected(in AuthChallengeMessage ours, in AuthChallengeMessage peers) => ours.Equals(peers);
}

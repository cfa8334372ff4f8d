// Digests carried by peer messages (csums-alg, verify-alg, data-integrity-alg, cram-hmac-alg): an
// algorithm byte on the wire and up to 64 digest bytes held inline, so a message carrying a digest
// is still a plain struct and reading it allocates nothing. Computation uses the BCL only.
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>Digest algorithms, by the names drbd.conf uses (kernel crypto names).</summary>
public enum DigestAlgorithm : byte
{
    None = 0,
    Crc32C = 1,
    Md5 = 2,
    Sha1 = 3,
    Sha256 = 4,
    Sha512 = 5,
}

public static class DigestAlgorithms
{
    /// <summary>Largest digest of any algorithm (SHA-512).</summary>
    public const int MaxLengthBytes = 64;

    /// <summary>Parses a config value ("crc32c", "md5", "sha1", "sha256", "sha512", also "hmac(sha256)"); null or "" is None.</summary>
    public static bool TryParse(string? name, out DigestAlgorithm algorithm)
    {
        string n = (name ?? "").Trim().ToLowerInvariant();
        if (n.StartsWith("hmac(", StringComparison.Ordinal) && n.EndsWith(')'))
        {
            n = n[5..^1];
        }

        algorithm = n switch
        {
            "" or "none" => DigestAlgorithm.None,
            "crc32c" => DigestAlgorithm.Crc32C,
            "md5" => DigestAlgorithm.Md5,
            "sha1" => DigestAlgorithm.Sha1,
            "sha256" => DigestAlgorithm.Sha256,
            "sha512" => DigestAlgorithm.Sha512,
            _ => (DigestAlgorithm)0xFF,
        };
        return IsDefined(algorithm);
    }

    public static bool IsDefined(DigestAlgorithm algorithm) => algorithm <= DigestAlgorithm.Sha512;

    /// <summary>Digest length in bytes (0 for None).</summary>
    public static int LengthBytes(DigestAlgorithm algorithm) => algorithm switch
    {
        DigestAlgorithm.None => 0,
        DigestAlgorithm.Crc32C => 4,
        DigestAlgorithm.Md5 => 16,
        DigestAlgorithm.Sha1 => 20,
        DigestAlgorithm.Sha256 => 32,
        DigestAlgorithm.Sha512 => 64,
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm)),
    };

    /// <summary>The config name ("sha256"), as logs and settings mismatches print it.</summary>
    public static string Name(DigestAlgorithm algorithm) =>
        algorithm == DigestAlgorithm.None ? "none" : algorithm.ToString().ToLowerInvariant();

    /// <summary>Digest of <paramref name="data"/> into <paramref name="destination"/>; returns its length.</summary>
    public static int Compute(DigestAlgorithm algorithm, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        int length = LengthBytes(algorithm);
        Invariant.Assert(destination.Length >= length, "room for the digest");
        switch (algorithm)
        {
            case DigestAlgorithm.None: break;
            case DigestAlgorithm.Crc32C: BinaryPrimitives.WriteUInt32BigEndian(destination, Crc32C.Compute(data)); break;
#pragma warning disable CA5351, CA5350 // md5/sha1 are drbd.conf choices for checksums, not for secrecy
            case DigestAlgorithm.Md5: MD5.HashData(data, destination); break;
            case DigestAlgorithm.Sha1: SHA1.HashData(data, destination); break;
#pragma warning restore CA5351, CA5350
            case DigestAlgorithm.Sha256: SHA256.HashData(data, destination); break;
            case DigestAlgorithm.Sha512: SHA512.HashData(data, destination); break;
            default: Invariant.Fail("digest algorithm is defined"); break;
        }

        return length;
    }
}

/// <summary>Up to 64 digest bytes, held inline.</summary>
public readonly struct Digest : IEquatable<Digest>
{
    private readonly DigestBuffer _bytes;

    /// <summary>A digest holding a copy of <paramref name="bytes"/> (at most 64).</summary>
    public Digest(ReadOnlySpan<byte> bytes)
    {
        Invariant.Assert(bytes.Length <= DigestAlgorithms.MaxLengthBytes, "digest of at most 64 bytes");
        DigestBuffer buffer = default;
        bytes.CopyTo(buffer);
        _bytes = buffer;
        LengthBytes = (byte)bytes.Length;
    }

    public int LengthBytes { get; }

    /// <summary>The digest bytes (valid while this value lives).</summary>
    [UnscopedRef]
    public ReadOnlySpan<byte> Bytes => ((ReadOnlySpan<byte>)_bytes)[..LengthBytes];

    /// <summary>Digest of <paramref name="data"/> with <paramref name="algorithm"/>.</summary>
    public static Digest Compute(DigestAlgorithm algorithm, ReadOnlySpan<byte> data)
    {
        Span<byte> buffer = stackalloc byte[DigestAlgorithms.MaxLengthBytes];
        int length = DigestAlgorithms.Compute(algorithm, data, buffer);
        return new Digest(buffer[..length]);
    }

    /// <summary>Constant-time comparison (digests may authenticate).</summary>
    public bool Equals(Digest other) =>
        LengthBytes == other.LengthBytes && CryptographicOperations.FixedTimeEquals(Bytes, other.Bytes);

    public override bool Equals(object? obj) => obj is Digest other && Equals(other);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(Bytes);
        return hash.ToHashCode();
    }

    public override string ToString() => Convert.ToHexStringLower(Bytes);

    public static bool operator ==(Digest left, Digest right) => left.Equals(right);

    public static bool operator !=(Digest left, Digest right) => !left.Equals(right);

    [InlineArray(DigestAlgorithms.MaxLengthBytes)]
    private struct DigestBuffer
    {
        private byte _element0;
    }
}

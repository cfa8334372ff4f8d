// A sparse scratch file used as a backing disk by the storage tests. It lives on a real disk
// filesystem (RB_TEST_DISK_DIR, default /var/tmp), not tmpfs, because O_DIRECT, fallocate ZERO_RANGE
// and SEEK_DATA behave as on production disks only there. Deleted on Dispose.
namespace Redundancy.Block.Agent.Tests.Storage;

internal sealed class TempDiskFile : IDisposable
{
    public TempDiskFile(long sizeBytes, string? directory = null)
    {
        directory ??= Environment.GetEnvironmentVariable("RB_TEST_DISK_DIR") ?? "/var/tmp";
        Path = System.IO.Path.Combine(directory, $"rb-storage-test-{Guid.NewGuid():N}.img");
        using var stream = new FileStream(Path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        stream.SetLength(sizeBytes);
    }

    public string Path { get; }

    public void Dispose() => File.Delete(Path);

    /// <summary>Deterministic pseudo-random bytes, so a failing test reproduces.</summary>
    public static byte[] Pattern(int lengthBytes, int seed)
    {
        var bytes = new byte[lengthBytes];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}

// A loop device over a sparse scratch file, for tests that need a real kernel block device.
// `losetup -f --show` attaches it; Dispose always detaches it (`losetup -d`) and deletes the file,
// even when the test failed. LoopDeviceFactAttribute skips such tests, saying why, when the machine
// cannot make loop devices (not root, no losetup, no /dev/loop-control).
using System.Diagnostics;

namespace Redundancy.Block.Agent.Tests.Storage;

internal sealed class LoopDevice : IDisposable
{
    private readonly TempDiskFile backing;

    public LoopDevice(long sizeBytes)
    {
        backing = new TempDiskFile(sizeBytes);
        try
        {
            DevicePath = Run("losetup", "-f", "--show", backing.Path).Trim();
            Assert.StartsWith("/dev/loop", DevicePath, StringComparison.Ordinal);
        }
        catch
        {
            backing.Dispose();
            throw;
        }
    }

    public string DevicePath { get; }

    public void Dispose()
    {
        try
        {
            Run("losetup", "-d", DevicePath);
        }
        finally
        {
            backing.Dispose();
        }
    }

    /// <summary>Runs a command, returning stdout; throws with its stderr when it exits non-zero.</summary>
    public static string Run(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"{program} {string.Join(' ', arguments)} exited {process.ExitCode}: {stderr.Result.Trim()}");
        }

        return stdout;
    }
}

/// <summary>A fact that needs loop devices; skipped with the reason when this machine cannot make them.</summary>
internal sealed class LoopDeviceFactAttribute : FactAttribute
{
    public LoopDeviceFactAttribute()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Skip = "loop device tests need root";
        }
        else if (!File.Exists("/usr/sbin/losetup") && !File.Exists("/sbin/losetup"))
        {
            Skip = "loop device tests need losetup (apt-get install util-linux)";
        }
        else if (!File.Exists("/dev/loop-control"))
        {
            Skip = "loop device tests need /dev/loop-control (the loop module)";
        }
    }
}

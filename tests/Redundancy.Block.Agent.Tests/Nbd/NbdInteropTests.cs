// Runs libnbd's nbdinfo against our server when it is installed (skips cleanly otherwise).
using System.Diagnostics;
using System.Text.Json;
using Redundancy.Block.Agent.Tests.Nbd.TestSupport;

namespace Redundancy.Block.Agent.Tests.Nbd;

public class NbdInteropTests
{
    [Fact]
    public async Task Nbdinfo_sees_the_export_and_its_features()
    {
        const string Nbdinfo = "/usr/bin/nbdinfo";
        if (!File.Exists(Nbdinfo))
        {
            return;    // libnbd-bin not installed: nothing to interoperate with
        }

        var catalog = new TestCatalog();
        catalog.Add("r0", 64L << 20, description: "resource r0");
        catalog.Add("r1", 1 << 20, refusal: "r1 is Secondary; NBD clients are refused until it is promoted");
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);

        (int exitCode, string output, _) = await RunAsync(Nbdinfo, "--json", $"nbd://127.0.0.1:{fixture.Port}/r0");
        Assert.Equal(0, exitCode);
        JsonElement export = JsonDocument.Parse(output).RootElement.GetProperty("exports")[0];
        Assert.Equal(64L << 20, export.GetProperty("export-size").GetInt64());
        Assert.True(export.GetProperty("can_multi_conn").GetBoolean());
        Assert.True(export.GetProperty("can_fua").GetBoolean());
        Assert.Equal(33554432, export.GetProperty("block_size_maximum").GetInt32());

        // libnbd 1.14 shows the server's error message only in its debug log.
        (int refusedCode, _, string error) = await RunAsync(Nbdinfo, $"nbd://127.0.0.1:{fixture.Port}/r1");
        Assert.NotEqual(0, refusedCode);
        Assert.Contains("server error message: r1 is Secondary; NBD clients are refused until it is promoted", error);
    }

    private static async Task<(int ExitCode, string Output, string Error)> RunAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["LIBNBD_DEBUG"] = "1";
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start)!;
        try
        {
            Task<string> output = process.StandardOutput.ReadToEndAsync();
            Task<string> error = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            return (process.ExitCode, await output, await error);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }
}

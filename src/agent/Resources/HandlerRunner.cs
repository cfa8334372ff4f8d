using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// Runs a `handlers { NAME "command"; }` entry as DRBD does: through /bin/sh, with DRBD's environment
/// variables (DRBD_RESOURCE, DRBD_VOLUME, DRBD_MINOR, DRBD_BACKING_DEV, ...) so existing handler
/// scripts work unchanged. Returns the exit code (or -1 when it could not run).
/// </summary>
internal static partial class HandlerRunner
{
    public static async Task<int> RunAsync(string handler, string command, IReadOnlyDictionary<string, string> environment, ILogger logger, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }
        LogCalling(logger, handler, command);
        try
        {
            using var process = Process.Start(start);
            if (process is null)
            {
                return -1;
            }
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
            LogExit(logger, handler, process.ExitCode);
            return process.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            LogFailed(logger, handler, e.Message);
            return -1;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "helper command: /bin/sh -c {Command} ({Handler})")]
    private static partial void LogCalling(ILogger logger, string handler, string command);

    [LoggerMessage(Level = LogLevel.Information, Message = "helper command: {Handler} exit code {ExitCode}")]
    private static partial void LogExit(ILogger logger, string handler, int exitCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "helper command: {Handler} could not run: {Reason}")]
    private static partial void LogFailed(ILogger logger, string handler, string reason);
}

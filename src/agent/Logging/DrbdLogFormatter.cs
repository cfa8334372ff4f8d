using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Redundancy.Block.Agent.Logging;

/// <summary>
/// One line per event, the way a DRBD admin reads the kernel log: time, level, message
/// (`r0/0: disk( Inconsistent -> UpToDate )`), without .NET category names and event ids.
/// Exceptions follow on the next lines.
/// </summary>
internal sealed class DrbdLogFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "drbd";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        string message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null)
        {
            return;
        }
        textWriter.Write(DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
        textWriter.Write(' ');
        textWriter.Write(Level(logEntry.LogLevel));
        textWriter.Write(' ');
        textWriter.Write(message);
        textWriter.Write('\n');
        if (logEntry.Exception is not null)
        {
            textWriter.Write(logEntry.Exception.ToString());
            textWriter.Write('\n');
        }
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info ",
        LogLevel.Warning => "warn ",
        LogLevel.Error => "error",
        LogLevel.Critical => "crit ",
        _ => "     ",
    };
}

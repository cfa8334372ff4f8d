// A logger that keeps what the NBD server logs for one fuzzed connection: the last reason it gave
// (the outcome) and every Error-level entry (SessionFailed, DeviceUnexpectedError), each a crash.
using Microsoft.Extensions.Logging;

namespace Redundancy.Block.Fuzz.Support;

public sealed class RecordingLogger : ILogger
{
    private readonly Lock _lock = new();
    private readonly List<string> _errors = [];
    private readonly List<string> _messages = [];

    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (_lock)
            {
                return [.. _errors];
            }
        }
    }

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_lock)
            {
                return [.. _messages];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        string text = formatter(state, exception);
        lock (_lock)
        {
            _messages.Add(text);
            if (logLevel >= LogLevel.Error)
            {
                _errors.Add(exception is null ? text : $"{text}: {exception}");
            }
        }
    }
}

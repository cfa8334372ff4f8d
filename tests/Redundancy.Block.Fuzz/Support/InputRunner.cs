// Runs one input at a time on a worker thread with a time limit: an input that does not finish in
// time is a hang. A hung worker cannot be killed; it is abandoned (a background thread) and the
// caller stops fuzzing that target.
namespace Redundancy.Block.Fuzz.Support;

public sealed class InputRunner : IDisposable
{
    private readonly Func<byte[], string> _execute;
    private readonly SemaphoreSlim _start = new(0);
    private readonly SemaphoreSlim _done = new(0);
    private readonly Thread _thread;
    private byte[] _input = [];
    private string _outcome = "";
    private Exception? _failure;
    private volatile bool _stopping;

    public InputRunner(Func<byte[], string> execute)
    {
        _execute = execute;
        // Deep recursion in a parser must show up as a crash of this input, not of the fuzzer: 16 MiB.
        _thread = new Thread(Loop, 16 << 20) { IsBackground = true, Name = "fuzz-input" };
        _thread.Start();
    }

    /// <summary>Result of one input: its outcome, or the exception it raised, or a hang.</summary>
    public readonly record struct Result(string Outcome, Exception? Failure, bool Hung);

    public Result Run(byte[] input, TimeSpan limit)
    {
        _input = input;
        _start.Release();
        if (!_done.Wait(limit))
        {
            return new Result("", null, Hung: true);
        }

        return new Result(_outcome, _failure, Hung: false);
    }

    private void Loop()
    {
        while (true)
        {
            _start.Wait();
            if (_stopping)
            {
                return;
            }

            try
            {
                _outcome = _execute(_input);
                _failure = null;
            }
#pragma warning disable CA1031 // every exception of the target is a finding, reported by the caller
            catch (Exception exception)
#pragma warning restore CA1031
            {
                _outcome = "";
                _failure = exception;
            }

            _done.Release();
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _start.Release();
    }
}

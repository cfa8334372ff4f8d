// The fuzz loop for one target: replay the corpus, then mutate random corpus inputs until the time
// or execution budget is spent. Each input runs under a time limit (a hang is a failure); any
// exception is a crash, deduplicated by exception type and throwing frame, and its input is saved.
// Inputs with an outcome never seen before join the in-memory corpus (cheap feedback without
// coverage instrumentation).
using System.Diagnostics;
using System.Security.Cryptography;
using Redundancy.Block.Fuzz.Support;

namespace Redundancy.Block.Fuzz;

/// <summary>Budget and knobs of one fuzz pass.</summary>
public sealed record FuzzSettings(TimeSpan? Duration, long? Executions, int Seed, TimeSpan InputTimeLimit, string CorpusRoot, string CrashRoot, int MaxInputBytes);

/// <summary>What a pass over one target found.</summary>
public sealed record FuzzReport(string Target, long Executions, TimeSpan Elapsed, int UniqueCrashes, int Hangs, int InitialCorpus, int FinalCorpus,
    int Outcomes, IReadOnlyList<string> Findings)
{
    public bool Passed => UniqueCrashes == 0 && Hangs == 0;
}

public sealed class FuzzEngine(IFuzzTarget target, FuzzSettings settings, TextWriter log)
{
    private const int MaxCorpusEntries = 4096;
    private readonly List<byte[]> _corpus = [];
    private readonly HashSet<string> _outcomes = new(StringComparer.Ordinal);
    private readonly HashSet<string> _crashSignatures = new(StringComparer.Ordinal);
    private readonly List<string> _findings = [];
    private int _hangs;

    public FuzzReport Run()
    {
        foreach (var (name, check) in target.Checks())
        {
            RunCheck(name, check);
        }

        LoadCorpus();
        int initial = _corpus.Count;
        var random = new Random(settings.Seed ^ StableHash(target.Name));
        var mutator = new Mutator(random, target.Dictionary, settings.MaxInputBytes);
        var clock = Stopwatch.StartNew();
        long executions = 0;
        var runner = new InputRunner(target.Execute);
        try
        {
            foreach (byte[] input in _corpus.ToArray())
            {
                executions++;
                if (!RunOne(runner, input))
                {
                    return Report(executions, clock.Elapsed, initial);
                }
            }

            while (!BudgetSpent(executions, clock.Elapsed))
            {
                byte[] parent = _corpus.Count == 0 ? [] : _corpus[random.Next(_corpus.Count)];
                byte[] input = mutator.Mutate(parent, _corpus);
                if (random.Next(4) != 0)
                {
                    input = target.Repair(input);
                }

                executions++;
                if (!RunOne(runner, input))
                {
                    break;
                }
            }
        }
        finally
        {
            if (_hangs == 0)
            {
                runner.Dispose();
            }
        }

        return Report(executions, clock.Elapsed, initial);
    }

    private FuzzReport Report(long executions, TimeSpan elapsed, int initial) =>
        new(target.Name, executions, elapsed, _crashSignatures.Count, _hangs, initial, _corpus.Count, _outcomes.Count, _findings);

    private bool BudgetSpent(long executions, TimeSpan elapsed) =>
        (settings.Executions is { } max && executions >= max) || (settings.Duration is { } duration && elapsed >= duration);

    /// <summary>Runs one input; false when the target hung (fuzzing it further is pointless).</summary>
    private bool RunOne(InputRunner runner, byte[] input)
    {
        InputRunner.Result result = runner.Run(input, settings.InputTimeLimit);
        if (result.Hung)
        {
            _hangs++;
            string file = Save(input, "hang");
            Finding($"HANG (> {settings.InputTimeLimit.TotalMilliseconds:0} ms) on {input.Length}-byte input, saved {file}");
            return false;
        }

        if (result.Failure is { } failure)
        {
            string signature = Signature(failure);
            if (_crashSignatures.Add(signature))
            {
                string file = Save(input, "crash");
                Finding($"CRASH {signature}: {failure.GetType().Name}: {failure.Message}\n    input {input.Length} bytes saved to {file}\n{Indent(failure.StackTrace)}");
            }

            return true;
        }

        if (_outcomes.Add(result.Outcome) && _corpus.Count < MaxCorpusEntries)
        {
            _corpus.Add(input);
        }

        return true;
    }

    private void RunCheck(string name, Func<string?> check)
    {
        string? problem;
        try
        {
            problem = check();
        }
#pragma warning disable CA1031 // a check that throws failed; the exception is the report
        catch (Exception exception)
#pragma warning restore CA1031
        {
            problem = $"{exception.GetType().Name}: {exception.Message}";
        }

        if (problem is not null)
        {
            _crashSignatures.Add("check:" + name);
            Finding($"CHECK FAILED {name}: {problem}");
        }
    }

    private void Finding(string text)
    {
        _findings.Add(text);
        log.WriteLine($"  [{target.Name}] {text}");
    }

    private void LoadCorpus()
    {
        string directory = Path.Combine(settings.CorpusRoot, target.Name);
        if (Directory.Exists(directory))
        {
            foreach (string file in Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
            {
                _corpus.Add(File.ReadAllBytes(file));
            }
        }

        if (_corpus.Count == 0)
        {
            _corpus.AddRange(target.Seeds().Select(seed => seed.Input));
        }
    }

    private string Save(byte[] input, string kind)
    {
        string directory = Path.Combine(settings.CrashRoot, target.Name);
        Directory.CreateDirectory(directory);
        string file = Path.Combine(directory, $"{kind}-{Convert.ToHexStringLower(SHA256.HashData(input))[..16]}.bin");
        File.WriteAllBytes(file, input);
        return file;
    }

    /// <summary>Exception type and the first frame of this product's code (where it was thrown).</summary>
    public static string Signature(Exception failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        string frame = new StackTrace(failure).GetFrames()
            .Select(f => f.GetMethod())
            .Where(m => m?.DeclaringType?.FullName?.StartsWith("Redundancy.Block.", StringComparison.Ordinal) == true)
            .Select(m => $"{m!.DeclaringType!.Name}.{m.Name}")
            .FirstOrDefault() ?? "?";
        return failure is FuzzOracleException ? $"oracle@{frame}: {Outcome.Normalize(failure.Message)}" : $"{failure.GetType().Name}@{frame}";
    }

    private static string Indent(string? text) =>
        string.Join('\n', (text ?? "").Split('\n').Take(12).Select(line => "      " + line.TrimEnd()));

    private static int StableHash(string text)
    {
        int hash = 17;
        foreach (char c in text)
        {
            hash = (hash * 31) + c;
        }

        return hash;
    }
}

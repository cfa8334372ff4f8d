// Command line of the fuzzer (scripts/fuzz):
//   --target T[,T...]   targets to run (default: all; --list shows them)
//   --seconds N | --execs N   budget per target (default 10 s)
//   --seed S            seed of the mutations (default: from the clock; printed, so a run can be repeated)
//   --timeout-ms M      per-input time limit; longer is a hang (default 2000)
//   --corpus DIR        seed/regression corpus root (default tests/fuzz/corpus)
//   --crashes DIR       where crashing and hanging inputs are saved (default .work/fuzz/crashes)
//   --write-seeds       (re)write every target's generated seeds into the corpus and exit
// Prints one line per target and a total; exits 1 on any crash, hang or failed check.
using System.Globalization;

namespace Redundancy.Block.Fuzz;

public static class Program
{
    public static int Main(string[] args)
    {
        try
        {
            return Run(args);
        }
        catch (ArgumentException exception)
        {
            Console.Error.WriteLine($"fuzz: {exception.Message}");
            return 2;
        }
    }

    private static int Run(string[] args)
    {
        var options = ParseArguments(args);
        string root = RepositoryRoot();
        string corpus = options.GetValueOrDefault("corpus") ?? Path.Combine(root, "tests", "fuzz", "corpus");
        string crashes = options.GetValueOrDefault("crashes") ?? Path.Combine(root, ".work", "fuzz", "crashes");
        if (options.ContainsKey("list"))
        {
            foreach (IFuzzTarget target in FuzzTargets.All())
            {
                Console.WriteLine(target.Name);
            }

            return 0;
        }

        IReadOnlyList<IFuzzTarget> targets = FuzzTargets.Select(options.GetValueOrDefault("target"));
        if (options.ContainsKey("write-seeds"))
        {
            return WriteSeeds(targets, corpus);
        }

        int seed = options.TryGetValue("seed", out string? s) ? ParseInt(s, "--seed") : Environment.TickCount & 0x7FFFFFFF;
        long? executions = options.TryGetValue("execs", out string? e) ? ParseInt(e, "--execs") : null;
        TimeSpan? duration = options.TryGetValue("seconds", out string? d) ? TimeSpan.FromSeconds(ParseInt(d, "--seconds"))
            : executions is null ? TimeSpan.FromSeconds(10) : null;
        var timeLimit = TimeSpan.FromMilliseconds(options.TryGetValue("timeout-ms", out string? t) ? ParseInt(t, "--timeout-ms") : 2000);
        var settings = new FuzzSettings(duration, executions, seed, timeLimit, corpus, crashes, MaxInputBytes: 256 * 1024);
        return RunTargets(targets, settings);
    }

    private static int RunTargets(IReadOnlyList<IFuzzTarget> targets, FuzzSettings settings)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"fuzz: seed {settings.Seed}, {(settings.Duration is { } d ? $"{d.TotalSeconds:0} s" : $"{settings.Executions} executions")} per target, " +
            $"input time limit {settings.InputTimeLimit.TotalMilliseconds:0} ms, corpus {settings.CorpusRoot}");
        long total = 0;
        int crashes = 0, hangs = 0;
        foreach (IFuzzTarget target in targets)
        {
            FuzzReport report = new FuzzEngine(target, settings, Console.Out).Run();
            total += report.Executions;
            crashes += report.UniqueCrashes;
            hangs += report.Hangs;
            double rate = report.Executions / Math.Max(report.Elapsed.TotalSeconds, 0.001);
            Console.WriteLine(string.Create(inv,
                $"fuzz {report.Target}: {report.Executions} executions in {report.Elapsed.TotalSeconds:0.0} s ({rate:0}/s), " +
                $"{report.UniqueCrashes} unique crashes, {report.Hangs} hangs, corpus {report.InitialCorpus} -> {report.FinalCorpus}, " +
                $"{report.Outcomes} outcomes: {(report.Passed ? "PASS" : "FAIL")}"));
        }

        bool passed = crashes == 0 && hangs == 0;
        Console.WriteLine($"fuzz total: {total} executions, {crashes} unique crashes, {hangs} hangs (seed {settings.Seed}): {(passed ? "PASS" : "FAIL")}");
        Console.Out.Flush();
        // A hung input's thread cannot be stopped; leave without waiting for it.
        Environment.Exit(passed ? 0 : 1);
        return passed ? 0 : 1;
    }

    private static int WriteSeeds(IReadOnlyList<IFuzzTarget> targets, string corpus)
    {
        foreach (IFuzzTarget target in targets)
        {
            string directory = Path.Combine(corpus, target.Name);
            Directory.CreateDirectory(directory);
            foreach (string old in Directory.EnumerateFiles(directory, "seed-*"))
            {
                File.Delete(old);
            }

            var seeds = target.Seeds();
            foreach (var (name, input) in seeds)
            {
                File.WriteAllBytes(Path.Combine(directory, $"seed-{name}.bin"), input);
            }

            Console.WriteLine($"fuzz {target.Name}: wrote {seeds.Count} seeds to {directory}");
        }

        return 0;
    }

    private static Dictionary<string, string> ParseArguments(string[] args)
    {
        string[] flags = ["list", "write-seeds"];
        string[] valued = ["target", "seconds", "execs", "seed", "timeout-ms", "corpus", "crashes"];
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            string name = args[i].StartsWith("--", StringComparison.Ordinal) ? args[i][2..] : throw new ArgumentException($"unexpected argument '{args[i]}'");
            if (flags.Contains(name))
            {
                options[name] = "";
            }
            else if (valued.Contains(name) && i + 1 < args.Length)
            {
                options[name] = args[++i];
            }
            else
            {
                throw new ArgumentException($"unknown option or missing value: --{name} (see the top of Program.cs)");
            }
        }

        if (options.ContainsKey("seconds") && options.ContainsKey("execs"))
        {
            throw new ArgumentException("give --seconds or --execs, not both");
        }

        return options;
    }

    private static int ParseInt(string text, string option) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) ? value : throw new ArgumentException($"{option} needs a non-negative integer, got '{text}'");

    /// <summary>The directory holding Redundancy.Block.sln, searched upwards from here and from the binary.</summary>
    public static string RepositoryRoot()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, "Redundancy.Block.sln")))
                {
                    return directory.FullName;
                }
            }
        }

        throw new ArgumentException("cannot find the repository (Redundancy.Block.sln) above the current directory; give --corpus and --crashes");
    }
}

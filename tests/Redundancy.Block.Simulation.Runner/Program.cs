// scripts/sim's engine: runs seeds of the simulation at scale (Scale/ScaleRun in the simulation
// tests) on all cores, prints the totals (seeds, steps, acknowledged writes checked, faults by
// kind, operator outcomes) and every failing seed with the command that replays it. Exits 1 when a
// seed failed, 2 on bad arguments. No checker can be switched off and no failure is excused.
// --dual-primary runs the same seeds with allow-two-primaries and both nodes Primary (a mode of its
// own: without it every seed draws exactly what it always did); --slow-disks adds slow-disk faults
// (also a mode of its own, and combinable); --protocol A or B replicates asynchronously (not with
// --dual-primary: two Primaries need protocol C).
using System.Diagnostics;
using System.Globalization;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Simulation.Scale;

var options = RunnerOptions.Parse(args);
if (options is null)
{
    Console.Error.WriteLine("usage: sim [--seeds N] [--first F] [--seed S] [--steps K] [--jobs J] [--dual-primary] [--slow-disks] [--protocol A|B|C]");
    return 2;
}
var seeds = options.Seed is int one ? [one] : Enumerable.Range(options.First, options.Seeds).ToArray();
var clock = Stopwatch.StartNew();
var results = new ScaleResult[seeds.Length];
Parallel.For(0, seeds.Length, new ParallelOptions { MaxDegreeOfParallelism = options.Jobs }, i => results[i] = ScaleRun.Run(seeds[i], options.Steps, trace: options.Seed is not null, dualPrimary: options.DualPrimary, slowDisks: options.SlowDisks, protocol: options.Protocol));
clock.Stop();
Report.Print(results, options, clock.Elapsed);
return results.Any(r => r.Failure is not null) ? 1 : 0;

internal sealed record RunnerOptions(int Seeds, int First, int? Seed, int Steps, int Jobs, bool DualPrimary = false, bool SlowDisks = false,
    ReplicationProtocol Protocol = ReplicationProtocol.C)
{
    public static RunnerOptions? Parse(string[] args)
    {
        var o = new RunnerOptions(1000, 1, null, ScaleRun.DefaultSteps, Environment.ProcessorCount);
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--dual-primary")
            {
                o = o with { DualPrimary = true };
                continue;
            }
            if (args[i] == "--slow-disks")
            {
                o = o with { SlowDisks = true };
                continue;
            }
            if (args[i] == "--protocol")
            {
                if (i + 1 >= args.Length || args[i + 1] is not ("A" or "B" or "C"))
                {
                    return null;
                }
                o = o with { Protocol = Enum.Parse<ReplicationProtocol>(args[++i]) };
                continue;
            }
            if (i + 1 >= args.Length || !int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < 0)
            {
                return null;
            }
            o = args[i++] switch
            {
                "--seeds" => o with { Seeds = value },
                "--first" => o with { First = value },
                "--seed" => o with { Seed = value },
                "--steps" => o with { Steps = value },
                "--jobs" => o with { Jobs = Math.Max(1, value) },
                _ => null,
            };
            if (o is null)
            {
                return null;
            }
        }
        return o.DualPrimary && o.Protocol != ReplicationProtocol.C ? null : o;
    }

    /// <summary>The mode options as scripts/sim takes them (for the replay command).</summary>
    public string ModeArguments => (DualPrimary ? " --dual-primary" : string.Empty) + (SlowDisks ? " --slow-disks" : string.Empty)
        + (Protocol != ReplicationProtocol.C ? $" --protocol {Protocol}" : string.Empty);
}

internal static class Report
{
    public static void Print(ScaleResult[] results, RunnerOptions options, TimeSpan elapsed)
    {
        var failed = results.Where(r => r.Failure is not null).ToList();
        Console.WriteLine($"seeds run: {results.Length} ({(options.Seed is int s ? $"seed {s}" : $"{options.First}..{options.First + options.Seeds - 1}")}), {options.Steps} steps each, {options.Jobs} jobs{(options.DualPrimary ? ", dual-primary (allow-two-primaries, both nodes Primary)" : string.Empty)}{(options.SlowDisks ? ", slow disks" : string.Empty)}, protocol {options.Protocol}, {elapsed.TotalSeconds:F1} s");
        Console.WriteLine($"steps: {results.Sum(r => r.Steps)}");
        Console.WriteLine($"writes: {results.Sum(r => r.WritesIssued)} issued, {results.Sum(r => r.WritesAcknowledged)} acknowledged, {results.Sum(r => r.WritesForgiven)} acknowledged writes whose every copy was lost (unflushed at a crash, or only on a failed disk): no longer required");
        if (options.DualPrimary)
        {
            Console.WriteLine($"writes issued while the other Primary's write to the same block was in flight: {results.Sum(r => r.ConcurrentWrites)}");
        }
        Console.WriteLine($"acknowledged writes checked: {results.Sum(r => r.AcknowledgedChecks)} (node, block) comparisons against the newest required acknowledged write");
        Console.WriteLine($"bitmap coverage checks: {results.Sum(r => r.BitmapChecks)}; state observations: {results.Sum(r => r.TransitionsObserved)}");
        Console.WriteLine("faults injected:");
        foreach (var (kind, count) in Sum(results.Select(r => r.Faults)))
        {
            Console.WriteLine($"  {kind}: {count}");
        }
        Console.WriteLine("operator commands (result):");
        foreach (var (kind, count) in Sum(results.Select(r => r.Operator)))
        {
            Console.WriteLine($"  {kind}: {count}");
        }
        foreach (var failure in failed.Take(200))
        {
            Console.WriteLine($"FAILED seed {failure.Seed}: {failure.Failure}");
            Console.WriteLine($"  replay: scripts/sim --seed {failure.Seed}{(options.Steps != ScaleRun.DefaultSteps ? $" --steps {options.Steps}" : string.Empty)}{options.ModeArguments}");
        }
        if (failed.Count > 200)
        {
            Console.WriteLine($"... and {failed.Count - 200} more failing seeds: {string.Join(' ', failed.Skip(200).Select(f => f.Seed))}");
        }
        if (options.Seed is not null && failed.Count > 0)
        {
            Console.WriteLine(failed[0].Logs);
        }
        Console.WriteLine($"{results.Length - failed.Count} seeds passed, {failed.Count} seeds failed");
    }

    private static SortedDictionary<string, long> Sum(IEnumerable<Dictionary<string, long>> all)
    {
        var sum = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (kind, count) in all.SelectMany(d => d))
        {
            sum[kind] = sum.GetValueOrDefault(kind) + count;
        }
        return sum;
    }
}

// The fuzz engine itself: a target that throws on some mutants is reported as a crash with its input
// saved, a target that never returns is reported as a hang, and a well-behaved one passes.
namespace Redundancy.Block.Fuzz.Regression;

public sealed class FuzzEngineTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("rb-fuzz-engine-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private sealed class ProbeTarget(Func<byte[], string> execute) : IFuzzTarget
    {
        public string Name => "probe";

        public IReadOnlyList<byte[]> Dictionary => [];

        public IReadOnlyList<(string Name, byte[] Input)> Seeds() => [("a", [1, 2, 3, 4, 5, 6, 7, 8])];

        public byte[] Repair(byte[] input) => input;

        public string Execute(byte[] input) => execute(input);

        public IReadOnlyList<(string Name, Func<string?> Check)> Checks() => [];
    }

    private FuzzReport Run(Func<byte[], string> execute, int executions = 2000) =>
        new FuzzEngine(new ProbeTarget(execute), new FuzzSettings(null, executions, 1, TimeSpan.FromMilliseconds(300),
            Path.Combine(_root, "corpus"), Path.Combine(_root, "crashes"), 4096), TextWriter.Null).Run();

    [Fact]
    public void A_target_throwing_on_a_mutant_is_a_crash_with_its_input_saved()
    {
        FuzzReport report = Run(input => input.Length > 12 ? throw new IndexOutOfRangeException("too long") : "ok");
        Assert.False(report.Passed);
        Assert.Equal(1, report.UniqueCrashes);
        string saved = Assert.Single(Directory.GetFiles(Path.Combine(_root, "crashes", "probe")));
        Assert.True(File.ReadAllBytes(saved).Length > 12);
    }

    [Fact]
    public void A_target_that_does_not_return_is_a_hang()
    {
        using var release = new ManualResetEventSlim();
        FuzzReport report = Run(input =>
        {
            if (input.Length == 0)
            {
                release.Wait();
            }

            return "ok";
        });
        release.Set();
        Assert.Equal(1, report.Hangs);
        Assert.False(report.Passed);
    }

    [Fact]
    public void A_target_that_always_succeeds_passes_and_counts_its_executions()
    {
        FuzzReport report = Run(input => input.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), executions: 500);
        Assert.True(report.Passed);
        Assert.Equal(500, report.Executions);
        Assert.True(report.FinalCorpus > report.InitialCorpus);
    }
}

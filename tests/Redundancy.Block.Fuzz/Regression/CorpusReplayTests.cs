// Replays every input kept in tests/fuzz/corpus (seeds and the crashing inputs of fixed bugs) through
// its target's oracle, runs each target's fixed checks, and checks that the seeds are valid inputs
// (they decode without errors), so the regression corpus keeps reaching the code behind the checks.
namespace Redundancy.Block.Fuzz.Regression;

public class CorpusReplayTests
{
    public static TheoryData<string, string> CorpusFiles()
    {
        var data = new TheoryData<string, string>();
        string root = Path.Combine(Program.RepositoryRoot(), "tests", "fuzz", "corpus");
        foreach (IFuzzTarget target in FuzzTargets.All())
        {
            foreach (string file in Directory.EnumerateFiles(Path.Combine(root, target.Name)).Order(StringComparer.Ordinal))
            {
                data.Add(target.Name, Path.GetFileName(file));
            }
        }

        return data;
    }

    public static TheoryData<string> TargetNames()
    {
        var data = new TheoryData<string>();
        foreach (IFuzzTarget target in FuzzTargets.All())
        {
            data.Add(target.Name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CorpusFiles))]
    public void Corpus_input_passes_its_oracle(string target, string file)
    {
        IFuzzTarget fuzzTarget = FuzzTargets.Select(target)[0];
        byte[] input = File.ReadAllBytes(Path.Combine(Program.RepositoryRoot(), "tests", "fuzz", "corpus", target, file));
        string outcome = fuzzTarget.Execute(input);
        Assert.NotNull(outcome);
    }

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void Fixed_checks_pass(string target)
    {
        foreach (var (name, check) in FuzzTargets.Select(target)[0].Checks())
        {
            Assert.True(check() is null, $"{target}: {name}: {check()}");
        }
    }

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void Every_target_has_seeds_in_the_corpus(string target)
    {
        string directory = Path.Combine(Program.RepositoryRoot(), "tests", "fuzz", "corpus", target);
        var seeds = FuzzTargets.Select(target)[0].Seeds();
        Assert.All(seeds, seed => Assert.Equal(seed.Input, File.ReadAllBytes(Path.Combine(directory, $"seed-{seed.Name}.bin"))));
    }

    [Fact]
    public void Peer_frame_seeds_decode_without_a_single_error()
    {
        var target = new Targets.PeerFramesTarget();
        foreach (var (name, input) in target.Seeds())
        {
            string outcome = target.Execute(input);
            Assert.True(outcome.EndsWith("|end", StringComparison.Ordinal) && outcome.Split('|').SkipLast(1).All(frame => frame.EndsWith("::", StringComparison.Ordinal)),
                $"{name}: {outcome}");
        }
    }

    [Fact]
    public void Metadata_seeds_open_with_their_activity_log()
    {
        var target = new Targets.MetadataTarget();
        foreach (var (name, input) in target.Seeds())
        {
            Assert.StartsWith("ok:", target.Execute(input), StringComparison.Ordinal);
            Assert.True(name.Contains("torn", StringComparison.Ordinal) || target.Execute(input).StartsWith("ok:True:", StringComparison.Ordinal), name);
        }
    }

    [Fact]
    public void Config_seeds_parse()
    {
        var target = new Targets.ConfigTarget();
        Assert.All(target.Seeds(), seed => Assert.StartsWith("ok:", target.Execute(seed.Input), StringComparison.Ordinal));
    }

    [Fact]
    public void Nbd_session_seeds_reach_transmission()
    {
        var target = new Targets.NbdSessionTarget();
        foreach (var (name, input) in target.Seeds().Where(seed => seed.Name.StartsWith("go", StringComparison.Ordinal) || seed.Name == "read-only"))
        {
            Assert.Contains("NBD_CMD_DISC", target.Execute(input), StringComparison.Ordinal);
        }
    }
}

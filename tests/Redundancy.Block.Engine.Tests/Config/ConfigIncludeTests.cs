// `include` on disk: globs relative to the including file, absolute globs, missing matches, cycles.
using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Engine.Tests.Config;

public sealed class ConfigIncludeTests : IDisposable
{
    private readonly string root = Directory.CreateTempSubdirectory("rb-config-").FullName;

    public void Dispose() => Directory.Delete(root, recursive: true);

    private string Write(string relative, string text)
    {
        string path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private static string Resource(string name, int port) => $$"""
        resource {{name}} {
          on a { address 127.0.0.1:{{port}}; disk /srv/{{name}}-a.img; }
          on b { address 127.0.0.1:{{port + 1}}; disk /srv/{{name}}-b.img; }
        }
        """;

    [Fact]
    public void Relative_glob_includes_matching_files_in_sorted_order()
    {
        Write("drbd.d/global_common.conf", "global { usage-count no; }\ncommon { net { protocol A; } }\n");
        Write("drbd.d/r1.res", Resource("r1", 7002));
        Write("drbd.d/r0.res", Resource("r0", 7000));
        Write("drbd.d/notes.txt", "this is not a config file {");
        string main = Write("drbd.conf", "include \"drbd.d/global_common.conf\";\ninclude \"drbd.d/*.res\";\ninclude \"none.d/*.res\";\n");

        var config = ConfigParser.Parse(main);

        Assert.Equal(["r0", "r1"], config.Resources.Select(r => r.Name));
        Assert.Equal('A', config.Resolve("r1").Protocol());
        Assert.Equal("no", config.GlobalOptions["usage-count"]);
        Assert.Equal(Path.Combine(root, "drbd.d/global_common.conf") + ":1", config.Ignored.Single().Location);
    }

    [Fact]
    public void Absolute_glob_and_nested_include_resolve_from_the_including_file()
    {
        Write("conf/sub/inner.res", Resource("inner", 7100));
        Write("conf/outer.inc", "include \"sub/*.res\";\n");
        string main = Write("main.conf", $"include \"{root}/conf/*.inc\";\n");

        var config = ConfigParser.Parse(main);

        Assert.Equal("inner", Assert.Single(config.Resources).Name);
    }

    [Fact]
    public void Errors_in_included_files_name_that_file_and_line()
    {
        string bad = Write("drbd.d/bad.res", "resource r0 {\n  net { protocol Z; }\n}\n");
        string main = Write("drbd.conf", "include \"drbd.d/*.res\";\n");

        var e = Assert.Throws<ConfigException>(() => ConfigParser.Parse(main));

        Assert.Equal($"{bad}:2: 'Z' is not a valid value for 'protocol', expected one of A, B, C", e.Message);
    }

    [Fact]
    public void Include_cycle_is_an_error()
    {
        string a = Write("a.conf", "include \"b.conf\";\n");
        string b = Write("b.conf", "\ninclude \"a.conf\";\n");

        var e = Assert.Throws<ConfigException>(() => ConfigParser.Parse(a));

        Assert.Equal($"{b}:2: include of '{a}' forms a cycle ({a} -> {b} -> {a}), expected includes without cycles", e.Message);
    }

    [Fact]
    public void Self_include_through_a_glob_is_a_cycle()
    {
        string main = Write("d/all.conf", "include \"*.conf\";\n");

        var e = Assert.Throws<ConfigException>(() => ConfigParser.Parse(main));

        Assert.StartsWith($"{main}:1: include of '{main}' forms a cycle", e.Message);
    }

    [Fact]
    public void File_included_twice_without_cycle_is_read_once()
    {
        Write("r.res", Resource("r0", 7000));
        string main = Write("main.conf", "include \"r.res\";\ninclude \"r.res\";\ninclude \"*.res\";\n");

        Assert.Single(ConfigParser.Parse(main).Resources);
    }

    [Fact]
    public void Missing_literal_include_and_missing_main_file_are_errors()
    {
        string main = Write("main.conf", "\ninclude \"missing.res\";\n");
        Assert.Equal($"{main}:2: included file 'missing.res' does not exist, expected an existing file or a glob",
            Assert.Throws<ConfigException>(() => ConfigParser.Parse(main)).Message);

        string absent = Path.Combine(root, "absent.conf");
        Assert.StartsWith($"{absent}: cannot read configuration file:", Assert.Throws<ConfigException>(() => ConfigParser.Parse(absent)).Message);
    }

    [Fact]
    public void ParseText_reads_includes_through_the_callback()
    {
        var files = new Dictionary<string, string> { ["r0.res"] = Resource("r0", 7000), ["loop.res"] = "include \"main.conf\";", ["main.conf"] = "include \"loop.res\";" };
        var config = ConfigParser.ParseText("include \"r0.res\";\ninclude \"*.missing\";\n", "main.conf", n => files.GetValueOrDefault(n));
        Assert.Equal("r0", Assert.Single(config.Resources).Name);

        var e = Assert.Throws<ConfigException>(() => ConfigParser.ParseText("include \"loop.res\";", "main.conf", n => files.GetValueOrDefault(n)));
        Assert.Equal("loop.res:1: include of 'main.conf' forms a cycle (main.conf -> loop.res -> main.conf), expected includes without cycles", e.Message);
    }

    [Theory]
    [InlineData("conf.d/[z-a].res")]
    [InlineData("[z-a]/x.res")]
    public void A_glob_set_the_regex_engine_refuses_is_a_config_error(string pattern)
    {
        // Found by scripts/fuzz --target config (corpus: regress-glob-reverse-range): a RegexParseException escaped.
        Write("conf.d/r.res", "\n");
        string main = Write("main.conf", $"include \"{pattern}\";\n");
        string message = Assert.Throws<ConfigException>(() => ConfigParser.Parse(main)).Message;
        Assert.StartsWith($"{main}:1: include pattern '{pattern}' cannot be expanded:", message);
    }

    [Theory]
    [InlineData("conf.d/*[")]
    [InlineData("conf.d/[")]
    [InlineData("conf.d/*.res[a")]
    public void A_glob_ending_in_an_open_bracket_matches_it_literally(string pattern)
    {
        // Found by scripts/fuzz --target config (corpus: regress-glob-trailing-bracket): '[' at the end threw ArgumentOutOfRangeException.
        Write("conf.d/r.res", "global { usage-count no; }\n");
        string main = Write("main.conf", $"include \"{pattern}\";\n");
        Assert.Empty(ConfigParser.Parse(main).Resources);
    }
}


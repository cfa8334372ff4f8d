// Fuzz target "config": drbd.conf text through the lexer, grammar, resolver and includes
// (ConfigParser.ParseText; lines "#@file NAME" split the input into the main file and files it may
// include), then what the CLI and agent do with a resolved resource: every ResourceOptions accessor
// (numbers the parser accepted must convert) and `rbadm dump`, whose output must parse back to the
// same dump. The first line (a comment) also runs as an include glob (DiskIncludeSource) inside a scratch
// directory. Oracle: success or a ConfigException whose message starts with FILE:LINE of a real line.
using System.Reflection;
using System.Text;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Fuzz.Support;

namespace Redundancy.Block.Fuzz.Targets;

public sealed class ConfigTarget : IFuzzTarget
{
    private const string MainFile = "drbd.conf";
    private const string FileMarker = "#@file ";

    private static readonly MethodInfo[] Accessors = [.. typeof(ResourceOptions).GetMethods(BindingFlags.Public | BindingFlags.Static)
        .Where(m => m.GetParameters() is [{ ParameterType: var first }, ..] p && first == typeof(ResourceDefinition)
            && (p.Length == 1 || (p.Length == 2 && p[1].ParameterType == typeof(VolumeDefinition))))];

    private readonly Lazy<string> _globRoot = new(CreateGlobRoot);

    public string Name => "config";

    public IReadOnlyList<byte[]> Dictionary { get; } = [.. ConfigSeeds.Keywords.Select(Encoding.UTF8.GetBytes)];

    public IReadOnlyList<(string Name, byte[] Input)> Seeds() => ConfigSeeds.All();

    public byte[] Repair(byte[] input) => input;

    public string Execute(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        string text = Encoding.UTF8.GetString(input);
        Dictionary<string, string> files = Split(text);
        string outcome;
        try
        {
            ConfigFile config = ConfigParser.ParseText(files[MainFile], MainFile, name => files.GetValueOrDefault(name));
            outcome = "ok:" + string.Join(',', config.Resources.Select(CheckResource));
        }
        catch (ConfigException error)
        {
            CheckError(error, files);
            outcome = "error:" + Outcome.Normalize(error.Detail);
        }

        return outcome + "|" + Glob(text.Split('\n')[0].TrimStart('#', ' '));
    }

    /// <summary>Main text up to the first marker, then one file per "#@file NAME" line.</summary>
    private static Dictionary<string, string> Split(string text)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        string name = MainFile;
        var current = new StringBuilder();
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith(FileMarker, StringComparison.Ordinal))
            {
                files.TryAdd(name, current.ToString());
                name = line[FileMarker.Length..].Trim();
                current.Clear();
                continue;
            }

            current.Append(line).Append('\n');
        }

        files.TryAdd(name, current.ToString());
        return files;
    }

    /// <summary>A ConfigException must name a file that exists and a line inside it.</summary>
    private static void CheckError(ConfigException error, Dictionary<string, string> files)
    {
        if (!error.Message.StartsWith(error.File + ":", StringComparison.Ordinal) || string.IsNullOrWhiteSpace(error.Detail))
        {
            throw new FuzzOracleException($"config error without a FILE: prefix or detail: {error.Message}");
        }

        if (error.Line is { } line)
        {
            int lines = files.TryGetValue(error.File, out string? text) ? text.Count(c => c == '\n') + 1
                : throw new FuzzOracleException($"config error names a file that was never read: {error.Message}");
            if (line < 1 || line > lines)
            {
                throw new FuzzOracleException($"config error points at line {line} of a {lines}-line file: {error.Message}");
            }
        }
    }

    private static string CheckResource(ResourceDefinition resource)
    {
        foreach (MethodInfo accessor in Accessors)
        {
            Call(accessor, resource, null);
            foreach (VolumeDefinition volume in resource.Nodes.SelectMany(node => node.Volumes))
            {
                if (accessor.GetParameters().Length == 2)
                {
                    Call(accessor, resource, volume);
                }

                _ = (volume.DevicePath, volume.DeviceMinor, volume.IsInternalMetadata);
            }
        }

        string dumped = ConfigDumper.Dump(resource);
        ResourceDefinition reparsed;
        try
        {
            reparsed = ConfigParser.ParseText(dumped, "dump.res").Resolve(resource.Name);
        }
        catch (ConfigException error)
        {
            throw new FuzzOracleException($"the dump of accepted resource '{resource.Name}' does not parse: {error.Message}\n{dumped}");
        }

        if (Body(ConfigDumper.Dump(reparsed)) != Body(dumped))
        {
            throw new FuzzOracleException($"the dump of resource '{resource.Name}' parses to a different resource:\n{dumped}");
        }

        return $"{resource.Nodes.Count}n{resource.Nodes.Sum(n => n.Volumes.Count)}v";
    }

    private static void Call(MethodInfo accessor, ResourceDefinition resource, VolumeDefinition? volume)
    {
        try
        {
            accessor.Invoke(null, accessor.GetParameters().Length == 1 ? [resource] : [resource, volume]);
        }
        catch (TargetInvocationException wrapped) when (wrapped.InnerException is { } inner)
        {
            throw new FuzzOracleException($"ResourceOptions.{accessor.Name} failed on a resolved resource: {inner.GetType().Name}: {inner.Message}");
        }
    }

    private static string Body(string dump) =>
        string.Join('\n', dump.Split('\n').Where(l => !l.StartsWith("# ignored:", StringComparison.Ordinal)));

    /// <summary>The line as an include glob, kept inside the scratch directory (no absolute paths, no "..").</summary>
    private string Glob(string line)
    {
        string pattern = string.Join('/', line.Trim().Split('/', StringSplitOptions.RemoveEmptyEntries).Where(part => part != ".."));
        if (pattern.Length == 0 || pattern.Length > 80)
        {
            return "";
        }

        try
        {
            var files = new DiskIncludeSource().Expand(pattern, Path.Combine(_globRoot.Value, MainFile), new SourceLocation(MainFile, 1));
            return $"glob:{files.Count}";
        }
        catch (ConfigException error)
        {
            return "glob:" + Outcome.Normalize(error.Detail);
        }
    }

    private static string CreateGlobRoot()
    {
        string root = Path.Combine(Path.GetTempPath(), $"rb-fuzz-glob-{Environment.ProcessId}");
        Directory.CreateDirectory(Path.Combine(root, "conf.d"));
        File.WriteAllText(Path.Combine(root, "conf.d", "r0.res"), "resource r0 { on a { node-id 0; address 127.0.0.1:7000; volume 0 { disk /d; } } }\n");
        File.WriteAllText(Path.Combine(root, "conf.d", "global.conf"), "global { usage-count no; }\n");
        File.WriteAllText(Path.Combine(root, ".hidden.res"), "\n");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Directory.Delete(root, recursive: true);
        return root;
    }

    public IReadOnlyList<(string Name, Func<string?> Check)> Checks() => [];
}

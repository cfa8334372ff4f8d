// The parsed configuration: every resource resolved, plus the global section. Which resources `all`
// means, and which node is "this" one, is the CLI's business.
using System.Diagnostics.CodeAnalysis;

namespace Redundancy.Block.Engine.Config;

public sealed class ConfigFile
{
    internal ConfigFile(string fileName, IReadOnlyList<ResourceDefinition> resources,
        IReadOnlyDictionary<string, string> globalOptions, IReadOnlyList<IgnoredKeyword> ignored)
    {
        FileName = fileName;
        Resources = resources;
        GlobalOptions = globalOptions;
        Ignored = ignored;
    }

    /// <summary>The main file's name as given to the parser.</summary>
    public string FileName { get; }

    /// <summary>Resources in file order (includes expanded where they appear).</summary>
    public IReadOnlyList<ResourceDefinition> Resources { get; }

    /// <summary>`global { }` options as written (usage-count, minor-count, ...); none has an effect here.</summary>
    public IReadOnlyDictionary<string, string> GlobalOptions { get; }

    /// <summary>Top-level statements without effect: global options, `skip` blocks, module-version requirements.</summary>
    public IReadOnlyList<IgnoredKeyword> Ignored { get; }

    public bool TryGetResource(string name, [NotNullWhen(true)] out ResourceDefinition? resource)
    {
        resource = Resources.FirstOrDefault(r => string.Equals(r.Name, name, StringComparison.Ordinal));
        return resource is not null;
    }

    /// <summary>The resource called <paramref name="name"/>; ConfigException when the file does not define it.</summary>
    public ResourceDefinition Resolve(string name) =>
        TryGetResource(name, out var resource)
            ? resource
            : throw new ConfigException(FileName, $"resource '{name}' is not defined, expected one of: {string.Join(", ", Resources.Select(r => r.Name))}");
}

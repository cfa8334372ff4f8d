// Entry point for reading a drbd.conf-syntax configuration: from disk (with `include` globs
// resolved relative to the including file, as drbdadm does) or from text (tests, stdin).
namespace Redundancy.Block.Engine.Config;

public static class ConfigParser
{
    /// <summary>Reads <paramref name="path"/> and the files it includes; ConfigException on any error.</summary>
    public static ConfigFile Parse(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(path, $"cannot read configuration file: {e.Message}");
        }
        string fullPath = Path.GetFullPath(path);
        var raw = ConfigGrammar.Read(text, path, fullPath, new DiskIncludeSource());
        return ConfigResolver.Resolve(raw, path, configFile: fullPath);
    }

    /// <summary>
    /// Parses <paramref name="text"/> as if read from <paramref name="fileName"/>. `include X;` calls
    /// <paramref name="readInclude"/> with X as written (no glob expansion); it returns the text, or null when X
    /// does not exist. Without <paramref name="readInclude"/>, any include of a literal name is an error.
    /// </summary>
    public static ConfigFile ParseText(string text, string fileName, Func<string, string?>? readInclude = null)
    {
        var raw = ConfigGrammar.Read(text, fileName, fileName, new TextIncludeSource(readInclude ?? (_ => null)));
        return ConfigResolver.Resolve(raw, fileName);
    }

    /// <summary>Whether drbdadm would treat an include argument as a glob (a missing match is then not an error).</summary>
    internal static bool IsGlob(string pattern) => pattern.IndexOfAny(['*', '?', '[']) >= 0;

    private sealed class TextIncludeSource(Func<string, string?> read) : IIncludeSource
    {
        public IReadOnlyList<IncludedFile> Expand(string pattern, string fromFile, SourceLocation where)
        {
            string? text = read(pattern);
            if (text is not null)
            {
                return [new IncludedFile(pattern, text)];
            }
            return IsGlob(pattern)
                ? []
                : throw ConfigException.At(where, $"included file '{pattern}' does not exist, expected an existing file or a glob");
        }
    }
}

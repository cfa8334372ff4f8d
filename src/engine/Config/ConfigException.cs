// A configuration file error, always pointing at the file and line where it was found, in the
// "FILE:LINE: what was found, what was expected" form drbdadm users are used to.
namespace Redundancy.Block.Engine.Config;

/// <summary>An invalid configuration: Message is `FILE:LINE: detail` (or `FILE: detail` without a line).</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string file, int line, string detail)
        : base($"{file}:{line}: {detail}")
    {
        File = file;
        Line = line;
        Detail = detail;
    }

    public ConfigException(string file, string detail)
        : base($"{file}: {detail}")
    {
        File = file;
        Detail = detail;
    }

    /// <summary>File name as it was given (or as an include resolved it).</summary>
    public string File { get; }

    /// <summary>1-based line, or null when the error is not about one line (e.g. unknown resource).</summary>
    public int? Line { get; }

    /// <summary>The message without the location prefix.</summary>
    public string Detail { get; }

    internal static ConfigException At(SourceLocation where, string detail) => new(where.File, where.Line, detail);
}

/// <summary>Where a token or statement was read.</summary>
internal readonly record struct SourceLocation(string File, int Line)
{
    public override string ToString() => $"{File}:{Line}";
}

// `include "PATTERN";` on disk: the pattern is a glob (*, ?, [...]) resolved relative to the directory
// of the including file, matches read in sorted order. A glob without match is fine (drbdadm is
// silent too); a literal name that does not exist is an error.
using System.Text;
using System.Text.RegularExpressions;

namespace Redundancy.Block.Engine.Config;

internal sealed class DiskIncludeSource : IIncludeSource
{
    public IReadOnlyList<IncludedFile> Expand(string pattern, string fromFile, SourceLocation where)
    {
        string baseDirectory = Path.GetDirectoryName(Path.GetFullPath(fromFile)) ?? "/";
        string absolute = Path.IsPathRooted(pattern) ? pattern : Path.Combine(baseDirectory, pattern);
        List<string> matches;
        try
        {
            matches = ConfigParser.IsGlob(pattern) ? Glob(absolute) : File.Exists(absolute) ? [absolute] : [];
        }
        catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
        {
            // A set the regex engine refuses ("[z-a]") or a directory we may not list.
            throw ConfigException.At(where, $"include pattern '{pattern}' cannot be expanded: {e.Message}, expected a file name or a glob of *, ? and [...]");
        }

        if (matches.Count == 0 && !ConfigParser.IsGlob(pattern))
        {
            throw ConfigException.At(where, $"included file '{pattern}' does not exist, expected an existing file or a glob");
        }
        var files = new List<IncludedFile>();
        foreach (string file in matches)
        {
            try
            {
                files.Add(new IncludedFile(file, File.ReadAllText(file)));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw ConfigException.At(where, $"cannot read included file '{file}': {e.Message}");
            }
        }
        return files;
    }

    /// <summary>Expands an absolute glob segment by segment; only regular files match at the end.</summary>
    private static List<string> Glob(string absolutePattern)
    {
        string[] segments = absolutePattern.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = new List<string> { "/" };
        for (int i = 0; i < segments.Length; i++)
        {
            bool last = i == segments.Length - 1;
            var next = new List<string>();
            foreach (string directory in current.Where(Directory.Exists))
            {
                next.AddRange(Match(directory, segments[i], last));
            }
            current = next;
        }
        current.Sort(StringComparer.Ordinal);
        return current;
    }

    private static IEnumerable<string> Match(string directory, string segment, bool last)
    {
        if (!ConfigParser.IsGlob(segment))
        {
            string path = Path.Combine(directory, segment);
            return (last ? File.Exists(path) : Directory.Exists(path)) ? [path] : [];
        }
        var regex = new Regex(GlobToRegex(segment), RegexOptions.CultureInvariant);
        var entries = last ? Directory.EnumerateFiles(directory) : Directory.EnumerateDirectories(directory);
        return entries.Where(e =>
        {
            string name = Path.GetFileName(e);
            return regex.IsMatch(name) && (!name.StartsWith('.') || segment.StartsWith('.'));
        });
    }

    private static string GlobToRegex(string segment)
    {
        var regex = new StringBuilder("^");
        for (int i = 0; i < segment.Length; i++)
        {
            char c = segment[i];
            int close = c == '[' && i + 2 <= segment.Length ? segment.IndexOf(']', i + 2) : -1;
            if (c == '*')
            {
                regex.Append("[^/]*");
            }
            else if (c == '?')
            {
                regex.Append("[^/]");
            }
            else if (close > 0)
            {
                string set = segment[(i + 1)..close];
                set = set.StartsWith('!') ? "^" + set[1..] : set;
                regex.Append('[').Append(set.Replace("\\", "\\\\", StringComparison.Ordinal)).Append(']');
                i = close;
            }
            else
            {
                regex.Append(Regex.Escape(c.ToString()));
            }
        }
        return regex.Append('$').ToString();
    }
}

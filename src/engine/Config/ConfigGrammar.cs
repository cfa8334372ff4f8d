// Recursive-descent reader for drbd.conf (DRBD 9 grammar plus the 8.4 spellings real configs still
// carry): top level, `common`/`resource` bodies and option sections. Host, volume and connection
// sections are in ConfigGrammar.Hosts.cs. Produces a RawConfig; inheritance is ConfigResolver's job.
namespace Redundancy.Block.Engine.Config;

/// <summary>Reads the files an `include` names.</summary>
internal interface IIncludeSource
{
    /// <summary>Files matching <paramref name="pattern"/> as written in <paramref name="fromFile"/>, in glob order.</summary>
    IReadOnlyList<IncludedFile> Expand(string pattern, string fromFile, SourceLocation where);
}

internal sealed record IncludedFile(string Name, string Text);

internal sealed partial class ConfigGrammar
{
    private readonly RawConfig config = new();
    private readonly IIncludeSource includes;
    private readonly List<string> fileStack = [];
    private readonly HashSet<string> seenFiles = new(StringComparer.Ordinal);
    /// <summary>Ignored statements found below the resource level, attached to the resource when it closes.</summary>
    private readonly List<IgnoredKeyword> pendingIgnored = [];
    private TokenReader reader = new([]);

    private ConfigGrammar(IIncludeSource includes) => this.includes = includes;

    /// <summary>Reads the main file; <paramref name="identity"/> names it for cycle detection (a full path on disk).</summary>
    public static RawConfig Read(string text, string fileName, string identity, IIncludeSource includes)
    {
        var grammar = new ConfigGrammar(includes);
        grammar.ReadFile(text, fileName, identity);
        return grammar.config;
    }

    private void ReadFile(string text, string fileName, string identity)
    {
        var outer = reader;
        fileStack.Add(identity);
        seenFiles.Add(identity);
        reader = new TokenReader(ConfigLexer.Tokenize(text, fileName));
        ReadTopLevel();
        reader = outer;
        fileStack.RemoveAt(fileStack.Count - 1);
    }

    private void ReadTopLevel()
    {
        while (true)
        {
            var token = reader.Next();
            switch (token.Kind == TokenKind.Word ? token.Text : null)
            {
                case "global":
                    reader.Expect(TokenKind.OpenBrace, "after 'global'");
                    ReadOptionBlock(ConfigSection.Global, config.Global);
                    break;
                case "common":
                    if (config.Common is not null)
                    {
                        throw ConfigException.At(token.Where, $"second 'common' section (first at {config.Common.Where}), expected only one");
                    }
                    reader.Expect(TokenKind.OpenBrace, "after 'common'");
                    config.Common = new RawResource("common", token.Where);
                    ReadResourceBody(config.Common, isCommon: true);
                    break;
                case "resource":
                    ReadResource(token);
                    break;
                case "skip":
                    Skip(token, config.Ignored);
                    break;
                case "include":
                    ReadInclude(token);
                    break;
                case string word when word.StartsWith("require-drbd-module-version-", StringComparison.Ordinal):
                    reader.ExpectValue($"a version after '{word}'");
                    reader.Expect(TokenKind.Semicolon, $"after the version of '{word}'");
                    config.Ignored.Add(new IgnoredKeyword(word, token.Where.ToString(), "there is no kernel module"));
                    break;
                default:
                    if (token.Kind == TokenKind.End)
                    {
                        return;
                    }
                    throw TokenReader.Unexpected(token, "expected global, common, resource, skip or include at top level");
            }
        }
    }

    private void ReadResource(ConfigToken keyword)
    {
        var name = reader.ExpectValue("a resource name after 'resource'");
        if (name.Text.Length == 0 || name.Text.Any(c => c == '/' || char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            throw ConfigException.At(name.Where, $"'{name.Text}' is not a valid resource name, expected a name without '/' or blanks");
        }
        var previous = config.Resources.FirstOrDefault(r => r.Name == name.Text);
        if (previous is not null)
        {
            throw ConfigException.At(name.Where, $"resource '{name.Text}' defined again (first at {previous.Where}), expected unique resource names");
        }
        reader.Expect(TokenKind.OpenBrace, $"after 'resource {name.Text}'");
        var resource = new RawResource(name.Text, keyword.Where);
        ReadResourceBody(resource, isCommon: false);
        resource.Ignored.AddRange(pendingIgnored);
        pendingIgnored.Clear();
        config.Resources.Add(resource);
    }

    private void ReadInclude(ConfigToken keyword)
    {
        var pattern = reader.ExpectValue("a file name or glob after 'include'");
        reader.Expect(TokenKind.Semicolon, "after the file name of 'include'");
        string from = keyword.Where.File;
        foreach (var file in includes.Expand(pattern.Text, from, keyword.Where))
        {
            if (fileStack.Contains(file.Name))
            {
                string chain = string.Join(" -> ", fileStack.SkipWhile(f => f != file.Name).Append(file.Name));
                throw ConfigException.At(keyword.Where, $"include of '{file.Name}' forms a cycle ({chain}), expected includes without cycles");
            }
            if (seenFiles.Contains(file.Name))
            {
                continue; // drbdadm reads each file once.
            }
            ReadFile(file.Text, file.Name, file.Name);
        }
    }

    /// <summary>`skip ...{ ... }`: everything up to the matching brace is ignored, as drbdadm does.</summary>
    private void Skip(ConfigToken keyword, List<IgnoredKeyword> ignored, string reason = "skipped section")
    {
        int level = 0;
        while (true)
        {
            var token = reader.Next();
            if (token.Kind == TokenKind.OpenBrace)
            {
                level++;
            }
            else if (token.Kind == TokenKind.CloseBrace && --level == 0)
            {
                ignored.Add(new IgnoredKeyword(keyword.Text, keyword.Where.ToString(), reason));
                return;
            }
            else if (token.Kind == TokenKind.End)
            {
                throw TokenReader.Unexpected(token, $"expected '}}' to close the '{keyword.Text}' block of line {keyword.Where.Line}");
            }
        }
    }
}

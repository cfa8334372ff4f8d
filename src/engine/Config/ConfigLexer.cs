// Splits drbd.conf text into tokens: bare words, quoted strings, braces and semicolons, with `#`
// comments dropped. Everything DRBD writes as one word (127.0.0.1:7788, /dev/sdb1, [0], 10M,
// ipv4) is a bare word; the grammar gives words their meaning.
using System.Text;

namespace Redundancy.Block.Engine.Config;

internal enum TokenKind
{
    Word,
    QuotedString,
    OpenBrace,
    CloseBrace,
    Semicolon,
    End,
}

internal readonly record struct ConfigToken(TokenKind Kind, string Text, SourceLocation Where)
{
    /// <summary>A word or a quoted string: something that can be a value.</summary>
    public bool IsValue => Kind is TokenKind.Word or TokenKind.QuotedString;

    public bool IsWord(string word) => Kind == TokenKind.Word && string.Equals(Text, word, StringComparison.Ordinal);

    /// <summary>How the token is named in error messages.</summary>
    public string Describe() => Kind switch
    {
        TokenKind.Word => $"'{Text}'",
        TokenKind.QuotedString => $"\"{Text}\"",
        TokenKind.OpenBrace => "'{'",
        TokenKind.CloseBrace => "'}'",
        TokenKind.Semicolon => "';'",
        _ => "end of file",
    };
}

internal static class ConfigLexer
{
    public static List<ConfigToken> Tokenize(string text, string file)
    {
        var tokens = new List<ConfigToken>();
        int line = 1;
        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            if (c == '\n')
            {
                line++;
                i++;
            }
            else if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '#')
            {
                while (i < text.Length && text[i] != '\n')
                {
                    i++;
                }
            }
            else if (c is '{' or '}' or ';')
            {
                var kind = c switch { '{' => TokenKind.OpenBrace, '}' => TokenKind.CloseBrace, _ => TokenKind.Semicolon };
                tokens.Add(new ConfigToken(kind, c.ToString(), new SourceLocation(file, line)));
                i++;
            }
            else if (c == '"')
            {
                i = ReadQuoted(text, i, file, line, tokens);
            }
            else
            {
                int start = i;
                while (i < text.Length && !IsDelimiter(text[i]))
                {
                    i++;
                }
                tokens.Add(new ConfigToken(TokenKind.Word, text[start..i], new SourceLocation(file, line)));
            }
        }
        tokens.Add(new ConfigToken(TokenKind.End, "", new SourceLocation(file, line)));
        return tokens;
    }

    private static bool IsDelimiter(char c) => char.IsWhiteSpace(c) || c is '{' or '}' or ';' or '"' or '#';

    /// <summary>Reads a "quoted string" starting at <paramref name="start"/>; returns the index after it.</summary>
    private static int ReadQuoted(string text, int start, string file, int line, List<ConfigToken> tokens)
    {
        var value = new StringBuilder();
        int i = start + 1;
        while (true)
        {
            if (i >= text.Length || text[i] == '\n')
            {
                throw new ConfigException(file, line, "quoted string not closed before end of line, expected '\"'");
            }
            char c = text[i];
            if (c == '"')
            {
                tokens.Add(new ConfigToken(TokenKind.QuotedString, value.ToString(), new SourceLocation(file, line)));
                return i + 1;
            }
            if (c == '\\' && i + 1 < text.Length && text[i + 1] != '\n')
            {
                char next = text[i + 1];
                // \" \\ \n \t are escapes; any other backslash is kept, so shell commands in handlers pass through.
                value.Append(next switch { '"' => "\"", '\\' => "\\", 'n' => "\n", 't' => "\t", _ => "\\" + next });
                i += 2;
                continue;
            }
            value.Append(c);
            i++;
        }
    }
}

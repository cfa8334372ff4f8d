// A cursor over one file's tokens with the "expected X, found Y" helpers the grammar uses.
namespace Redundancy.Block.Engine.Config;

internal sealed class TokenReader(List<ConfigToken> tokens)
{
    private int position;

    public ConfigToken Peek => tokens[position];

    public ConfigToken Next()
    {
        var token = tokens[position];
        if (token.Kind != TokenKind.End)
        {
            position++;
        }
        return token;
    }

    public void Expect(TokenKind kind, string context)
    {
        var token = Next();
        if (token.Kind != kind)
        {
            throw Unexpected(token, $"expected {Name(kind)} {context}");
        }
    }

    /// <summary>A word or quoted string, e.g. a resource name or a value.</summary>
    public ConfigToken ExpectValue(string what)
    {
        var token = Next();
        return token.IsValue ? token : throw Unexpected(token, $"expected {what}");
    }

    public int ExpectInteger(string what, int min, int max)
    {
        var token = ExpectValue(what);
        return int.TryParse(token.Text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= min && n <= max
            ? n
            : throw ConfigException.At(token.Where, $"'{token.Text}' is not a valid {what}, expected an integer in {min}..{max}");
    }

    /// <summary>Words up to (not including) the next `;`, `{` or `}`.</summary>
    public List<ConfigToken> ValuesUntilDelimiter()
    {
        var values = new List<ConfigToken>();
        while (Peek.IsValue)
        {
            values.Add(Next());
        }
        return values;
    }

    public static ConfigException Unexpected(ConfigToken found, string expected) =>
        ConfigException.At(found.Where, $"{expected}, found {found.Describe()}");

    private static string Name(TokenKind kind) => kind switch
    {
        TokenKind.OpenBrace => "'{'",
        TokenKind.CloseBrace => "'}'",
        TokenKind.Semicolon => "';'",
        _ => kind.ToString(),
    };
}

// The body of `common { }` and `resource NAME { }`, and the `keyword value;` option sections
// (options, net, disk, startup, handlers, global, and 8.4's syncer distributed DRBD 9's way).
namespace Redundancy.Block.Engine.Config;

internal sealed partial class ConfigGrammar
{
    private void ReadResourceBody(RawResource resource, bool isCommon)
    {
        string where = isCommon ? "the common section" : $"resource '{resource.Name}'";
        while (true)
        {
            var token = reader.Next();
            if (token.Kind == TokenKind.CloseBrace)
            {
                return;
            }
            if (token.Kind != TokenKind.Word)
            {
                throw TokenReader.Unexpected(token, $"expected a section or statement in {where}");
            }
            if (ReadCommonStatement(resource, token))
            {
                continue;
            }
            if (isCommon)
            {
                throw ConfigException.At(token.Where, $"'{token.Text}' is not allowed in the common section, expected options, net, disk, startup, handlers, syncer or protocol");
            }
            if (!ReadResourceOnlyStatement(resource, token))
            {
                throw ConfigException.At(token.Where, $"'{token.Text}' is not valid in {where}, expected options, net, disk, startup, handlers, syncer, protocol, volume, on, connection, connection-mesh, device, meta-disk or skip");
            }
        }
    }

    /// <summary>Statements allowed both in `common` and in a resource. False when <paramref name="token"/> is none of them.</summary>
    private bool ReadCommonStatement(RawResource resource, ConfigToken token)
    {
        switch (token.Text)
        {
            case "options":
                ReadSection(ConfigSection.Options, resource.Options.Items, token);
                return true;
            case "net":
                ReadSection(ConfigSection.Net, resource.Options.Items, token);
                return true;
            case "startup":
                ReadSection(ConfigSection.Startup, resource.Options.Items, token);
                return true;
            case "handlers":
                ReadSection(ConfigSection.Handlers, resource.Options.Items, token);
                return true;
            case "syncer":
                reader.Expect(TokenKind.OpenBrace, "after 'syncer'");
                ReadSyncer(resource.Options.Items);
                return true;
            case "protocol":
                resource.Options.Add(ReadOption(ConfigSection.Net, token));
                return true;
            case "disk" when reader.Peek.Kind == TokenKind.OpenBrace:
                ReadSection(ConfigSection.Disk, resource.Options.Items, token);
                return true;
            case "skip":
                Skip(token, resource.Ignored);
                return true;
            case "proxy":
                Skip(token, resource.Ignored, "DRBD Proxy is not supported");
                return true;
            default:
                return false;
        }
    }

    private void ReadSection(ConfigSection section, List<RawOption> into, ConfigToken keyword)
    {
        reader.Expect(TokenKind.OpenBrace, $"after '{keyword.Text}'");
        ReadOptionBlock(section, into);
    }

    /// <summary>Reads `keyword value; ... }` after the opening brace.</summary>
    private void ReadOptionBlock(ConfigSection section, List<RawOption> into)
    {
        while (true)
        {
            var token = reader.Next();
            if (token.Kind == TokenKind.CloseBrace)
            {
                return;
            }
            if (token.Kind != TokenKind.Word)
            {
                throw TokenReader.Unexpected(token, $"expected a {SectionName(section)} keyword or '}}'");
            }
            into.Add(ReadOption(section, token));
        }
    }

    /// <summary>8.4 `syncer { }`: each keyword goes where DRBD 9 keeps it (rate → disk resync-rate, verify-alg → net, ...).</summary>
    private void ReadSyncer(List<RawOption> into)
    {
        while (true)
        {
            var token = reader.Next();
            if (token.Kind == TokenKind.CloseBrace)
            {
                return;
            }
            var found = token.Kind == TokenKind.Word ? ConfigKeywords.FindSyncer(token.Text, out _) : null;
            if (found is null)
            {
                throw TokenReader.Unexpected(token, "expected a syncer keyword (rate, al-extents, verify-alg, csums-alg, c-*, ...) or '}'");
            }
            into.Add(ReadOption(found.Value.Section, token));
        }
    }

    /// <summary>Reads the values and `;` of option <paramref name="keyword"/> (already consumed) in <paramref name="section"/>.</summary>
    private RawOption ReadOption(ConfigSection section, ConfigToken keyword)
    {
        var spec = ConfigKeywords.Find(section, keyword.Text, out bool negated)
            ?? throw ConfigException.At(keyword.Where, $"unknown keyword '{keyword.Text}' in {SectionName(section)} section, expected a DRBD {SectionName(section)} option");
        int maxValues = negated ? 0 : spec.Kind == ValueKind.Names ? int.MaxValue : 1;
        var values = new List<string>();
        while (reader.Peek.IsValue && values.Count < maxValues)
        {
            values.Add(reader.Next().Text);
        }
        if (values.Count == 0 && !negated && spec.Kind != ValueKind.Flag)
        {
            throw TokenReader.Unexpected(reader.Peek, $"expected a value for '{keyword.Text}'");
        }
        var end = reader.Next();
        if (end.Kind != TokenKind.Semicolon)
        {
            string after = values.Count == 0 ? $"'{keyword.Text}'" : $"value of '{keyword.Text}'";
            throw TokenReader.Unexpected(end, $"expected ';' after {after}");
        }
        string value = negated ? "no" : spec.Validate(values, keyword.Where);
        return new RawOption(spec.StoreIn ?? section, spec.Name, value, keyword.Where, spec.IgnoredReason);
    }

    private static string SectionName(ConfigSection section) => section.ToString().ToLowerInvariant();
}

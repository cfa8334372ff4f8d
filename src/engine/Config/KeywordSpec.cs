// What one option keyword of drbd.conf accepts, and whether it has any effect here. The tables of
// known keywords are in ConfigKeywords; this type only describes and validates one entry.
using System.Globalization;

namespace Redundancy.Block.Engine.Config;

/// <summary>The sections whose statements are `keyword value;` options.</summary>
internal enum ConfigSection
{
    Global,
    Options,
    Net,
    Disk,
    Startup,
    Handlers,
}

internal enum ValueKind
{
    /// <summary>Boolean: `yes`/`no`, or no value meaning `yes`.</summary>
    Flag,
    /// <summary>One of <see cref="KeywordSpec.Choices"/> (or a number in range when <see cref="KeywordSpec.ChoiceOrNumber"/>).</summary>
    Choice,
    /// <summary>An integer in [Min, Max] of the default unit, optionally with a s/K/M/G/T suffix.</summary>
    Numeric,
    /// <summary>A string of at most MaxLength characters.</summary>
    Text,
    /// <summary>One or more words (e.g. `become-primary-on alpha beta`).</summary>
    Names,
}

internal sealed record KeywordSpec(string Name, ValueKind Kind)
{
    public IReadOnlyList<string> Choices { get; init; } = [];
    public bool ChoiceOrNumber { get; init; }
    public bool UpperCase { get; init; }
    /// <summary>after-sb-0pri accepts `discard-node-NAME`.</summary>
    public bool AllowsDiscardNode { get; init; }
    public long Min { get; init; }
    public long Max { get; init; } = long.MaxValue;
    /// <summary>DRBD's default unit: '1' (plain), 's' (512-byte sectors), 'k' (KiB).</summary>
    public char Scale { get; init; } = '1';
    public int MaxLength { get; init; } = int.MaxValue;
    /// <summary>Non-null when DRBD knows the keyword but it has no effect here.</summary>
    public string? IgnoredReason { get; init; }
    /// <summary>Where the value is stored when it differs from the section it was written in (8.4 disk fencing → net).</summary>
    public ConfigSection? StoreIn { get; init; }

    public KeywordSpec Ignored(string reason) => this with { IgnoredReason = reason };

    /// <summary>Checks <paramref name="values"/> and returns the value to store, or throws at <paramref name="where"/>.</summary>
    public string Validate(IReadOnlyList<string> values, SourceLocation where)
    {
        if (Kind == ValueKind.Names)
        {
            return string.Join(' ', values);
        }
        if (Kind == ValueKind.Flag && values.Count == 0)
        {
            return "yes";
        }
        string value = values[0];
        return Kind switch
        {
            ValueKind.Flag => value is "yes" or "no"
                ? value
                : throw Invalid(value, where, "yes or no"),
            ValueKind.Choice => ValidateChoice(value, where),
            ValueKind.Numeric => ValidateNumber(value, where),
            _ => value.Length <= MaxLength
                ? value
                : throw ConfigException.At(where, $"value of '{Name}' is {value.Length} characters long, expected at most {MaxLength}"),
        };
    }

    private string ValidateChoice(string value, SourceLocation where)
    {
        string candidate = UpperCase ? value.ToUpperInvariant() : value;
        if (Choices.Contains(candidate, StringComparer.Ordinal))
        {
            return candidate;
        }
        if (AllowsDiscardNode && candidate.StartsWith("discard-node-", StringComparison.Ordinal) && candidate.Length > "discard-node-".Length)
        {
            return candidate;
        }
        if (ChoiceOrNumber && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n >= Min && n <= Max)
        {
            return value;
        }
        string expected = "one of " + string.Join(", ", Choices)
            + (AllowsDiscardNode ? ", discard-node-NAME" : "")
            + (ChoiceOrNumber ? $", {Min}..{Max}" : "");
        throw Invalid(value, where, expected);
    }

    private string ValidateNumber(string value, SourceLocation where)
    {
        if (!ConfigNumber.TryParse(value, Scale, out long n))
        {
            throw Invalid(value, where, "a number" + (Scale == '1' ? "" : " with optional unit suffix (s, K, M, G, T)"));
        }
        if (n < Min || n > Max)
        {
            throw ConfigException.At(where, $"value {value} of '{Name}' is out of range, expected {Min}..{Max}{UnitSuffix}");
        }
        return value;
    }

    private string UnitSuffix => Scale switch { 's' => " sectors", 'k' => " KiB", _ => "" };

    private ConfigException Invalid(string value, SourceLocation where, string expected) =>
        ConfigException.At(where, $"'{value}' is not a valid value for '{Name}', expected {expected}");
}

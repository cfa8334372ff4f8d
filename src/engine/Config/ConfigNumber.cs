// DRBD's numbers with unit suffixes ("10M", "512k", "100s"): a value is read in the option's
// default unit (its "scale"), and a suffix converts from another unit, as drbdsetup's m_strtoll.
using System.Globalization;

namespace Redundancy.Block.Engine.Config;

public static class ConfigNumber
{
    /// <summary>
    /// Parses <paramref name="text"/> (digits and an optional suffix s=512 B, K, M, G, T = powers of 1024 bytes)
    /// into units of <paramref name="scale"/> ('1' = bytes/plain, 's' = sectors, 'k' = KiB). Fractions are truncated.
    /// </summary>
    public static bool TryParse(string text, char scale, out long value)
    {
        value = 0;
        if (text.Length == 0)
        {
            return false;
        }
        char last = text[^1];
        bool hasSuffix = !char.IsAsciiDigit(last);
        string digits = hasSuffix ? text[..^1] : text;
        if (digits.Length == 0 || !long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
        {
            return false;
        }
        long? from = hasSuffix ? UnitBytes(last) : UnitBytes(scale);
        long? to = UnitBytes(scale);
        if (from is null || to is null)
        {
            return false;
        }
        try
        {
            value = checked(n * from.Value) / to.Value;
            return true;
        }
        catch (OverflowException)
        {
            return false;
        }
    }

    /// <summary>Parses a value already validated by the config parser; throws FormatException otherwise.</summary>
    public static long Parse(string text, char scale) =>
        TryParse(text, scale, out long value) ? value : throw new FormatException($"'{text}' is not a DRBD number");

    private static long? UnitBytes(char unit) => unit switch
    {
        '1' => 1,
        's' or 'S' => 512,
        'k' or 'K' => 1L << 10,
        'm' or 'M' => 1L << 20,
        'g' or 'G' => 1L << 30,
        't' or 'T' => 1L << 40,
        _ => null,
    };
}

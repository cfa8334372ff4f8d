// Turns an error message into an outcome signature: digits, hex numbers and quoted text dropped, so
// "payload of 17 bytes" and "payload of 9 bytes" count as one outcome and only new kinds of outcome
// grow the corpus.
using System.Text;

namespace Redundancy.Block.Fuzz.Support;

public static class Outcome
{
    /// <summary>The message with every run of digits (and 0x.. hex) replaced by '#', cut to 120 chars.</summary>
    public static string Normalize(string? message)
    {
        if (string.IsNullOrEmpty(message))
        {
            return "";
        }

        var text = new StringBuilder(Math.Min(message.Length, 120));
        for (int i = 0; i < message.Length && text.Length < 120; i++)
        {
            char c = message[i];
            if (c == '0' && i + 1 < message.Length && message[i + 1] is 'x' or 'X')
            {
                i += 2;
                while (i < message.Length && char.IsAsciiHexDigit(message[i]))
                {
                    i++;
                }

                i--;
                text.Append('#');
            }
            else if (c is '\'' or '"' && message.IndexOf(c, i + 1) is var close && close > i)
            {
                // Quoted input ('name', "text") varies with every mutant: one outcome for all of them.
                text.Append(c).Append('*').Append(c);
                i = close;
            }
            else if (char.IsAsciiDigit(c))
            {
                while (i + 1 < message.Length && char.IsAsciiDigit(message[i + 1]))
                {
                    i++;
                }

                text.Append('#');
            }
            else
            {
                text.Append(c);
            }
        }

        return text.ToString();
    }
}

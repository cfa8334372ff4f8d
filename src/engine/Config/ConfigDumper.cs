// `rbadm dump`: a resolved resource written back in drbd.conf syntax, like `drbdadm dump` — every
// inherited value explicit, DRBD 9 names and sections — followed by the keywords that were
// accepted but have no effect here. Parsing the output gives the same ResourceDefinition.
using System.Text;

namespace Redundancy.Block.Engine.Config;

public static class ConfigDumper
{
    private const string Indent = "    ";

    public static string Dump(ResourceDefinition r)
    {
        var text = new StringBuilder();
        text.Append("resource ").Append(Quote(r.Name, always: false)).Append(" {\n");
        Section(text, 1, "options", r.Options, alwaysQuote: false);
        Section(text, 1, "net", r.Net, alwaysQuote: false);
        Section(text, 1, "disk", r.Disk, alwaysQuote: false);
        Section(text, 1, "startup", r.Startup, alwaysQuote: false);
        Section(text, 1, "handlers", r.Handlers, alwaysQuote: true);
        foreach (var node in r.Nodes)
        {
            Node(text, node);
        }
        text.Append("}\n");
        foreach (var ignored in r.Ignored)
        {
            text.Append("# ignored: ").Append(ignored.Keyword).Append(" (").Append(ignored.Location).Append("): ")
                .Append(ignored.Reason.ReplaceLineEndings(" ")).Append('\n');
        }
        return text.ToString();
    }

    private static void Node(StringBuilder text, NodeDefinition node)
    {
        text.Append(Indent).Append("on ").Append(string.Join(' ', node.Aliases.Prepend(node.Name).Select(name => Quote(name, always: false)))).Append(" {\n");
        Line(text, 2, "node-id", node.NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (node.Address is not null)
        {
            Line(text, 2, "address", node.AddressFamily + " " + node.Address);
        }
        Line(text, 2, "nbd-address", node.NbdAddress);
        foreach (var volume in node.Volumes)
        {
            text.Append(Indent).Append(Indent).Append("volume ").Append(volume.Number).Append(" {\n");
            if (volume.Device is not null)
            {
                Line(text, 3, "device", volume.Device);
            }
            Line(text, 3, "disk", volume.Disk is null ? "none" : Quote(volume.Disk, always: false));
            string meta = volume.IsInternalMetadata ? "internal" : Quote(volume.MetaDisk, always: false);
            Line(text, 3, "meta-disk", volume.MetaIndex is int index ? $"{meta} [{index}]" : meta);
            Section(text, 3, "disk", volume.DiskOptions, alwaysQuote: false);
            text.Append(Indent).Append(Indent).Append("}\n");
        }
        text.Append(Indent).Append("}\n");
    }

    private static void Section(StringBuilder text, int depth, string name, IReadOnlyDictionary<string, string> options, bool alwaysQuote)
    {
        if (options.Count == 0)
        {
            return;
        }
        text.Insert(text.Length, Indent, depth).Append(name).Append(" {\n");
        foreach (var (keyword, value) in options)
        {
            bool quote = alwaysQuote || keyword == "shared-secret";
            // Multi-word values (become-primary-on alpha beta) are written as words, as they were read.
            string rendered = keyword == "become-primary-on" ? value : Quote(value, quote);
            Line(text, depth + 1, keyword, rendered);
        }
        text.Insert(text.Length, Indent, depth).Append("}\n");
    }

    private static void Line(StringBuilder text, int depth, string keyword, string value) =>
        text.Insert(text.Length, Indent, depth).Append(keyword).Append(' ').Append(value).Append(";\n");

    /// <summary>Quotes a value when it must be (blanks, braces, ';', '#', quotes, empty) or when asked to.</summary>
    internal static string Quote(string value, bool always)
    {
        bool needed = value.Length == 0 || value.Any(c => char.IsWhiteSpace(c) || c is '{' or '}' or ';' or '#' or '"' or '\\');
        if (!needed && !always)
        {
            return value;
        }
        var quoted = new StringBuilder("\"");
        foreach (char c in value)
        {
            quoted.Append(c switch { '"' => "\\\"", '\\' => "\\\\", '\n' => "\\n", '\t' => "\\t", _ => c.ToString() });
        }
        return quoted.Append('"').ToString();
    }
}

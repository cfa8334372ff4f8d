using System.CommandLine;

namespace Redundancy.Block.Cli;

/// <summary>Options every rbadm command takes: where the config and the agent are.</summary>
internal static class GlobalOptions
{
    public static readonly Option<string?> Config = new("--config", "-c")
    {
        Description = $"Configuration file (default $RB_CONFIG or {CliContext.DefaultConfigPath})",
        Recursive = true,
    };

    public static readonly Option<string?> Node = new("--node")
    {
        Description = "This node's name as in `on NAME { }` (default $RB_NODE or uname -n)",
        Recursive = true,
    };

    public static readonly Option<string?> Control = new("--control")
    {
        Description = "The agent's control socket (default $RB_CONTROL or /run/redundancy/NODE.sock)",
        Recursive = true,
    };

    public static IEnumerable<Option> All => [Config, Node, Control];

    public static CliContext Context(ParseResult parse) => CliContext.Resolve(
        parse.GetValue(Config), parse.GetValue(Node), parse.GetValue(Control));
}

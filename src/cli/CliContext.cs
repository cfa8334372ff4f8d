namespace Redundancy.Block.Cli;

/// <summary>
/// Where rbadm finds its configuration and its agent: options first, then RB_CONFIG / RB_NODE /
/// RB_CONTROL, then the defaults of the contract.
/// </summary>
internal sealed record CliContext(string ConfigPath, string NodeName, string ControlPath)
{
    public const string DefaultConfigPath = "/etc/redundancy/redundancy.conf";

    public static CliContext Resolve(string? config, string? node, string? control)
    {
        string nodeName = node ?? Env("RB_NODE") ?? Environment.MachineName;
        return new CliContext(
            config ?? Env("RB_CONFIG") ?? DefaultConfigPath,
            nodeName,
            control ?? Env("RB_CONTROL") ?? DefaultControlPath(nodeName));
    }

    public static string DefaultControlPath(string nodeName) => $"/run/redundancy/{nodeName}.sock";

    private static string? Env(string name)
    {
        string? value = Environment.GetEnvironmentVariable(name);
        return string.IsNullOrEmpty(value) ? null : value;
    }
}

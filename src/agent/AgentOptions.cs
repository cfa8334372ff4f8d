namespace Redundancy.Block.Agent;

/// <summary>Who this agent is and where its control socket lives.</summary>
public sealed record AgentOptions(string NodeName, string ControlPath)
{
    /// <summary>Resolves `--node`/`--control`, then RB_NODE/RB_CONTROL, then uname -n and /run/redundancy/NODE.sock.</summary>
    public static AgentOptions Resolve(string? node, string? control)
    {
        string nodeName = node ?? Env("RB_NODE") ?? Environment.MachineName;
        return new AgentOptions(nodeName, control ?? Env("RB_CONTROL") ?? $"/run/redundancy/{nodeName}.sock");
    }

    private static string? Env(string name)
    {
        string? value = Environment.GetEnvironmentVariable(name);
        return string.IsNullOrEmpty(value) ? null : value;
    }
}

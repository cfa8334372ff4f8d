using System.CommandLine;
using Redundancy.Block.Cli.Commands;

namespace Redundancy.Block.Cli;

/// <summary>rbadm's command tree, and nothing else: each verb's work lives in Commands/.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        var root = new RootCommand("rbadm — administer Redundancy.Block resources (drbdadm-style)");
        foreach (var option in GlobalOptions.All)
        {
            root.Options.Add(option);
        }
        root.Subcommands.Add(AgentCommands.Up());
        root.Subcommands.Add(AgentCommands.Down());
        root.Subcommands.Add(AgentCommands.Adjust());
        root.Subcommands.Add(AgentCommands.Attach());
        root.Subcommands.Add(AgentCommands.Detach());
        root.Subcommands.Add(AgentCommands.Primary());
        root.Subcommands.Add(AgentCommands.Secondary());
        root.Subcommands.Add(AgentCommands.Connect());
        root.Subcommands.Add(AgentCommands.Disconnect());
        root.Subcommands.Add(AgentCommands.Invalidate());
        root.Subcommands.Add(AgentCommands.InvalidateRemote());
        root.Subcommands.Add(AgentCommands.NewCurrentUuid());
        root.Subcommands.Add(AgentCommands.Resize());
        root.Subcommands.Add(AgentCommands.PauseSync());
        root.Subcommands.Add(AgentCommands.ResumeSync());
        root.Subcommands.Add(AgentCommands.Outdate());
        root.Subcommands.Add(AgentCommands.ResumeIo());
        root.Subcommands.Add(VerifyCommand.Verify());
        root.Subcommands.Add(WaitCommands.WaitConnect());
        root.Subcommands.Add(WaitCommands.WaitSync());
        root.Subcommands.Add(StatusCommands.Status());
        root.Subcommands.Add(StatusCommands.Role());
        root.Subcommands.Add(StatusCommands.DState());
        root.Subcommands.Add(StatusCommands.CState());
        root.Subcommands.Add(StatusCommands.Events());
        root.Subcommands.Add(ConfigCommands.Dump());
        root.Subcommands.Add(MetadataCommands.CreateMd());
        root.Subcommands.Add(MetadataCommands.DumpMd());
        return root.Parse(args).Invoke();
    }
}

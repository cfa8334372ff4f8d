using System.CommandLine;
using Redundancy.Block.Engine.Control;

namespace Redundancy.Block.Cli.Commands;

/// <summary>
/// Verbs that change state in the agent: up, down, attach, detach, primary, secondary. Each resolves
/// the resource from the config and sends it with the command, as drbdadm drives drbdsetup.
/// </summary>
internal static class AgentCommands
{
    public static Command Up() => Simple("up", "Bring a resource up: attach its disks and start its connections and NBD exports", withDefinition: true);

    public static Command Down() => Simple("down", "Take a resource down: disconnect, detach, stop serving NBD", withDefinition: false);

    public static Command Attach() => Simple("attach", "Attach the backing disk(s) of a resource that is up", withDefinition: true);

    public static Command Detach()
    {
        var force = new Option<bool>("--force") { Description = "Detach even if this is the last UpToDate disk of a Primary" };
        return Simple("detach", "Detach the backing disk(s); the node becomes Diskless", withDefinition: false, force);
    }

    public static Command Primary()
    {
        var force = new Option<bool>("--force") { Description = "Promote even without UpToDate data: this disk becomes the UpToDate copy" };
        var overwrite = new Option<bool>("--overwrite-data-of-peer") { Description = "Old name of --force" };
        return Simple("primary", "Promote the resource to Primary; its NBD export starts serving", withDefinition: false, force, overwrite);
    }

    public static Command Secondary()
    {
        var force = new Option<bool>("--force") { Description = "Demote even while NBD clients are connected (their requests fail)" };
        return Simple("secondary", "Demote the resource to Secondary; NBD clients are refused", withDefinition: false, force);
    }

    private static Command Simple(string name, string description, bool withDefinition, params Option<bool>[] forceOptions)
    {
        var command = new Command(name, description) { CommandRunner.ResourceArgument };
        foreach (var option in forceOptions)
        {
            command.Options.Add(option);
        }
        CommandRunner.SetHandler(command, async (parse, context, cancellationToken) =>
        {
            bool force = forceOptions.Any(o => parse.GetValue(o));
            var config = CommandRunner.LoadConfig(context);
            foreach (var (definition, volume) in CommandRunner.Select(config, context, parse.GetValue(CommandRunner.ResourceArgument)!))
            {
                var request = new ControlRequest
                {
                    Command = name,
                    Resource = definition.Name,
                    Volume = volume,
                    Definition = withDefinition ? definition : null,
                    Force = force,
                };
                await CommandRunner.CallAgentAsync(context, request, cancellationToken).ConfigureAwait(false);
            }
            return ExitCodes.Success;
        });
        return command;
    }
}

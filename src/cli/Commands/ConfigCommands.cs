using System.CommandLine;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Control;

namespace Redundancy.Block.Cli.Commands;

/// <summary>`dump`: parse the configuration and print it resolved, as `drbdadm dump` does.</summary>
internal static class ConfigCommands
{
    public static Command Dump()
    {
        var command = new Command("dump", "Parse the configuration and print it resolved (ignored keywords listed)") { CommandRunner.OptionalResourceArgument };
        CommandRunner.SetHandler(command, (parse, context, _) =>
        {
            var config = CommandRunner.LoadConfig(context);
            string? argument = parse.GetValue(CommandRunner.OptionalResourceArgument);
            var resources = argument is null or "all"
                ? config.Resources
                : config.Resources.Where(r => r.Name == CommandRunner.SplitVolume(argument).Name).ToList();
            if (resources.Count == 0)
            {
                throw new CliException($"'{argument}' not defined in your config.");
            }
            Console.Out.Write($"# {Path.GetFullPath(context.ConfigPath)}\n");
            foreach (var resource in resources)
            {
                Console.Out.Write(ConfigDumper.Dump(resource));
                Console.Out.Write('\n');
            }
            return Task.FromResult(ExitCodes.Success);
        });
        return command;
    }
}

using System.CommandLine;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Engine.Status;

namespace Redundancy.Block.Cli.Commands;

/// <summary>
/// Read-only verbs answered by the agent: status, role, dstate, cstate, events. They need no
/// config file: the agent knows what is up, as the kernel does for drbdsetup.
/// </summary>
internal static class StatusCommands
{
    public static Command Status()
    {
        var json = new Option<bool>("--json") { Description = "drbdsetup's JSON schema" };
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Show every field" };
        var statistics = new Option<bool>("--statistics", "-s") { Description = "Accepted for drbdadm compatibility; implies --verbose" };
        var command = new Command("status", "Show the state of resources (drbdadm status)") { CommandRunner.OptionalResourceArgument, json, verbose, statistics };
        CommandRunner.SetHandler(command, async (parse, context, cancellationToken) =>
        {
            var resources = await QueryAsync(context, parse.GetValue(CommandRunner.OptionalResourceArgument), cancellationToken).ConfigureAwait(false);
            Console.Out.Write(parse.GetValue(json)
                ? ControlJson.FormatStatus(resources) + "\n"
                : StatusText.Format(resources, parse.GetValue(verbose) || parse.GetValue(statistics)));
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command Role() => Single("role", "Show the role (Primary or Secondary)", r => [r.Role.ToString()]);

    /// <summary>Local disk state per volume; with peers, `local/peer` as drbdadm prints it.</summary>
    public static Command DState() => Single("dstate", "Show the disk state(s)", r => r.Devices.Select(d =>
        string.Join('/', r.Connections
            .Select(c => c.PeerDevices.FirstOrDefault(p => p.Volume == d.Volume)?.PeerDiskState ?? DiskState.DUnknown)
            .Prepend(d.DiskState))));

    public static Command CState() => Single("cstate", "Show the connection state per peer", r => r.Connections.Count == 0
        ? [ConnectionState.StandAlone.ToString()]
        : r.Connections.Select(c => c.ConnectionState.ToString()));

    public static Command Events()
    {
        var now = new Option<bool>("--now") { Description = "Print the current state and exit" };
        var statistics = new Option<bool>("--statistics") { Description = "Accepted for drbdsetup compatibility" };
        var timestamps = new Option<bool>("--timestamps") { Description = "Prefix each line with the time" };
        var command = new Command("events", "Stream state changes as drbdsetup events2 lines") { CommandRunner.OptionalResourceArgument, now, statistics, timestamps };
        CommandRunner.SetHandler(command, async (parse, context, cancellationToken) =>
        {
            bool stamp = parse.GetValue(timestamps);
            var request = new ControlRequest
            {
                Command = "events",
                Resource = ResourceFilter(parse.GetValue(CommandRunner.OptionalResourceArgument)),
                Now = parse.GetValue(now),
            };
            await CommandRunner.CallAgentAsync(context, request, cancellationToken, line =>
            {
                Console.Out.WriteLine(stamp ? $"{DateTimeOffset.Now:yyyy-MM-ddTHH:mm:ss.ffffffzzz} {line}" : line);
                Console.Out.Flush();
            }).ConfigureAwait(false);
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Single(string name, string description, Func<ResourceStatus, IEnumerable<string>> render)
    {
        var command = new Command(name, description) { CommandRunner.ResourceArgument };
        CommandRunner.SetHandler(command, async (parse, context, cancellationToken) =>
        {
            string argument = parse.GetValue(CommandRunner.ResourceArgument)!;
            var resources = await QueryAsync(context, argument, cancellationToken).ConfigureAwait(false);
            foreach (var resource in resources)
            {
                foreach (var line in render(resource))
                {
                    Console.Out.WriteLine(line);
                }
            }
            return ExitCodes.Success;
        });
        return command;
    }

    internal static async Task<IReadOnlyList<ResourceStatus>> QueryAsync(CliContext context, string? argument, CancellationToken cancellationToken)
    {
        string? name = ResourceFilter(argument);
        var response = await CommandRunner.CallAgentAsync(context, new ControlRequest { Command = "status", Resource = name }, cancellationToken).ConfigureAwait(false);
        return response.Status ?? [];
    }

    private static string? ResourceFilter(string? argument) =>
        argument is null or "all" ? null : CommandRunner.SplitVolume(argument).Name;
}

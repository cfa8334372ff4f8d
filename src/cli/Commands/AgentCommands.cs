using System.CommandLine;
using Redundancy.Block.Engine.Control;

namespace Redundancy.Block.Cli.Commands;

/// <summary>
/// Verbs that change state in the agent: up, down, attach, detach, primary, secondary, connect,
/// disconnect, invalidate, invalidate-remote, resize, pause-sync, resume-sync, outdate, resume-io. Each resolves
/// the resource from the config and sends it with the command, as drbdadm drives drbdsetup.
/// </summary>
internal static class AgentCommands
{
    public static Command Up() => Simple("up", "Bring a resource up: attach its disks and start its connections and NBD exports", withDefinition: true);

    public static Command Adjust() => Simple("adjust", "Make the running resource match the config: up, attach, connect, apply changed settings", withDefinition: true);

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

    public static Command Connect()
    {
        var discard = new Option<bool>("--discard-my-data") { Description = "If the handshake finds a split brain, this node's changes are discarded (it becomes SyncTarget)" };
        return Simple("connect", "Connect to the resource's peers (after disconnect, or from StandAlone)", withDefinition: false, [],
            (parse, request) => request with { DiscardMyData = parse.GetValue(discard) }, discard);
    }

    public static Command Disconnect() => Simple("disconnect", "Disconnect from the peers; the resource stays StandAlone", withDefinition: false);

    public static Command Invalidate() => InvalidateCommand("invalidate", "Discard this node's copy: a full resync from the peer follows");

    public static Command InvalidateRemote() => InvalidateCommand("invalidate-remote", "Discard the peer's copy: a full resync from this node follows");

    /// <summary>invalidate and invalidate-remote; `--reset-bitmap=no` resyncs only what is already marked out-of-sync (as after verify).</summary>
    private static Command InvalidateCommand(string name, string description)
    {
        var resetBitmap = new Option<string>("--reset-bitmap")
        {
            Description = "no: keep the bitmap, resync only the blocks already marked out-of-sync (those verify found)",
            DefaultValueFactory = _ => "yes",
        };
        resetBitmap.AcceptOnlyFromAmong("yes", "no");
        return Simple(name, description, withDefinition: false, [],
            (parse, request) => request with { KeepBitmap = parse.GetValue(resetBitmap) == "no" }, resetBitmap);
    }

    public static Command NewCurrentUuid()
    {
        var clear = new Option<bool>("--clear-bitmap") { Description = "On a freshly created, connected pair: skip the initial sync (both become UpToDate)" };
        return Simple("new-current-uuid", "Start a new data generation (new current UUID)", withDefinition: false, [],
            (parse, request) => request with { ClearBitmap = parse.GetValue(clear) }, clear);
    }

    public static Command Resize()
    {
        var assumeClean = new Option<bool>("--assume-clean") { Description = "Do not resync the area the device grows by (it is known to be equal on every node)" };
        return Simple("resize", "Grow the device to what every node's backing disk holds now (after the disks grew)", withDefinition: false, [],
            (parse, request) => request with { AssumeClean = parse.GetValue(assumeClean) }, assumeClean);
    }

    public static Command PauseSync() => Simple("pause-sync", "Pause a running resync", withDefinition: false);

    public static Command ResumeSync() => Simple("resume-sync", "Resume a paused resync", withDefinition: false);

    public static Command Outdate() => Simple("outdate", "Mark the local disk Outdated: not promoted without --force until a peer brings it up to date", withDefinition: false);

    public static Command ResumeIo() => Simple("resume-io", "Resume application I/O suspended by fencing (a pending new current UUID is made first)", withDefinition: false);

    private static Command Simple(string name, string description, bool withDefinition, params Option<bool>[] forceOptions) =>
        Simple(name, description, withDefinition, forceOptions, null);

    private static Command Simple(string name, string description, bool withDefinition, Option<bool>[] forceOptions,
        Func<ParseResult, ControlRequest, ControlRequest>? customize, params Option[] otherOptions)
    {
        var command = new Command(name, description) { CommandRunner.ResourceArgument };
        foreach (var option in forceOptions.Concat(otherOptions))
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
                request = customize?.Invoke(parse, request) ?? request;
                await CommandRunner.CallAgentAsync(context, request, cancellationToken).ConfigureAwait(false);
            }
            return ExitCodes.Success;
        });
        return command;
    }
}

using System.CommandLine;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Cli.Commands;

/// <summary>
/// `verify RESOURCE[/VOLUME] [--start POSITION]`: starts online verify with the resource's peers
/// (drbdadm verify). POSITION is read as drbdsetup reads it: 512-byte sectors, or a size with a
/// unit suffix (4k, 1M, 2G); it is rounded down to a 4 KiB block. Without --start, a verify that
/// was interrupted resumes where it stopped. The command returns at once; `status` shows progress.
/// </summary>
internal static class VerifyCommand
{
    public static Command Verify()
    {
        var start = new Option<string?>("--start")
        {
            Description = "Where to start: 512-byte sectors, or a size such as 64M (default: where the last verify stopped, else 0)",
        };
        var command = new Command("verify", "Start online verify: compare this node's data with its peers' by digest (verify-alg)")
        {
            CommandRunner.ResourceArgument,
            start,
        };
        CommandRunner.SetHandler(command, async (parse, context, cancellationToken) =>
        {
            long? startBytes = ParseStart(parse.GetValue(start));
            var config = CommandRunner.LoadConfig(context);
            foreach (var (definition, volume) in CommandRunner.Select(config, context, parse.GetValue(CommandRunner.ResourceArgument)!))
            {
                var request = new ControlRequest { Command = "verify", Resource = definition.Name, Volume = volume, VerifyStartOffsetBytes = startBytes };
                await CommandRunner.CallAgentAsync(context, request, cancellationToken).ConfigureAwait(false);
            }
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>--start in bytes, rounded down to a 4 KiB block (as DRBD rounds to its bitmap granularity); null when absent.</summary>
    public static long? ParseStart(string? text)
    {
        if (text is null)
        {
            return null;
        }
        if (!ConfigNumber.TryParse(text.Trim(), 's', out long sectors) || sectors < 0 || sectors > long.MaxValue / 512)
        {
            throw new CliException($"--start '{text}': expected 512-byte sectors or a size with a unit (e.g. 2048, 1M)", ExitCodes.Usage);
        }
        return sectors * 512 / MetadataLayout.BytesPerBit * MetadataLayout.BytesPerBit;
    }
}

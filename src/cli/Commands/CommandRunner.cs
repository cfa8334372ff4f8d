using System.CommandLine;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Control;

namespace Redundancy.Block.Cli.Commands;

/// <summary>
/// Shared plumbing of the verbs: turn expected failures into a one-line reason on stderr and an
/// exit code, resolve RESOURCE[/VOLUME] (and `all`) against the configuration.
/// </summary>
internal static class CommandRunner
{
    public static readonly Argument<string> ResourceArgument = new("resource")
    {
        Description = "RESOURCE[/VOLUME], or `all`",
    };

    public static readonly Argument<string?> OptionalResourceArgument = new("resource")
    {
        Description = "RESOURCE[/VOLUME], or `all` (default)",
        Arity = ArgumentArity.ZeroOrOne,
    };

    /// <summary>Runs a verb: catches <see cref="CliException"/> and config errors and maps them to exit codes.</summary>
    public static void SetHandler(Command command, Func<ParseResult, CliContext, CancellationToken, Task<int>> handler)
    {
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                return await handler(parse, GlobalOptions.Context(parse), cancellationToken).ConfigureAwait(false);
            }
            catch (CliException e)
            {
                await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
                return e.ExitCode;
            }
            catch (ConfigException e)
            {
                await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
                return ExitCodes.ConfigError;
            }
            catch (IOException e)
            {
                // Disk or socket trouble during create-md/dump-md or talking to the agent: one line, no stack.
                await Console.Error.WriteLineAsync(e.Message).ConfigureAwait(false);
                return ExitCodes.DiskError;
            }
            catch (OperationCanceledException)
            {
                return ExitCodes.Usage;
            }
        });
    }

    /// <summary>Loads the configuration file, with a clear message when it is missing.</summary>
    public static ConfigFile LoadConfig(CliContext context)
    {
        if (!File.Exists(context.ConfigPath))
        {
            throw new CliException($"{context.ConfigPath}: no such configuration file", ExitCodes.ConfigError);
        }
        return ConfigParser.Parse(context.ConfigPath);
    }

    /// <summary>
    /// Resolves RESOURCE[/VOLUME] or `all` to the resources that have an `on` section for this node.
    /// </summary>
    public static IReadOnlyList<(ResourceDefinition Definition, int? Volume)> Select(ConfigFile config, CliContext context, string argument)
    {
        if (argument == "all")
        {
            var mine = config.Resources.Where(r => r.FindNode(context.NodeName) is not null).Select(r => (r, (int?)null)).ToList();
            if (mine.Count == 0)
            {
                throw new CliException($"no resources defined for node '{context.NodeName}' in {context.ConfigPath}");
            }
            return mine;
        }
        var (name, volume) = SplitVolume(argument);
        var definition = config.Resources.FirstOrDefault(r => r.Name == name)
            ?? throw new CliException($"'{name}' not defined in your config (for this host).");
        var node = definition.FindNode(context.NodeName)
            ?? throw new CliException($"'{name}' has no `on {context.NodeName} {{ }}` section in {context.ConfigPath} (use --node?)");
        if (volume is int v && node.Volumes.All(x => x.Number != v))
        {
            throw new CliException($"'{name}' has no volume {v} on {context.NodeName}");
        }
        return [(definition, volume)];
    }

    /// <summary>Splits `r0/1` into ("r0", 1) and `r0` into ("r0", null).</summary>
    public static (string Name, int? Volume) SplitVolume(string argument)
    {
        int slash = argument.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            return (argument, null);
        }
        if (!int.TryParse(argument.AsSpan(slash + 1), out int volume) || volume < 0)
        {
            throw new CliException($"'{argument}': expected RESOURCE/VOLUME with a volume number");
        }
        return (argument[..slash], volume);
    }

    /// <summary>Sends one request to the agent; a refusal becomes a <see cref="CliException"/>.</summary>
    public static async Task<ControlResponse> CallAgentAsync(CliContext context, ControlRequest request, CancellationToken cancellationToken, Action<string>? onLine = null)
    {
        var response = await new ControlClient(context.ControlPath).SendAsync(request, onLine, cancellationToken).ConfigureAwait(false);
        if (!response.Ok)
        {
            throw new CliException(response.Error ?? "rbagent refused the command", response.ExitCode == 0 ? ExitCodes.StateChangeFailed : response.ExitCode);
        }
        return response;
    }
}

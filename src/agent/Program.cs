using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Redundancy.Block.Agent.Control;
using Redundancy.Block.Agent.Logging;
using Redundancy.Block.Agent.Resources;

namespace Redundancy.Block.Agent;

/// <summary>rbagent: parse the two options, then run the Generic Host until SIGTERM/SIGINT.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        RuntimeTuning.Apply();
        var node = new Option<string?>("--node") { Description = "This node's name (default $RB_NODE or uname -n)" };
        var control = new Option<string?>("--control") { Description = "Control socket path (default $RB_CONTROL or /run/redundancy/NODE.sock)" };
        var root = new RootCommand("rbagent — Redundancy.Block node agent: serves resources over NBD and replicates them") { node, control };
        root.SetAction(parse => Run(AgentOptions.Resolve(parse.GetValue(node), parse.GetValue(control))));
        return root.Parse(args).Invoke();
    }

    private static int Run(AgentOptions options)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.AddConsole(console => console.FormatterName = DrbdLogFormatter.FormatterName)
            .AddConsoleFormatter<DrbdLogFormatter, ConsoleFormatterOptions>();
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<EventHub>();
        builder.Services.AddSingleton<ResourceManager>();
        builder.Services.AddSingleton<ControlDispatcher>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ResourceManager>());
        builder.Services.AddHostedService<ControlServer>();
        using var host = builder.Build();
        try
        {
            host.Run();
            return 0;
        }
        catch (AgentStartupException e)
        {
            Console.Error.WriteLine($"rbagent: {e.Message}");
            return 1;
        }
    }
}

/// <summary>The agent cannot start (e.g. the control socket is in use); the message says why.</summary>
public sealed class AgentStartupException(string message, Exception? inner = null) : Exception(message, inner);

using System.CommandLine;
using System.Globalization;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;
using Redundancy.Block.Engine.Status;

namespace Redundancy.Block.Cli.Commands;

/// <summary>
/// wait-connect and wait-sync: poll the agent's status until every peer is connected (and, for
/// wait-sync, no resync is left), or the timeout passes. On a terminal wait-sync draws a progress bar.
/// Without --timeout the resource's `startup` section picks the timeout, as drbdadm passes it to
/// drbdsetup's wait-connect: the agent says which applies (get-timeout-type) — degr-wfc-timeout when
/// this node went down as a Primary without a connected peer, outdated-wfc-timeout when the peer's
/// disk is known Outdated, else wfc-timeout (0, the default, waits forever). A connection that is StandAlone (or
/// Disconnecting) will not connect by itself — a split brain, an unrelated peer, a disconnect — so
/// the wait ends there, successfully, as drbdsetup's does (a boot script then goes on instead of
/// hanging); with --wait-after-sb or `startup { wait-after-sb; }` it goes on waiting.
/// </summary>
internal static class WaitCommands
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    /// <summary>No startup section: every timeout 0 (wait forever), no wait-after-sb.</summary>
    private static readonly (StartupTimeouts Timeouts, bool WaitAfterSb) NoStartup = (new StartupTimeouts(0, 0, 0), false);

    public static Command WaitConnect() => Wait("wait-connect", "Wait until every peer of the resource is Connected", sync: false);

    public static Command WaitSync() => Wait("wait-sync", "Wait until every peer is Connected and no resync is left (progress bar on a terminal)", sync: true);

    private static Command Wait(string name, string description, bool sync)
    {
        var timeout = new Option<int?>("--timeout", "-t") { Description = "Give up after this many seconds, whatever the timeout type (0 waits forever)" };
        var wfcTimeout = new Option<long?>("--wfc-timeout") { Description = "Seconds to wait (0: forever); default: startup wfc-timeout" };
        var degrWfcTimeout = new Option<long?>("--degr-wfc-timeout") { Description = "Seconds to wait if this node was a degraded Primary; default: startup degr-wfc-timeout" };
        var outdatedWfcTimeout = new Option<long?>("--outdated-wfc-timeout") { Description = "Seconds to wait if the peer is Outdated; default: startup outdated-wfc-timeout" };
        var waitAfterSb = new Option<bool>("--wait-after-sb") { Description = "Keep waiting when a connection is StandAlone (after a split brain); default: startup wait-after-sb" };
        var command = new Command(name, description) { CommandRunner.ResourceArgument, timeout, wfcTimeout, degrWfcTimeout, outdatedWfcTimeout, waitAfterSb };
        CommandRunner.SetHandler(command, async (parse, context, cancellationToken) =>
        {
            string resource = parse.GetValue(CommandRunner.ResourceArgument)!;
            var startup = ConfiguredStartup(context, resource);
            var timeouts = new StartupTimeouts(
                parse.GetValue(wfcTimeout) ?? startup.Timeouts.WfcTimeoutSec,
                parse.GetValue(degrWfcTimeout) ?? startup.Timeouts.DegrWfcTimeoutSec,
                parse.GetValue(outdatedWfcTimeout) ?? startup.Timeouts.OutdatedWfcTimeoutSec);
            long seconds = parse.GetValue(timeout) ?? await ChooseTimeoutAsync(context, resource, timeouts, cancellationToken).ConfigureAwait(false);
            bool waitOnStandAlone = parse.GetValue(waitAfterSb) || startup.WaitAfterSb;
            bool toldWaiting = false;
            var deadline = seconds > 0 ? DateTime.UtcNow.AddSeconds(seconds) : DateTime.MaxValue;
            bool bar = sync && !Console.IsOutputRedirected;
            while (true)
            {
                var status = await StatusCommands.QueryAsync(context, resource, cancellationToken).ConfigureAwait(false);
                if (status.Count == 0)
                {
                    throw new CliException($"{resource}: No such resource", ExitCodes.Usage);
                }
                var peers = status.SelectMany(r => r.Connections).ToList();
                bool connected = peers.Count > 0 && peers.All(c => c.ConnectionState == ConnectionState.Connected);
                bool synced = connected && peers.SelectMany(c => c.PeerDevices).All(p => p.ReplicationState == ReplicationState.Established);
                if (bar)
                {
                    DrawProgress(peers);
                }
                if (sync ? synced : connected)
                {
                    if (bar)
                    {
                        Console.Out.WriteLine();
                    }
                    return ExitCodes.Success;
                }
                var standAlone = peers.Where(c => c.ConnectionState < ConnectionState.Unconnected).Select(c => $"{c.Name} is {c.ConnectionState}").ToList();
                if (standAlone.Count > 0 && !waitOnStandAlone)
                {
                    Console.Error.WriteLine($"{resource}: {string.Join(", ", standAlone)}: not waiting for it (--wait-after-sb waits anyway)");
                    return ExitCodes.Success;
                }
                if (standAlone.Count > 0 && !toldWaiting)
                {
                    Console.Error.WriteLine($"{resource}: {string.Join(", ", standAlone)}, but configured to wait anyway (--wait-after-sb)");
                    toldWaiting = true;
                }
                if (DateTime.UtcNow >= deadline)
                {
                    if (bar)
                    {
                        Console.Out.WriteLine();
                    }
                    string state = string.Join(", ", peers.Select(c => $"{c.Name}: {c.ConnectionState}" +
                        string.Concat(c.PeerDevices.Select(p => $" {p.Volume}:{p.ReplicationState}"))));
                    throw new CliException($"{resource}: {name} timed out after {seconds} s ({state})", ExitCodes.StateChangeFailed);
                }
                await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
            }
        });
        return command;
    }

    /// <summary>
    /// drbdsetup's choose_timeout: the agent says which timeout applies, the startup values give it
    /// (cut as drbdsetup cuts them, with its warnings). A non-default choice is said, with why.
    /// </summary>
    private static async Task<long> ChooseTimeoutAsync(CliContext context, string resource, StartupTimeouts timeouts, CancellationToken cancellationToken)
    {
        var response = await new ControlClient(context.ControlPath)
            .SendAsync(new ControlRequest { Command = "get-timeout-type", Resource = resource }, null, cancellationToken).ConfigureAwait(false);
        // A resource that is not up is reported by the first status poll; its type is the default.
        var type = response is { Ok: true, TimeoutType: { } known } ? known : WaitTimeoutType.Default;
        var (seconds, warnings) = timeouts.Choose(type);
        foreach (string warning in warnings)
        {
            Console.Error.WriteLine(warning);
        }
        string wait = seconds == 0 ? "waiting without a timeout" : $"waiting {seconds} s";
        if (type == WaitTimeoutType.Degraded)
        {
            Console.Error.WriteLine($"{resource}: this node went down as a Primary with no peer connected: {wait} (degr-wfc-timeout)");
        }
        else if (type == WaitTimeoutType.PeerOutdated)
        {
            Console.Error.WriteLine($"{resource}: the peer's disk is Outdated: {wait} (outdated-wfc-timeout)");
        }
        return seconds;
    }

    /// <summary>
    /// `startup { wfc-timeout; degr-wfc-timeout; outdated-wfc-timeout; wait-after-sb; }` of the
    /// resource in the configuration (0s and false when it has none, or there is no readable configuration).
    /// </summary>
    private static (StartupTimeouts Timeouts, bool WaitAfterSb) ConfiguredStartup(CliContext context, string resource)
    {
        try
        {
            var selected = CommandRunner.Select(CommandRunner.LoadConfig(context), context, resource);
            return selected.Count == 0 ? NoStartup : (selected[0].Definition.StartupTimeouts(), selected[0].Definition.WaitAfterSb());
        }
        catch (Exception e) when (e is CliException or ConfigException)
        {
            return NoStartup; // the agent's status is what is waited on; without a config, wait as asked
        }
    }

    /// <summary>One line, redrawn: the least complete resync's bar and `done:` as drbdadm status shows it.</summary>
    private static void DrawProgress(IReadOnlyList<ConnectionStatus> peers)
    {
        var syncing = peers.SelectMany(c => c.PeerDevices).Where(p => p.HasSyncDetails).ToList();
        if (syncing.Count == 0)
        {
            return;
        }
        double done = syncing.Min(p => p.PercentInSync);
        const int width = 40;
        int filled = (int)Math.Clamp(Math.Round(done / 100 * width), 0, width);
        string line = $"\r[{new string('=', filled)}{(filled < width ? ">" : "")}{new string('.', Math.Max(0, width - filled - 1))}] done: {done.ToString("F2", CultureInfo.InvariantCulture)}%  out-of-sync: {syncing.Sum(p => p.OutOfSyncKib)} KiB ";
        Console.Out.Write(line);
        Console.Out.Flush();
    }
}

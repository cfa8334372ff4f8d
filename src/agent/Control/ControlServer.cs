using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Redundancy.Block.Engine.Control;

namespace Redundancy.Block.Agent.Control;

/// <summary>
/// The control socket rbadm talks to (as drbdsetup talks netlink): a Unix stream socket, mode 0600
/// (root only, as drbdsetup needs root: no group is given access), one JSON request line per
/// connection, JSON response lines back. Each connection's uid is checked too (SO_PEERCRED), so a
/// socket whose mode was widened still answers only root (or the agent's own user).
/// </summary>
internal sealed partial class ControlServer(AgentOptions options, ControlDispatcher dispatcher, ILogger<ControlServer> logger) : BackgroundService
{
    private const int MaxRequestBytes = 4 * 1024 * 1024;
    private static readonly TimeSpan RefusalReadTimeout = TimeSpan.FromSeconds(2);
    private Socket? listener;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        listener = Bind(options.ControlPath);
        LogListening(logger, options.NodeName, options.ControlPath);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var socket = listener!;
        while (!stoppingToken.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await socket.AcceptAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            _ = ServeAsync(client, stoppingToken);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        listener?.Dispose();
        TryDelete(options.ControlPath);
    }

    private async Task ServeAsync(Socket client, CancellationToken stoppingToken)
    {
        using (client)
        {
            await using var stream = new NetworkStream(client, ownsSocket: false);
            try
            {
                if (!PeerCredentials.IsAllowed(client))
                {
                    await RefuseAsync(stream, stoppingToken).ConfigureAwait(false);
                    return;
                }
                string? line = await ReadLineAsync(stream, stoppingToken).ConfigureAwait(false);
                var request = line is null ? null : ControlJson.ParseRequest(line, out string error);
                if (request is null)
                {
                    await WriteAsync(stream, ControlResponse.Failure("malformed control request", ExitCodes.Usage), stoppingToken).ConfigureAwait(false);
                    return;
                }
                await dispatcher.DispatchAsync(request, response => WriteAsync(stream, response, stoppingToken), stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
                // rbadm went away (e.g. Ctrl-C on `events`) or the agent is stopping: nothing to answer.
            }
        }
    }

    /// <summary>
    /// Refuses a caller that is not root: its request is read first (bounded in size and to
    /// <see cref="RefusalReadTimeout"/>), as closing on a client still writing it would leave it with
    /// EPIPE instead of the reason.
    /// </summary>
    private static async Task RefuseAsync(Stream stream, CancellationToken stoppingToken)
    {
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
        {
            deadline.CancelAfter(RefusalReadTimeout);
            try
            {
                await ReadLineAsync(stream, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                // It sent no complete request in time: refuse anyway.
            }
        }
        await WriteAsync(stream, ControlResponse.Failure("permission denied: only root or the agent's user may use the control socket", ExitCodes.Usage), stoppingToken).ConfigureAwait(false);
    }

    private static async ValueTask WriteAsync(Stream stream, ControlResponse response, CancellationToken cancellationToken)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(ControlJson.Serialize(response) + "\n");
        await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
        await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads one newline-terminated request, bounded in size (the peer is untrusted).</summary>
    private static async Task<string?> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        while (buffer.Length <= MaxRequestBytes)
        {
            int n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return null;
            }
            int newline = Array.IndexOf(chunk, (byte)'\n', 0, n);
            buffer.Write(chunk, 0, newline >= 0 ? newline : n);
            if (newline >= 0)
            {
                return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
            }
        }
        return null;
    }

    /// <summary>Binds the socket; refuses to steal one from a running agent, removes a stale one.</summary>
    private static Socket Bind(string path)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }
        if (File.Exists(path))
        {
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new AgentStartupException($"control socket {path} is in use by another rbagent");
            }
            catch (SocketException)
            {
                File.Delete(path);
            }
        }
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            socket.Listen(64);
            return socket;
        }
        catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException)
        {
            socket.Dispose();
            throw new AgentStartupException($"cannot listen on control socket {path}: {e.Message}", e);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: a stale socket is removed at the next start anyway.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "rbagent {Node}: control socket {Path}")]
    private static partial void LogListening(ILogger logger, string node, string path);
}

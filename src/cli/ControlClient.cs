using System.Net.Sockets;
using System.Text;
using Redundancy.Block.Engine.Control;

namespace Redundancy.Block.Cli;

/// <summary>Talks to the local rbagent over its Unix control socket: one JSON line out, JSON lines back.</summary>
internal sealed class ControlClient(string controlPath)
{
    /// <summary>Sends <paramref name="request"/>; calls <paramref name="onLine"/> for streamed lines; returns the final response.</summary>
    public async Task<ControlResponse> SendAsync(ControlRequest request, Action<string>? onLine, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(controlPath), cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
        {
            // The socket is mode 0600, owned by root: only root may drive the agent.
            throw new CliException($"permission denied on rbagent's control socket {controlPath}: only root may use it (run rbadm as root)", ExitCodes.NoAgent);
        }
        catch (SocketException e)
        {
            throw new CliException($"cannot reach rbagent at {controlPath}: {e.Message} (is rbagent running with this --node/--control?)", ExitCodes.NoAgent);
        }
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        byte[] line = Encoding.UTF8.GetBytes(ControlJson.Serialize(request) + "\n");
        await stream.WriteAsync(line, cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        while (true)
        {
            string? text = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
            if (text is null)
            {
                throw new CliException("rbagent closed the control connection without answering", ExitCodes.NoAgent);
            }
            var response = ControlJson.ParseResponse(text)
                ?? throw new CliException("rbagent sent an answer rbadm does not understand (are rbadm and rbagent the same version?)", ExitCodes.NoAgent);
            if (response.Line is not null)
            {
                onLine?.Invoke(response.Line);
            }
            if (response.Done)
            {
                return response;
            }
        }
    }
}

using Redundancy.Block.Agent.Resources;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.Status;

namespace Redundancy.Block.Agent.Control;

/// <summary>
/// Maps one control request to the resource manager. Unknown commands and missing arguments are
/// answered with a usage error; state changes with the manager's verdict.
/// </summary>
internal sealed class ControlDispatcher(ResourceManager manager, EventHub events)
{
    public async Task DispatchAsync(ControlRequest request, Func<ControlResponse, ValueTask> reply, CancellationToken cancellationToken)
    {
        if (request.Command == "events")
        {
            await StreamEventsAsync(request, reply, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (request.Command == "status")
        {
            var status = manager.Status(request.Resource);
            await reply(request.Resource is not null && status.Count == 0
                ? ControlResponse.Failure($"{request.Resource}: No such resource", ExitCodes.Usage)
                : new ControlResponse { Ok = true, Status = status }).ConfigureAwait(false);
            return;
        }
        if (request.Resource is null)
        {
            await reply(ControlResponse.Failure($"{request.Command}: a resource name is required", ExitCodes.Usage)).ConfigureAwait(false);
            return;
        }
        var response = request.Command switch
        {
            "up" when request.Definition is not null => await manager.UpAsync(request.Definition, cancellationToken).ConfigureAwait(false),
            "attach" => await manager.AttachAsync(request.Resource, request.Volume, cancellationToken).ConfigureAwait(false),
            "detach" => await manager.DetachAsync(request.Resource, request.Volume, request.Force, cancellationToken).ConfigureAwait(false),
            "down" => await manager.DownAsync(request.Resource, cancellationToken).ConfigureAwait(false),
            "primary" => await manager.PrimaryAsync(request.Resource, request.Force, cancellationToken).ConfigureAwait(false),
            "secondary" => await manager.SecondaryAsync(request.Resource, request.Force, cancellationToken).ConfigureAwait(false),
            "connect" => await manager.ConnectAsync(request.Resource, connect: true, request.DiscardMyData, cancellationToken).ConfigureAwait(false),
            "disconnect" => await manager.ConnectAsync(request.Resource, connect: false, discardMyData: false, cancellationToken).ConfigureAwait(false),
            "invalidate" => await manager.InvalidateAsync(request.Resource, request.Volume, remote: false, resetBitmap: !request.KeepBitmap, cancellationToken).ConfigureAwait(false),
            "invalidate-remote" => await manager.InvalidateAsync(request.Resource, request.Volume, remote: true, resetBitmap: !request.KeepBitmap, cancellationToken).ConfigureAwait(false),
            "new-current-uuid" => await manager.NewCurrentUuidAsync(request.Resource, request.Volume, request.ClearBitmap, cancellationToken).ConfigureAwait(false),
            "verify" => await manager.VerifyAsync(request.Resource, request.Volume, request.VerifyStartOffsetBytes, cancellationToken).ConfigureAwait(false),
            "resize" => await manager.ResizeAsync(request.Resource, request.Volume, request.AssumeClean, cancellationToken).ConfigureAwait(false),
            "pause-sync" => await manager.PauseSyncAsync(request.Resource, request.Volume, pause: true, cancellationToken).ConfigureAwait(false),
            "resume-sync" => await manager.PauseSyncAsync(request.Resource, request.Volume, pause: false, cancellationToken).ConfigureAwait(false),
            "outdate" => await manager.OutdateAsync(request.Resource, request.Volume, cancellationToken).ConfigureAwait(false),
            "get-timeout-type" => await manager.TimeoutTypeAsync(request.Resource, cancellationToken).ConfigureAwait(false),
            "resume-io" => await manager.ResumeIoAsync(request.Resource, cancellationToken).ConfigureAwait(false),
            "adjust" when request.Definition is not null => await manager.AdjustAsync(request.Definition, cancellationToken).ConfigureAwait(false),
            "up" or "adjust" => ControlResponse.Failure($"{request.Command}: the resource definition is missing", ExitCodes.Usage),
            _ => ControlResponse.Failure($"unknown command '{request.Command}'", ExitCodes.Usage),
        };
        await reply(response).ConfigureAwait(false);
    }

    /// <summary>
    /// events2: with --now the current state then `exists -`; without, the same dump followed by
    /// every change until the client goes away. Subscribing before the dump means no change is lost
    /// between the two.
    /// </summary>
    private async Task StreamEventsAsync(ControlRequest request, Func<ControlResponse, ValueTask> reply, CancellationToken cancellationToken)
    {
        using var subscription = events.Subscribe();
        foreach (string line in Events2.Dump(manager.Status(request.Resource)))
        {
            await reply(new ControlResponse { Ok = true, Line = line, Done = false }).ConfigureAwait(false);
        }
        if (!request.Now)
        {
            string filter = request.Resource is null ? string.Empty : $" name:{request.Resource} ";
            await foreach (string line in subscription.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (filter.Length == 0 || (line + " ").Contains(filter, StringComparison.Ordinal))
                {
                    await reply(new ControlResponse { Ok = true, Line = line, Done = false }).ConfigureAwait(false);
                }
            }
        }
        await reply(ControlResponse.Success()).ConfigureAwait(false);
    }
}

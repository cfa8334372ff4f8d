using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Agent.Resources;

// `verify`: online verify against every connected peer, started under the replica's lock like the
// other state changes of a replicated resource. It runs in the background; status shows VerifyS
// with `done:`, and the log says what it found.
internal sealed partial class ResourceManager
{
    /// <summary>
    /// Starts online verify of the resource's volumes (or one) with its connected peers, from
    /// <paramref name="startOffsetBytes"/> (null: where an interrupted verify stopped, else the start).
    /// </summary>
    public Task<ControlResponse> VerifyAsync(string name, int? volume, long? startOffsetBytes, CancellationToken cancellationToken) =>
        WithResource(name, runtime =>
        {
            if (runtime.Replication is not { } host)
            {
                return Task.FromResult(ControlResponse.Failure($"{name}: no peer to verify against", ExitCodes.StateChangeFailed));
            }
            var failure = (Subject: name, Result: StateChangeResult.Success);
            host.Locked(replica =>
            {
                foreach (int number in SelectVolumes(runtime, volume))
                {
                    foreach (var (peer, link) in replica.Links.Where(l => l.Value.State == ConnectionState.Connected).DefaultIfEmpty())
                    {
                        var result = link is null ? StateChangeResult.NoConnection : replica.StartVerify(peer, number, startOffsetBytes);
                        if (!result.IsSuccess() && failure.Result.IsSuccess())
                        {
                            failure = (link is null ? runtime.ExportName(number) : $"{runtime.ExportName(number)} {link.Settings.PeerNodeName}", result);
                        }
                    }
                }
            });
            Publish(runtime);
            return Task.FromResult(failure.Result.IsSuccess() ? ControlResponse.Success() : Refused(runtime, failure.Subject, failure.Result));
        }, cancellationToken);
}

using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Agent.Resources;

// `primary` with peers is a cluster-wide state change (Replica.Promotion.cs): under the replica
// lock the resource's rules are checked and, while a peer is connected, the peer is asked; the
// command then waits — without the lock — for the answer, at most twopc-timeout, and carries the
// promotion out under the lock only if every peer asked agreed and the rules still allow it. A
// peer lost meanwhile no longer counts (the disconnected rules, fencing among them, decide).
internal sealed partial class ResourceManager
{
    /// <summary>Beyond twopc-timeout (which the replica enforces on its tick), how long the command waits before it gives up itself.</summary>
    private const int PromotionGraceMs = 5_000;

    /// <summary>One attempt at promotion; PrimaryNop tells the caller to fence and try again with <paramref name="peersFenced"/>.</summary>
    private async Task<StateChangeResult> PromoteAsync(ResourceRuntime runtime, bool force, bool peersFenced, CancellationToken cancellationToken)
    {
        if (runtime.Replication is not { } host)
        {
            return ChangeState(runtime, _ => runtime.State.Promote(force, peersFenced));
        }
        long timeoutMs = runtime.Definition.TwopcTimeoutMs();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromMilliseconds(timeoutMs + PromotionGraceMs));
        long token = 0;
        try
        {
            while (true)
            {
                Task? news = null;
                var result = ChangeState(runtime, (replica, _) =>
                {
                    var check = runtime.State.CanPromote(force, peersFenced);
                    if (check != StateChangeResult.Success || replica is null)
                    {
                        return check == StateChangeResult.Success ? runtime.State.Promote(force, peersFenced) : check;
                    }
                    StateChangeResult? answer = token == 0 ? replica.RequestPromotion(host.NowMs, timeoutMs, out token) : null;
                    if (token != 0 && answer is null or StateChangeResult.Success)
                    {
                        answer = replica.PromotionAnswer(token);
                    }
                    if (answer is null)
                    {
                        news = host.PromotionNewsUnderLock(token); // asked, the answer is due: wait without the lock
                        return StateChangeResult.NothingToDo;
                    }
                    return answer == StateChangeResult.Success ? runtime.State.Promote(force, peersFenced) : answer.Value;
                });
                if (news is null)
                {
                    return result;
                }
                try
                {
                    await news.WaitAsync(limit.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return StateChangeResult.Timeout;
                }
            }
        }
        finally
        {
            if (token != 0)
            {
                host.Locked(replica => replica.EndPromotion(token)); // nothing to end when the promotion was carried out
            }
        }
    }
}

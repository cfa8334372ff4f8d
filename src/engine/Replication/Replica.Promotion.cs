using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// Promotion as a cluster-wide state change, as DRBD makes it (8.4: P_STATE_CHG_REQ answered by
// P_STATE_CHG_REPLY; 9: the two-phase commit P_TWOPC_PREPARE / YES|NO / COMMIT|ABORT). While a
// peer is connected, `primary` first asks it (StateChangeRequest BecomePrimary). Without
// allow-two-primaries the peer refuses when it is Primary (SS_TWO_PRIMARIES) or about to be; when
// both ask at once, the side holding the resolve-conflicts role refuses the other's request
// (SS_CONCURRENT_ST_CHG) and the other grants it and gives its own up. A granted peer holds back
// its own promotions until the requester carries the change out — the State announcing Primary
// is the commit — or gives it up (StateChangeAbort), or the connection ends. A peer whose
// handshake is under way is asked once it is connected. The requester's host applies the
// promotion only after every asked peer agreed; a peer lost meanwhile no longer counts (the
// disconnected rules, fencing among them, then apply), and twopc-timeout ends a request no one
// answers (SS_TIMEOUT).
public sealed partial class Replica
{
    /// <summary>Promotion request ids have the high bit set, so a late reply is never taken for a verify start's.</summary>
    private const uint PromotionRequestIdBit = 0x8000_0000;

    private PromotionRequest? promotion;
    /// <summary>Peers whose promotion this node granted and that have not carried it out or given it up: request id by peer.</summary>
    private readonly Dictionary<int, uint> grantedPromotions = [];
    private uint nextPromotionRequestId = 1;

    /// <summary>This node asked its peers to agree to its promotion and the host has not concluded it yet.</summary>
    public bool PromotionInFlight => promotion is not null;

    /// <summary>This node granted <paramref name="peerNodeId"/>'s promotion, which is still in flight.</summary>
    public bool PeerPromotionGranted(int peerNodeId) => grantedPromotions.ContainsKey(peerNodeId);

    /// <summary>
    /// `primary`, after the resource's own rules allowed it: asks every connected peer (and every
    /// peer whose handshake is under way, once connected) to agree. Success with
    /// <paramref name="token"/> 0: no peer to ask, the disconnected rules apply now. Success with a
    /// token: the request is out; <see cref="IReplicaIo.PromotionAnswered"/> reports when
    /// <see cref="PromotionAnswer"/> has news, and the host ends it with <see cref="SetRole"/>
    /// (carried out) or <see cref="EndPromotion"/>. Refused at once: TwoPrimaries while a peer's
    /// promotion granted here is in flight, ConcurrentStateChange while one of this node's is.
    /// </summary>
    public StateChangeResult RequestPromotion(long nowMs, long timeoutMs, out long token)
    {
        token = 0;
        if (promotion is not null)
        {
            return StateChangeResult.ConcurrentStateChange;
        }
        if (grantedPromotions.Keys.Any(p => !links[p].Settings.Protocol.AllowTwoPrimaries))
        {
            return StateChangeResult.TwoPrimaries;
        }
        var request = new PromotionRequest(nextToken++, PromotionRequestIdBit | nextPromotionRequestId++, nowMs + timeoutMs);
        foreach (var (peer, link) in links)
        {
            if (connected.Contains(peer) && link.State == ConnectionState.Connected)
            {
                AskPromotion(peer, request);
            }
            else if (link.Handshaking)
            {
                request.Deferred.Add(peer);
            }
        }
        if (request.Awaiting.Count == 0 && request.Deferred.Count == 0)
        {
            return StateChangeResult.Success;
        }
        promotion = request;
        token = request.Token;
        io.Log($"{ResourceName}: Preparing cluster-wide state change {request.RequestId & ~PromotionRequestIdBit} (role Secondary -> Primary)");
        return StateChangeResult.Success;
    }

    /// <summary>
    /// Where the promotion request <paramref name="token"/> stands: null while a peer's answer is
    /// due, Success when every peer asked agreed (or was lost), else why it failed.
    /// </summary>
    public StateChangeResult? PromotionAnswer(long token)
    {
        if (promotion is not { } request || request.Token != token)
        {
            return StateChangeResult.ConcurrentStateChange; // ended already: nothing holds the peers back for it
        }
        if (request.Refusal is { } refusal)
        {
            return refusal;
        }
        return request.Awaiting.Count == 0 && request.Deferred.Count == 0 ? StateChangeResult.Success : null;
    }

    /// <summary>The host does not carry the promotion out (refused, timed out, its rules said no): peers that granted it are released.</summary>
    public void EndPromotion(long token)
    {
        if (promotion is not { } request || request.Token != token)
        {
            return;
        }
        AbortGranted(request);
        promotion = null;
    }

    /// <summary>SetRole(Primary) carries the granted promotion out: the State it announces is the commit.</summary>
    private void CommitPromotion()
    {
        if (promotion is not { } request)
        {
            return;
        }
        Invariant.Assert(PromotionAnswer(request.Token) == StateChangeResult.Success, "a promotion asked of the peers is carried out only once they all agreed");
        promotion = null;
    }

    private void AskPromotion(int peer, PromotionRequest request)
    {
        request.Deferred.Remove(peer);
        request.Awaiting.Add(peer);
        links[peer].SendMessage(volumes.Keys.Min(), new StateChangeRequestMessage(request.RequestId, StateChangeKind.BecomePrimary, StateChangeRequestFlags.None, 0));
        Drain(peer);
    }

    /// <summary>The peer asks to become Primary: the answer it gets.</summary>
    private StateChangeResult AnswerPromotionRequest(int peer, StateChangeRequestMessage request)
    {
        var settings = links[peer].Settings;
        if (settings.Protocol.AllowTwoPrimaries)
        {
            return StateChangeResult.Success;
        }
        if (Role == Role.Primary)
        {
            return StateChangeResult.TwoPrimaries;
        }
        if (promotion is { Refusal: null } own)
        {
            if (own.Awaiting.Count == 0 && own.Deferred.Count == 0)
            {
                return StateChangeResult.TwoPrimaries; // agreed everywhere: this node is about to be Primary
            }
            if (settings.ResolvesConflicts)
            {
                io.Log($"{Subject(peer)}: Rejecting concurrent remote state change");
                return StateChangeResult.ConcurrentStateChange;
            }
            io.Log($"{Subject(peer)}: the peer holds resolve-conflicts: its promotion goes first, ours is aborted");
            FailPromotion(own, StateChangeResult.ConcurrentStateChange);
        }
        grantedPromotions[peer] = request.RequestId;
        io.Log($"{Subject(peer)}: Preparing remote state change {request.RequestId & ~PromotionRequestIdBit} (peer role Primary): agreed");
        return StateChangeResult.Success;
    }

    /// <summary>The peer answered our promotion request (or a late answer to one given up: a grant in it is released).</summary>
    private void PromotionReplied(int peer, StateChangeReplyMessage reply)
    {
        if (promotion is not { Refusal: null } request || request.RequestId != reply.RequestId)
        {
            if (reply.Result == StateChangeResult.Success)
            {
                links[peer].SendMessage(volumes.Keys.Min(), new StateChangeAbortMessage(reply.RequestId));
            }
            return;
        }
        if (!request.Awaiting.Remove(peer))
        {
            return;
        }
        if (reply.Result.IsSuccess())
        {
            request.Granted.Add(peer);
            MaybePromotionAnswered(request);
            return;
        }
        io.Log($"{Subject(peer)}: the peer refused the promotion: {StateChangeResults.Describe(reply.Result)}");
        FailPromotion(request, reply.Result);
    }

    /// <summary>The peer gave up a promotion we granted.</summary>
    private void PromotionAborted(int peer, StateChangeAbortMessage abort)
    {
        if (grantedPromotions.TryGetValue(peer, out uint granted) && granted == abort.RequestId)
        {
            grantedPromotions.Remove(peer);
        }
    }

    /// <summary>The peer announced its role: a promotion granted to it is carried out (Primary), and no longer held for.</summary>
    private void PromotionPeerState(int peer)
    {
        if (links[peer].PeerRole == Role.Primary)
        {
            grantedPromotions.Remove(peer);
        }
    }

    /// <summary>
    /// After every link event: a peer whose handshake started is asked once it is connected; one
    /// whose connection ended (or whose handshake failed) no longer counts, nor does a grant it had.
    /// </summary>
    private void PromotionLinkChanged(int peer)
    {
        var link = links[peer];
        bool isConnected = connected.Contains(peer) && link.State == ConnectionState.Connected;
        if (!isConnected)
        {
            grantedPromotions.Remove(peer);
        }
        if (promotion is not { Refusal: null } request)
        {
            return;
        }
        if (isConnected && request.Deferred.Contains(peer))
        {
            AskPromotion(peer, request);
        }
        else if (!isConnected && (request.Awaiting.Contains(peer) || request.Granted.Contains(peer)) && !link.Handshaking)
        {
            io.Log($"{Subject(peer)}: the connection ended before the promotion was agreed: the disconnected rules apply");
            request.Awaiting.Remove(peer);
            request.Granted.Remove(peer);
            MaybePromotionAnswered(request);
        }
        else if (!isConnected && link.Handshaking && !request.Deferred.Contains(peer))
        {
            // A new connection: what was agreed on the old one does not count; ask when connected.
            request.Awaiting.Remove(peer);
            request.Granted.Remove(peer);
            request.Deferred.Add(peer);
        }
        else if (!isConnected && !link.Handshaking && request.Deferred.Remove(peer))
        {
            MaybePromotionAnswered(request);
        }
    }

    /// <summary>twopc-timeout: a request still waiting for an answer fails (SS_TIMEOUT).</summary>
    private void PromotionTurn(long nowMs)
    {
        if (promotion is { Refusal: null } request && nowMs >= request.DeadlineMs && (request.Awaiting.Count > 0 || request.Deferred.Count > 0))
        {
            io.Log($"{ResourceName}: the peers did not answer the promotion request in time");
            FailPromotion(request, StateChangeResult.Timeout);
        }
    }

    private void FailPromotion(PromotionRequest request, StateChangeResult refusal)
    {
        request.Refusal = refusal;
        // A peer still owing its answer may have granted already (the answer on its way): released too.
        request.Granted.UnionWith(request.Awaiting);
        request.Awaiting.Clear();
        request.Deferred.Clear();
        AbortGranted(request);
        io.PromotionAnswered(request.Token);
    }

    private void MaybePromotionAnswered(PromotionRequest request)
    {
        if (request.Awaiting.Count == 0 && request.Deferred.Count == 0)
        {
            io.PromotionAnswered(request.Token);
        }
    }

    private void AbortGranted(PromotionRequest request)
    {
        foreach (int peer in request.Granted.Where(connected.Contains).ToList())
        {
            links[peer].SendMessage(volumes.Keys.Min(), new StateChangeAbortMessage(request.RequestId));
            Drain(peer);
        }
        request.Granted.Clear();
    }

    /// <summary>One promotion asked of the peers: who still owes an answer, who agreed, who is asked once connected.</summary>
    private sealed class PromotionRequest(long token, uint requestId, long deadlineMs)
    {
        public long Token { get; } = token;
        public uint RequestId { get; } = requestId;
        public long DeadlineMs { get; } = deadlineMs;
        public HashSet<int> Awaiting { get; } = [];
        public HashSet<int> Granted { get; } = [];
        public HashSet<int> Deferred { get; } = [];
        public StateChangeResult? Refusal { get; set; }
    }
}

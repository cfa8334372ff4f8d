using Redundancy.Block.Engine.SplitBrain;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Replication;

// DRBD's handlers at the points DRBD calls them: the split-brain family from the connect-time
// handshake, before-resync-target (the resync waits for it, so a snapshot taken there is of the
// old data) and after-resync-target on a SyncTarget; fence-peer is Replica.Fencing.cs's.
// The host runs them (with DRBD's environment); the replica only decides when.
public sealed partial class Replica
{
    private readonly Dictionary<long, (int Peer, int Volume)> handlersAwaited = [];

    /// <summary>A handler started with a token finished with <paramref name="exitCode"/>.</summary>
    public void HandlerDone(long token, int exitCode)
    {
        if (fenceCalls.Remove(token, out var fence))
        {
            FencePeerDone(fence, exitCode);
            return;
        }
        if (!handlersAwaited.Remove(token, out var target) || !syncs.TryGetValue(target, out var sync) || sync.HandlerToken != token)
        {
            return; // the resync it held is gone (the connection dropped meanwhile)
        }
        var (peer, number) = target;
        sync.HandlerToken = 0;
        // DRBD: a before-resync-target handler that fails drops the connection.
        if (exitCode != 0)
        {
            links[peer].Fail($"before-resync-target handler returned {exitCode}, dropping connection");
            Drain(peer);
            return;
        }
        PumpResync(peer, volumes[number], sync);
    }

    /// <summary>The split-brain handlers the handshake asked for, in DRBD's order.</summary>
    private void RunHandshakeHandlers(int peer, IReadOnlyList<(int Volume, HandshakeHandlers Handlers)> calls)
    {
        foreach (var (volume, handlers) in calls)
        {
            if (handlers.HasFlag(HandshakeHandlers.InitialSplitBrain))
            {
                io.RunHandler("initial-split-brain", peer, volume, 0);
            }
            if (handlers.HasFlag(HandshakeHandlers.PriLostAfterSb))
            {
                io.RunHandler("pri-lost-after-sb", peer, volume, 0);
            }
            if (handlers.HasFlag(HandshakeHandlers.SplitBrain))
            {
                io.RunHandler("split-brain", peer, volume, 0);
            }
            if (handlers.HasFlag(HandshakeHandlers.PriLost))
            {
                io.RunHandler("pri-lost", peer, volume, 0);
            }
        }
    }

    /// <summary>
    /// call-pri-lost-after-sb decided this Primary lost, and the host gave up the role already
    /// (<see cref="OnConnected"/> asked it): the replica follows.
    /// </summary>
    private void DemoteAfterSplitBrain(int peer, int volume)
    {
        if (Role != Role.Primary)
        {
            return;
        }
        io.Log($"{Subject(peer)}/{volume}: Successfully gave up primary role.");
        SetRole(Role.Secondary); // a demotion like any other: the last epoch closed, the primary indicator released
    }

    /// <summary>
    /// call-pri-lost-after-sb decided this Primary lost, but something holds the device: as DRBD's
    /// drbd_asb_recover_1p/2p, `pri-lost-after-sb` runs (it is expected to reboot the node) and the
    /// split brain stays unresolved (hg -100): the `split-brain` handler, no resync, StandAlone. Before,
    /// the resync went ahead and overwrote the data under the Primary's users.
    /// </summary>
    private void SplitBrainLostWithoutDemotion(int peer, int volume)
    {
        io.RunHandler("pri-lost-after-sb", peer, volume, 0);
        io.RunHandler("split-brain", peer, volume, 0);
        io.Log($"{Subject(peer)}/{volume}: Split-Brain detected but unresolved, dropping connection!");
        links[peer].RefuseUnresolvedSplitBrain($"volume {volume}: Split-Brain detected, dropping connection!");
        Drain(peer);
    }

    /// <summary>
    /// On a SyncTarget about to pull: before-resync-target runs first and the resync waits for it.
    /// True when the resync must wait (the handler is configured).
    /// </summary>
    private bool HoldForBeforeResyncTarget(int peer, int volume, SyncState sync)
    {
        long token = nextToken++;
        if (!io.RunHandler("before-resync-target", peer, volume, token))
        {
            return false;
        }
        sync.HandlerToken = token;
        handlersAwaited[token] = (peer, volume);
        return true;
    }
}

using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Simulation.Scale;

/// <summary>
/// The operator's commands as rbadm/the agent run them (primary [--force], secondary, disconnect,
/// connect [--discard-my-data], invalidate, verify, attach), each under DRBD's rules. Every answer
/// is checked against those rules computed here from what the node knows: a command may be
/// refused, but only for a reason that holds, and may succeed only when the rules allow it.
/// </summary>
public sealed class ScaleOperator(ScaleCluster cluster)
{
    /// <summary>Outcomes by "command result", e.g. "primary Success", "invalidate NoConnection".</summary>
    public Dictionary<string, long> Outcomes { get; } = [];

    /// <summary>twopc-timeout (default 30 s, as configured by default): how long a promotion waits for the peer's answer.</summary>
    public long TwopcTimeoutMs { get; init; } = 30_000;

    /// <summary>
    /// primary [--force], as the agent runs it: the resource's rules, then — while the peer is
    /// connected or its handshake is under way — the peer's agreement (a cluster-wide state
    /// change), then the promotion. <paramref name="done"/> gets the result: at once when no peer
    /// is asked, else when the answer arrived (simulated time passes meanwhile). A peer's refusal
    /// is judged by DRBD's conflict rule; a promotion it agreed to, by the rules at that moment.
    /// </summary>
    public void Primary(ScaleNode node, bool force, Action<StateChangeResult>? done = null)
    {
        var expected = ExpectedPromotion(node, force);
        long token = 0;
        var result = Run(node, new Allowance(Role: true, Force: force, Attach: false, Connect: false), () =>
        {
            node.UpdatePeerView();
            var check = node.State.CanPromote(force);
            if (check != StateChangeResult.Success)
            {
                return check;
            }
            var asked = node.Replica.RequestPromotion(node.Sim.NowMs, TwopcTimeoutMs, out token);
            return asked != StateChangeResult.Success || token != 0 ? asked : Promote(node, force);
        });
        if (token == 0)
        {
            Expect("primary", node, expected, result);
            done?.Invoke(result);
            return;
        }
        cluster.Note($"{node.Name}: operator primary: asking the peer");
        var sim = node.Sim;
        sim.PromotionAnswered = answered =>
        {
            if (answered != token || sim != node.Sim || node.Replica.PromotionAnswer(token) is not { } answer)
            {
                return; // a peer that connected meanwhile is being asked too
            }
            sim.PromotionAnswered = null;
            var result = PromotionAnswered(node, force, token, answer);
            done?.Invoke(result);
        };
    }

    /// <summary>The peers answered: promote (judged by the rules now) or report their refusal (judged by the conflict rule).</summary>
    private StateChangeResult PromotionAnswered(ScaleNode node, bool force, long token, StateChangeResult answer)
    {
        if (answer != StateChangeResult.Success)
        {
            node.Replica.EndPromotion(token);
            bool holds = answer switch
            {
                // The side without resolve-conflicts yields when both ask at once.
                StateChangeResult.ConcurrentStateChange => !node.Replica.Links[node.PeerNodeId].Settings.ResolvesConflicts,
                // With allow-two-primaries the peer agrees to a second Primary (DRBD's is_valid_state: SS_TWO_PRIMARIES only without it).
                StateChangeResult.TwoPrimaries => !node.Replica.Links[node.PeerNodeId].Settings.Protocol.AllowTwoPrimaries,
                StateChangeResult.Timeout => true,
                _ => false,
            };
            Judge("primary", node, answer, holds);
            return answer;
        }
        var expected = ExpectedPromotion(node, force, asked: true);
        var result = Run(node, new Allowance(Role: true, Force: force, Attach: false, Connect: false), () =>
        {
            var promoted = Promote(node, force);
            if (promoted != StateChangeResult.Success)
            {
                node.Replica.EndPromotion(token);
            }
            return promoted;
        });
        Expect("primary", node, expected, result);
        return result;
    }

    /// <summary>
    /// DRBD's rules for `primary` from what the node knows. <paramref name="asked"/>: the peers agreed
    /// already (this node's request is the one in flight, a grant to the peer cannot be pending).
    /// </summary>
    private static StateChangeResult ExpectedPromotion(ScaleNode node, bool force, bool asked = false)
    {
        var link = node.Replica.Links[node.PeerNodeId];
        bool peerConnected = link.State == ConnectionState.Connected;
        var disk = node.State.Volume(0).Disk;
        var peerDisk = node.Replica.PeerDiskOf(node.PeerNodeId, 0);
        bool twoAllowed = link.Settings.Protocol.AllowTwoPrimaries;
        var expected = node.State.Role == Role.Primary ? StateChangeResult.NothingToDo
            : peerConnected && link.PeerRole == Role.Primary && !twoAllowed ? StateChangeResult.TwoPrimaries
            : disk switch
            {
                DiskState.UpToDate => StateChangeResult.Success,
                DiskState.Consistent when !peerConnected => StateChangeResult.Success,
                DiskState.Inconsistent or DiskState.Outdated or DiskState.Consistent when force && !(peerConnected && peerDisk == DiskState.UpToDate) => StateChangeResult.Success,
                DiskState.Diskless or DiskState.Failed or DiskState.Detaching or DiskState.Attaching =>
                    peerConnected && peerDisk == DiskState.UpToDate ? StateChangeResult.Success : StateChangeResult.NoUpToDateDisk,
                _ => StateChangeResult.NoUpToDateDisk,
            };
        return expected != StateChangeResult.Success || asked ? expected
            : node.Replica.PromotionInFlight ? StateChangeResult.ConcurrentStateChange
            : node.Replica.PeerPromotionGranted(node.PeerNodeId) && !twoAllowed ? StateChangeResult.TwoPrimaries
            : StateChangeResult.Success;
    }

    /// <summary>The promotion itself, and after `--force` the agent's StartInitialSync.</summary>
    private static StateChangeResult Promote(ScaleNode node, bool force)
    {
        bool peerConnected = node.Replica.Links[node.PeerNodeId].State == ConnectionState.Connected;
        var peerDisk = node.Replica.PeerDiskOf(node.PeerNodeId, 0);
        var result = node.Change(s => s.Promote(force));
        if (result == StateChangeResult.Success && force && peerConnected
            && peerDisk is DiskState.Inconsistent or DiskState.Outdated or DiskState.Consistent
            && node.Replica.ReplicationOf(node.PeerNodeId, 0) == ReplicationState.Established)
        {
            node.Replica.StartFullSyncAsSource(node.PeerNodeId, 0); // the agent's StartInitialSync
        }
        return result;
    }

    /// <summary>secondary: refused while the application has requests in flight (the device is held open).</summary>
    public StateChangeResult Secondary(ScaleNode node)
    {
        bool open = cluster.PendingOn(node) > 0;
        var expected = node.State.Role == Role.Secondary ? StateChangeResult.NothingToDo
            : open ? StateChangeResult.DeviceInUse : StateChangeResult.Success;
        var result = Run(node, new Allowance(Role: true, Force: false, Attach: false, Connect: false), () => node.Change(s => s.Demote(force: false, deviceOpen: open, writesUnconfirmed: node.Replica.HoldsUnconfirmedWrites)));
        Expect("secondary", node, expected, result);
        return result;
    }

    public void Disconnect(ScaleNode node)
    {
        Run(node, default, () =>
        {
            node.Replica.Disconnect(node.PeerNodeId);
            return StateChangeResult.Success;
        });
        Count(node, "disconnect", StateChangeResult.Success);
    }

    public void Connect(ScaleNode node, bool discardMyData)
    {
        Run(node, new Allowance(Role: false, Force: false, Attach: false, Connect: true), () =>
        {
            node.Replica.SetDiscardMyData(node.PeerNodeId, discardMyData);
            node.Replica.Connect(node.Sim.NowMs);
            return StateChangeResult.Success;
        });
        Count(node, discardMyData ? "connect --discard-my-data" : "connect", StateChangeResult.Success);
    }

    /// <summary>`drbdadm down; drbdadm create-md; drbdadm up` on an Inconsistent Secondary (see <see cref="ScaleNode.CreateMetadata"/>).</summary>
    public void CreateMetadata(ScaleNode node)
    {
        Run(node, new Allowance(Role: false, Force: false, Attach: true, Connect: true), () =>
        {
            node.CreateMetadata();
            return StateChangeResult.Success;
        });
        Count(node, "down, create-md, up", StateChangeResult.Success);
    }

    public StateChangeResult Invalidate(ScaleNode node)
    {
        var link = node.Replica.Links[node.PeerNodeId];
        bool connected = link.State == ConnectionState.Connected;
        var repl = node.Replica.ReplicationOf(node.PeerNodeId, 0);
        var result = Run(node, default, () => node.Replica.Invalidate(node.PeerNodeId, 0));
        bool holds = result switch
        {
            StateChangeResult.Success => connected && node.Replica.Role == Role.Secondary && link.PeerDisks.GetValueOrDefault(0) == DiskState.UpToDate
                && repl is ReplicationState.Established,
            StateChangeResult.NoConnection => !connected,
            StateChangeResult.IsPrimary => node.Replica.Role == Role.Primary,
            StateChangeResult.NoLocalDisk => !node.Volume.HasLocalData,
            StateChangeResult.NoUpToDateDisk => link.PeerDisks.GetValueOrDefault(0) != DiskState.UpToDate,
            StateChangeResult.ResyncRunning => repl is not (ReplicationState.Established or ReplicationState.Off),
            _ => false,
        };
        Judge("invalidate", node, result, holds);
        return result;
    }

    public StateChangeResult Verify(ScaleNode node)
    {
        var link = node.Replica.Links[node.PeerNodeId];
        bool connected = link.State == ConnectionState.Connected;
        var repl = node.Replica.ReplicationOf(node.PeerNodeId, 0);
        var disk = node.Volume.Disk;
        var result = Run(node, default, () => node.Replica.StartVerify(node.PeerNodeId, 0, 0));
        bool peerHasData = link.PeerDisks.GetValueOrDefault(0) is DiskState.Inconsistent or DiskState.Outdated or DiskState.Consistent or DiskState.UpToDate;
        bool hasData = disk is DiskState.Inconsistent or DiskState.Outdated or DiskState.Consistent or DiskState.UpToDate;
        bool holds = result switch
        {
            StateChangeResult.Success => connected && repl == ReplicationState.Established && hasData && peerHasData,
            StateChangeResult.NoConnection => !connected,
            StateChangeResult.ResyncRunning => repl != ReplicationState.Established,
            StateChangeResult.NoLocalDisk => !hasData,
            StateChangeResult.NoRemoteDisk => !peerHasData,
            _ => false,
        };
        Judge("verify", node, result, holds);
        return result;
    }

    public StateChangeResult Attach(ScaleNode node)
    {
        bool diskless = node.Volume.Disk == DiskState.Diskless;
        // drbd_adm_attach's ERR_DATA_NOT_CURRENT: a Primary serving another generation than the disk's, with no UpToDate peer.
        bool notCurrent = node.Replica.Role == Role.Primary && node.Volume.ExposedDataUuid != 0
            && !GenerationIds.SameGeneration(node.Volume.ExposedDataUuid, node.PersistedSuperblock.GenerationIds.Current)
            && node.Replica.PeerDiskOf(node.PeerNodeId, 0) != DiskState.UpToDate;
        var result = Run(node, new Allowance(Role: false, Force: false, Attach: true, Connect: false), node.Attach);
        Judge("attach", node, result, result switch
        {
            StateChangeResult.Success => diskless && !notCurrent,
            StateChangeResult.DataNotCurrent => diskless && notCurrent,
            StateChangeResult.AlreadyAttached => !diskless || node.State.Volume(0).Disk != DiskState.Diskless,
            _ => false,
        });
        return result;
    }

    /// <summary>Runs a command with what it may change allowed, then observes the node before anything else happens.</summary>
    private StateChangeResult Run(ScaleNode node, Allowance allowance, Func<StateChangeResult> command)
    {
        cluster.Transitions.Allowed[node.Name] = allowance;
        try
        {
            var result = command();
            cluster.AfterEvent();
            return result;
        }
        finally
        {
            cluster.Transitions.Allowed.Remove(node.Name);
        }
    }

    private void Expect(string command, ScaleNode node, StateChangeResult expected, StateChangeResult result)
    {
        Count(node, command, result);
        if (result != expected)
        {
            throw new SimulationViolation("operator-rules", $"{command} on {node.Name}: DRBD's rules give {expected}, the node answered {result}");
        }
    }

    private void Judge(string command, ScaleNode node, StateChangeResult result, bool holds)
    {
        Count(node, command, result);
        if (!holds)
        {
            throw new SimulationViolation("operator-rules", $"{command} on {node.Name} answered {result}, which DRBD's rules do not allow in its state "
                + $"({node.Replica.Role}/{node.Volume.Disk}/{node.Replica.Links[node.PeerNodeId].State}/{node.Replica.ReplicationOf(node.PeerNodeId, 0)})");
        }
    }

    private void Count(ScaleNode node, string command, StateChangeResult result)
    {
        cluster.Note($"{node.Name}: operator {command}: {result}");
        string key = $"{command} {result}";
        Outcomes[key] = Outcomes.GetValueOrDefault(key) + 1;
    }
}

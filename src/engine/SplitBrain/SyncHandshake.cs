// DRBD 8.4's drbd_sync_handshake on top of drbd_uuid_compare: disk states (an Inconsistent side
// against a better one is always the target), split-brain detection and the after-sb policies by the
// number of Primaries, `--discard-my-data`, and rr-conflict for a Primary that would be SyncTarget.
// Both nodes run it with mirrored inputs and reach mirrored results: where the kernel refuses on one
// side only (an Inconsistent SyncSource, a Primary SyncTarget by rr-conflict) the other side here
// refuses too, so neither waits for a resync the peer will not start. Two refinements from DRBD 9:
// rr-conflict retry-connect/auto-discard, and a split brain that only history relates (rule 100)
// resolved by `--discard-my-data` is a full sync, since no bitmap covers both divergent generations.
using Redundancy.Block.Engine.Generations;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.SplitBrain;

public static class SyncHandshake
{
    /// <summary>
    /// The handshake from <paramref name="self"/>'s side. <paramref name="resolveConflicts"/>: this node
    /// holds RESOLVE_CONFLICTS (exactly one of the two does). <paramref name="policies"/>: local net options.
    /// </summary>
    public static HandshakeOutcome Decide(HandshakeSide self, HandshakeSide peer, bool resolveConflicts, SplitBrainPolicies policies,
        ReplicationProtocol protocol = ReplicationProtocol.C)
    {
        var run = new Run(self, peer, resolveConflicts, policies);
        if (!HasData(self.Disk) || !HasData(peer.Disk))
        {
            // DRBD runs no sync handshake without a local disk on both sides.
            run.Log.Add($"No sync handshake: {(HasData(self.Disk) ? "the peer" : "this node")} has no disk ({(HasData(self.Disk) ? peer.Disk : self.Disk)}).");
            return run.Finish();
        }

        run.Comparison = UuidComparison.Compare(self.ForComparison, peer.ForComparison, resolveConflicts, protocol);
        run.ComparedData = true;
        run.Hg = run.Comparison.Hg;
        run.Log.Add(run.Comparison.Describe());
        if (run.Comparison.Result == SyncResult.UnrelatedData)
        {
            run.Log.Add("Unrelated data, aborting!");
            return run.Disconnect(DisconnectReason.UnrelatedData);
        }

        ApplyDiskStates(run);
        ApplyMissedWrites(run);
        ApplyOneSidedBitmap(run);
        bool historyOnlySplitBrain = run.Hg == -100; // DRBD 9's need_full_sync_after_split_brain
        if (Math.Abs(run.Hg) == 100)
        {
            run.Handlers |= HandshakeHandlers.InitialSplitBrain;
            run.SplitBrain = SplitBrainResolution.Unresolved;
        }

        if (run.Hg == 100 || (run.Hg == -100 && policies.AlwaysAsbp))
        {
            ApplyAfterSbPolicy(run, historyOnlySplitBrain);
        }

        if (run.Hg == -100)
        {
            ApplyDiscardMyData(run, historyOnlySplitBrain);
        }

        if (run.Hg == -100)
        {
            run.Log.Add("Split-Brain detected but unresolved, dropping connection!");
            run.Handlers |= HandshakeHandlers.SplitBrain;
            return run.Disconnect(DisconnectReason.SplitBrain);
        }

        return CheckSourceAndRoles(run);
    }

    /// <summary>An Inconsistent disk facing a better one is target, full sync if the UUIDs wanted one.</summary>
    private static void ApplyDiskStates(Run run)
    {
        DiskState mine = run.Self.Disk;
        DiskState theirs = run.Peer.Disk;
        if ((mine == DiskState.Inconsistent && theirs > DiskState.Inconsistent) ||
            (theirs == DiskState.Inconsistent && mine > DiskState.Inconsistent))
        {
            bool full = run.Hg == -100 || Math.Abs(run.Hg) == 2;
            run.Hg = (mine > DiskState.Inconsistent ? 1 : -1) * (full ? 2 : 1);
            run.Log.Add($"Becoming sync {(run.Hg > 0 ? "source" : "target")} due to disk states.");
        }
    }

    /// <summary>
    /// Equal generations (rules 40–42: no resync, or a crashed Primary's), and exactly one side's disk
    /// missed writes that completed through the other, whose disk is consistent: the side that missed
    /// them is the bitmap sync target, its failed writes being in its bitmap. A Primary whose disk
    /// failed under its writes and came back still marked crashed-primary would otherwise be the source
    /// and overwrite the peer's only copy of what it acknowledged (our extension; DRBD resyncs from it).
    /// </summary>
    private static void ApplyMissedWrites(Run run)
    {
        if (run.Comparison.Rule is not (40 or 41 or 42) || run.Self.MissedWrites == run.Peer.MissedWrites)
        {
            return;
        }

        var (missing, other) = run.Self.MissedWrites ? (run.Self, run.Peer) : (run.Peer, run.Self);
        if (missing.Disk <= DiskState.Inconsistent || other.Disk < DiskState.Outdated)
        {
            return; // an Inconsistent side is the target already; an Inconsistent one cannot be the source
        }

        run.Hg = run.Self.MissedWrites ? -1 : 1;
        run.Log.Add($"Equal generations, but {(run.Self.MissedWrites ? "this node's" : "the peer's")} disk missed writes the other holds: becoming sync {(run.Hg > 0 ? "source" : "target")}.");
    }

    /// <summary>
    /// Equal generations and no resync by the UUIDs, but the UpToDate side holds out-of-sync bits for a peer that came
    /// back only Consistent (restarted) and holds none: the bits are writes that peer acknowledged but may never have
    /// made durable (its crash took them before the barrier ack; the bit holder had been demoted, so no new generation
    /// marked them). Resync them from the bit holder instead of dropping them, as DRBD's one-sided
    /// maybe_reconcile_equal_uuid_bitmap does (the side without bits is the exact subset, the other the source).
    /// </summary>
    private static void ApplyOneSidedBitmap(Run run)
    {
        if (run.Hg != 0 || run.Comparison.Result != SyncResult.NoSync)
        {
            return;
        }

        if (HoldsBitsForRestartedPeer(run.Self, run.Peer))
        {
            run.Hg = 1;
            run.Log.Add($"Equal generations, but {run.Self.OutOfSyncBits} bits for a peer that is only Consistent: becoming sync source for them.");
        }
        else if (HoldsBitsForRestartedPeer(run.Peer, run.Self))
        {
            run.Hg = -1;
            run.Log.Add($"Equal generations, but the peer holds {run.Peer.OutOfSyncBits} bits for this Consistent disk: becoming sync target for them.");
        }
    }

    private static bool HoldsBitsForRestartedPeer(HandshakeSide holder, HandshakeSide other) =>
        holder.Disk == DiskState.UpToDate && other.Disk == DiskState.Consistent && holder.OutOfSyncBits > 0 && other.OutOfSyncBits == 0;

    private static void ApplyAfterSbPolicy(Run run, bool historyOnlySplitBrain)
    {
        int primaries = (run.Self.Role == Role.Primary ? 1 : 0) + (run.Peer.Role == Role.Primary ? 1 : 0);
        var input = new RecoveryInput(
            SelfBitmapPrimary: (run.Self.Uuids.Bitmap & 1) != 0,
            PeerBitmapPrimary: (run.Peer.Uuids.Bitmap & 1) != 0,
            run.Self.OutOfSyncBits, run.Peer.OutOfSyncBits, run.ResolveConflicts,
            run.Self.NodeName, run.Peer.NodeName, run.Self.Role, run.Peer.Role, run.Self.CanDemote);
        RecoveryResult result = primaries switch
        {
            0 => SplitBrainRecovery.Recover0Pri(run.Policies.AfterSb0Pri, input),
            1 => SplitBrainRecovery.Recover1Pri(run.Policies, input),
            _ => SplitBrainRecovery.Recover2Pri(run.Policies, input),
        };
        if (result.Message is not null)
        {
            run.Log.Add(result.Message);
        }

        run.Hg = result.Hg;
        run.Demote = result.Demote;
        run.PeerDemotes = result.PeerDemotes;
        if (result.RunPriLostAfterSb)
        {
            run.Handlers |= HandshakeHandlers.PriLostAfterSb;
        }

        if (Math.Abs(run.Hg) < 100)
        {
            run.SplitBrain = SplitBrainResolution.AfterSbPolicy;
            run.Log.Add($"Split-Brain detected, {primaries} primaries, automatically solved. Sync from {(run.Hg < 0 ? "peer" : "this")} node");
            if (historyOnlySplitBrain)
            {
                run.Log.Add("Doing a full sync, since UUIDs where ambiguous.");
                run.Hg *= 2;
            }
        }
    }

    /// <summary>`connect --discard-my-data` on exactly one side resolves the split brain towards the other.</summary>
    private static void ApplyDiscardMyData(Run run, bool historyOnlySplitBrain)
    {
        if (run.Self.DiscardMyData == run.Peer.DiscardMyData)
        {
            return; // neither, or both (DRBD refuses that already in P_PROTOCOL: "incompatible discard-my-data settings")
        }

        run.Hg = (run.Self.DiscardMyData ? -1 : 1) * (historyOnlySplitBrain ? 2 : 1);
        run.SplitBrain = SplitBrainResolution.DiscardMyData;
        run.Log.Add($"Split-Brain detected, manually solved. {(historyOnlySplitBrain ? "Full sync" : "Sync")} from {(run.Hg < 0 ? "peer" : "this")} node");
    }

    /// <summary>The SyncSource must have consistent data; a Primary that would be SyncTarget obeys rr-conflict.</summary>
    private static HandshakeOutcome CheckSourceAndRoles(Run run)
    {
        if (run.Hg > 0 && run.Self.Disk <= DiskState.Inconsistent)
        {
            run.Log.Add("I shall become SyncSource, but I am inconsistent!");
            return run.Disconnect(DisconnectReason.InconsistentSyncSource);
        }

        if (run.Hg < 0 && run.Peer.Disk <= DiskState.Inconsistent)
        {
            run.Log.Add("Peer shall become SyncSource, but it is inconsistent!");
            return run.Disconnect(DisconnectReason.PeerInconsistentSyncSource);
        }

        Role selfRole = run.Demote ? Role.Secondary : run.Self.Role;
        Role peerRole = run.PeerDemotes ? Role.Secondary : run.Peer.Role;
        if (run.Hg < 0 && selfRole == Role.Primary && run.Self.Disk >= DiskState.Consistent && !run.Self.Negotiating)
        {
            return ApplyRrConflict(run, self: true) ?? run.Finish();
        }

        if (run.Hg > 0 && peerRole == Role.Primary && run.Peer.Disk >= DiskState.Consistent && !run.Peer.Negotiating)
        {
            return ApplyRrConflict(run, self: false) ?? run.Finish();
        }

        return run.Finish();
    }

    /// <summary>A disk state with data to compare (not Diskless, Attaching, Detaching or Failed).</summary>
    private static bool HasData(DiskState disk) => disk >= DiskState.Negotiating;

    private static HandshakeOutcome? ApplyRrConflict(Run run, bool self)
    {
        RrConflictPolicy policy = run.Policies.RrConflict;
        if (policy is RrConflictPolicy.Violently or RrConflictPolicy.AutoDiscard)
        {
            run.Log.Add(self
                ? "Becoming SyncTarget, violating the stable-data assumption"
                : "Peer becomes SyncTarget while Primary, violating the stable-data assumption");
            return null;
        }

        if (policy == RrConflictPolicy.CallPriLost && self)
        {
            run.Handlers |= HandshakeHandlers.PriLost;
        }

        run.RetryConnect = policy == RrConflictPolicy.RetryConnect;
        run.Log.Add(self ? "I shall become SyncTarget, but I am primary!" : "Peer shall become SyncTarget, but it is primary!");
        return run.Disconnect(self ? DisconnectReason.PrimarySyncTarget : DisconnectReason.PeerPrimarySyncTarget);
    }

    /// <summary>The state of one handshake as it moves through the steps above.</summary>
    private sealed class Run(HandshakeSide self, HandshakeSide peer, bool resolveConflicts, SplitBrainPolicies policies)
    {
        public HandshakeSide Self { get; } = self;
        public HandshakeSide Peer { get; } = peer;
        public bool ResolveConflicts { get; } = resolveConflicts;
        public SplitBrainPolicies Policies { get; } = policies;
        public SyncDecision Comparison { get; set; } = new(0, SyncResult.NoSync);
        public bool ComparedData { get; set; }
        public int Hg { get; set; }
        public HandshakeHandlers Handlers { get; set; }
        public bool Demote { get; set; }
        public bool PeerDemotes { get; set; }
        public bool RetryConnect { get; set; }
        public SplitBrainResolution SplitBrain { get; set; }
        public List<string> Log { get; } = [];

        public HandshakeOutcome Disconnect(DisconnectReason reason) =>
            new(HandshakeAction.Disconnect, false, reason, RetryConnect, Handlers, false, SplitBrain, Comparison, Hg, [.. Log]) { ComparedData = ComparedData };

        public HandshakeOutcome Finish()
        {
            var action = Hg > 0 ? HandshakeAction.SyncSource : Hg < 0 ? HandshakeAction.SyncTarget : HandshakeAction.NoSync;
            return new HandshakeOutcome(action, Math.Abs(Hg) >= 2, DisconnectReason.None, false, Handlers, Demote,
                SplitBrain, Comparison, Hg, [.. Log]) { ComparedData = ComparedData, PeerDemotes = PeerDemotes };
        }
    }
}

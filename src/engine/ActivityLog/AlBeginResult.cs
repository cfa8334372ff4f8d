// What ActivityLogTracker.BeginWrite decided for one application write: go ahead, write an AL
// transaction first (and the bitmap pages of the extents it evicts), or wait and retry.
using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.ActivityLog;

public enum AlBeginOutcome
{
    /// <summary>Every extent of the write is hot; references are held; submit the write now.</summary>
    Proceed,
    /// <summary>
    /// References are held, but the write may be submitted only after <see cref="AlBeginResult.Transaction"/>
    /// is durable and <see cref="ActivityLogTracker.CommitTransaction"/> was called. Before writing the
    /// transaction, the bitmap pages of <see cref="AlBeginResult.EvictedExtents"/> must be durable.
    /// </summary>
    NeedsTransaction,
    /// <summary>Nothing was taken; retry after the next CommitTransaction or EndWrite.</summary>
    MustWait,
}

public enum AlWaitReason
{
    None,
    /// <summary>Another AL transaction is being written (one at a time), or an extent of this write is in it.</summary>
    TransactionPending,
    /// <summary>Every slot holds an extent with writes in flight (DRBD's "starving" activity log).</summary>
    AllSlotsBusy,
}

public sealed record AlBeginResult
{
    public required AlBeginOutcome Outcome { get; init; }
    /// <summary>The transaction to persist (NeedsTransaction only).</summary>
    public ActivityLogTransaction? Transaction { get; init; }
    /// <summary>
    /// Extents that left the activity log. With NeedsTransaction their bitmap pages must be durable
    /// before the transaction is written; with Proceed (al-updates no) they may be written back lazily.
    /// </summary>
    public ImmutableArray<uint> EvictedExtents { get; init; } = [];
    public AlWaitReason WaitReason { get; init; }

    internal static readonly AlBeginResult ProceedNow = new() { Outcome = AlBeginOutcome.Proceed };

    internal static AlBeginResult Wait(AlWaitReason reason) => new() { Outcome = AlBeginOutcome.MustWait, WaitReason = reason };
}

// Values the resync planner hands out and reports: requests, what to do with a reply, whether an
// application write may go ahead, and progress as `status` shows it.
using System.Collections.Immutable;

namespace Redundancy.Block.Engine.Bitmap.Resync;

/// <summary>One resync request (DRBD's P_RS_DATA_REQUEST): bits [FirstBit, FirstBit+BitCount).</summary>
public sealed record ResyncRequest(long Id, long FirstBit, long BitCount)
{
    public long OffsetBytes => FirstBit * BitmapBytesPerBit;
    public long LengthBytes => BitCount * BitmapBytesPerBit;

    internal const long BitmapBytesPerBit = Metadata.MetadataLayout.BytesPerBit;
}

/// <summary>What to do with a reply that arrived.</summary>
public enum ReplyDisposition
{
    /// <summary>Write the data, then call CompleteReply.</summary>
    Write,
    /// <summary>
    /// An application write overtook the request: drop the data (it may be older than what the disk
    /// holds). The bits stay out of sync and the range is requested again.
    /// </summary>
    Discard,
}

/// <summary>Answer to an application write arriving during resync.</summary>
public sealed record ApplicationWriteAdmission
{
    /// <summary>True: the write may be submitted; call ApplicationWriteCompleted with <see cref="Token"/> when it is on disk.</summary>
    public required bool Admitted { get; init; }
    public long Token { get; init; }
    /// <summary>When not admitted: resync replies being written to this range; retry once they completed.</summary>
    public ImmutableArray<long> WaitForRequestIds { get; init; } = [];
}

/// <summary>Progress of a resync, in DRBD's terms.</summary>
public sealed record ResyncProgress
{
    /// <summary>Bits to resync at the start (grows if more bits became out of sync; DRBD's rs_total).</summary>
    public required long TotalBits { get; init; }
    public required long OutOfSyncBits { get; init; }
    public long OutOfSyncKib => OutOfSyncBits * (ResyncRequest.BitmapBytesPerBit / 1024);
    /// <summary>`done:` of drbdadm status, 0..100.</summary>
    public required double DonePercent { get; init; }
    public required long InFlightBytes { get; init; }
    public required int InFlightRequests { get; init; }
    /// <summary>Bits the peer could not provide (they stay out of sync; the resync ends with failures).</summary>
    public required long FailedBits { get; init; }
    /// <summary>Bits cleared per second over the recent marks, or null before two marks exist.</summary>
    public required long? RateKibPerSec { get; init; }
    /// <summary>Estimated time to finish at <see cref="RateKibPerSec"/>, or null when unknown.</summary>
    public required long? EstimatedRemainingMs { get; init; }
    public required bool IsPaused { get; init; }
    public required bool IsFinished { get; init; }
}

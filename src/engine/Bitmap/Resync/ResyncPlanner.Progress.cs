// Resync progress as drbdadm status shows it (done:, out-of-sync KiB) with a rate and an estimate
// from sync marks, after DRBD's rs_mark_left/rs_mark_time ring. Time comes from the caller.

namespace Redundancy.Block.Engine.Bitmap.Resync;

public sealed partial class ResyncPlanner
{
    /// <summary>Time between two sync marks.</summary>
    public const long MarkStepMs = 3000;
    /// <summary>Marks kept; the rate is measured from the oldest.</summary>
    public const int MarkCount = 8;

    private readonly Queue<(long TimeMs, long OutOfSyncBits)> _marks = new();

    /// <summary>Progress at <paramref name="nowMs"/> (caller's monotonic clock); also records a sync mark when due.</summary>
    public ResyncProgress Progress(long nowMs)
    {
        long outOfSync = _bitmap.SetBitCount;
        _totalBits = Math.Max(_totalBits, outOfSync);
        if (!IsPaused && (_marks.Count == 0 || nowMs - _marks.Last().TimeMs >= MarkStepMs))
        {
            _marks.Enqueue((nowMs, outOfSync));
            while (_marks.Count > MarkCount)
            {
                _marks.Dequeue();
            }
        }

        long? rateKibPerSec = null;
        long? remainingMs = null;
        if (_marks.Count > 0 && nowMs > _marks.Peek().TimeMs)
        {
            (long t0, long bits0) = _marks.Peek();
            long doneBits = Math.Max(0, bits0 - outOfSync);
            rateKibPerSec = doneBits * (ResyncRequest.BitmapBytesPerBit / 1024) * 1000 / (nowMs - t0);
            remainingMs = doneBits > 0 ? (long)((double)outOfSync * (nowMs - t0) / doneBits) : null;
        }

        return new ResyncProgress
        {
            TotalBits = _totalBits,
            OutOfSyncBits = outOfSync,
            DonePercent = _totalBits == 0 ? 100.0 : (_totalBits - outOfSync) * 100.0 / _totalBits,
            InFlightBytes = InFlightBytes,
            InFlightRequests = InFlightRequests,
            FailedBits = _failedBits.SetBitCount,
            RateKibPerSec = rateKibPerSec,
            EstimatedRemainingMs = remainingMs,
            IsPaused = IsPaused,
            IsFinished = IsFinished,
        };
    }
}

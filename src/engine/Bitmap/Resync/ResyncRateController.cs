// How much resync data the SyncTarget may request now, after DRBD's drbd_rs_number_requests and
// drbd_rs_controller. Call NextTurn about every StepMs (DRBD's RS_MAKE_REQS_INTV, 100 ms) with the
// time since the last call, the bytes that came back meanwhile and the bytes still in flight.
//  - c-plan-ahead 0: fixed resync-rate; fractions below 4 KiB carry over so the rate holds exactly.
//  - c-plan-ahead > 0: the dynamic controller. It wants c-fill-target bytes in flight (or, with
//    c-fill-target 0, what arrives in c-delay-target at the current throughput; resync-rate × plan
//    at the very start), spreads the correction over the c-plan-ahead steps of a plan fifo, and asks
//    for what came back plus this step's share of the correction, capped by c-max-rate over the
//    elapsed time (so the requested total never exceeds c-max-rate × elapsed time).
//  - c-min-rate: while application I/O is active and the recent resync rate is above c-min-rate,
//    nothing is requested this turn (DRBD's drbd_rs_c_min_rate_throttle).
// Results are whole 4 KiB blocks.

namespace Redundancy.Block.Engine.Bitmap.Resync;

public sealed class ResyncRateController
{
    /// <summary>The controller's time step (DRBD's RS_MAKE_REQS_INTV).</summary>
    public const long StepMs = 100;
    /// <summary>Longest interval one turn accounts for (as DRBD caps the duration at ten steps).</summary>
    public const long MaxTurnMs = 10 * StepMs;
    /// <summary>Window over which the recent resync rate (for c-min-rate) is measured.</summary>
    public const long RecentWindowMs = 3000;
    private const long Block = Metadata.MetadataLayout.BytesPerBit;

    private readonly ResyncRateSettings _settings;
    private readonly long[] _plan;
    private readonly Queue<(long Ms, long Bytes)> _recent = new();
    private int _head;
    private long _planTotal;
    private long _carryMilliBytes;
    private long _recentMs;
    private long _recentBytes;

    public ResyncRateController(ResyncRateSettings settings)
    {
        Invariant.Assert(settings.CPlanAheadMs >= 0 && settings.ResyncRateKibPerSec >= 0 && settings.CMaxRateKibPerSec >= 0
            && settings.CMinRateKibPerSec >= 0 && settings.CFillTargetBytes >= 0 && settings.CDelayTargetMs >= 0
            && settings.MaxInFlightBytes >= 0, "resync rate settings are not negative");
        _settings = settings;
        _plan = new long[settings.CPlanAheadMs == 0 ? 0 : Math.Max(1, settings.CPlanAheadMs / StepMs)];
    }

    public ResyncRateSettings Settings => _settings;
    /// <summary>True with c-plan-ahead &gt; 0.</summary>
    public bool IsDynamic => _plan.Length > 0;
    /// <summary>Resync throughput (bytes that came back) over the last <see cref="RecentWindowMs"/>.</summary>
    public long RecentRateBytesPerSec => _recentMs == 0 ? 0 : _recentBytes * 1000 / _recentMs;

    /// <summary>
    /// One turn: <paramref name="elapsedMs"/> since the previous turn, <paramref name="completedBytes"/>
    /// that came back since then, <paramref name="inFlightBytes"/> still requested and not back.
    /// Returns the bytes (a multiple of 4 KiB) that may be requested now.
    /// </summary>
    public long NextTurn(long elapsedMs, long completedBytes, long inFlightBytes, bool applicationIoActive = false)
    {
        Invariant.Assert(elapsedMs >= 0 && completedBytes >= 0 && inFlightBytes >= 0, "controller inputs are not negative");
        long turnMs = Math.Min(elapsedMs, MaxTurnMs);
        RecordCompleted(turnMs, completedBytes);
        long allowed = IsDynamic ? DynamicBytes(turnMs, completedBytes, inFlightBytes) : FixedBytes(turnMs);
        if (_settings.MaxInFlightBytes > 0)
        {
            allowed = Math.Min(allowed, Math.Max(0, _settings.MaxInFlightBytes - inFlightBytes));
        }

        if (applicationIoActive && _settings.CMinRateKibPerSec > 0 && RecentRateBytesPerSec > _settings.CMinRateKibPerSec * 1024)
        {
            allowed = 0;
        }

        long bytes = allowed / Block * Block;
        if (!IsDynamic)
        {
            _carryMilliBytes += Math.Min(allowed - bytes, Block - 1) * 1000;
        }

        return bytes;
    }

    /// <summary>Fixed resync-rate: rate × time, with the sub-byte and sub-block remainder carried.</summary>
    private long FixedBytes(long turnMs)
    {
        long milliBytes = _carryMilliBytes + (_settings.ResyncRateKibPerSec * 1024 * turnMs);
        _carryMilliBytes = milliBytes % 1000;
        return milliBytes / 1000;
    }

    private long DynamicBytes(long turnMs, long completedBytes, long inFlightBytes)
    {
        int steps = _plan.Length;
        long durationMs = Math.Max(1, turnMs);
        long want;
        if (inFlightBytes + completedBytes == 0)
        {
            want = _settings.ResyncRateKibPerSec * 1024 * StepMs / 1000 * steps; // start of resync
        }
        else if (_settings.CFillTargetBytes > 0)
        {
            want = _settings.CFillTargetBytes;
        }
        else
        {
            want = completedBytes * _settings.CDelayTargetMs / durationMs;
        }

        long correction = want - inFlightBytes - _planTotal;
        long perStep = correction / steps;
        for (int i = 0; i < steps; i++)
        {
            _plan[i] += perStep;
        }

        _planTotal += perStep * steps;
        long current = _plan[_head];
        _plan[_head] = 0;
        _head = (_head + 1) % steps;
        _planTotal -= current;

        long request = Math.Max(0, completedBytes + current);
        if (_settings.CMaxRateKibPerSec > 0)
        {
            request = Math.Min(request, _settings.CMaxRateKibPerSec * 1024 * turnMs / 1000);
        }

        return request;
    }

    private void RecordCompleted(long turnMs, long completedBytes)
    {
        _recent.Enqueue((turnMs, completedBytes));
        _recentMs += turnMs;
        _recentBytes += completedBytes;
        while (_recent.Count > 1 && _recentMs - _recent.Peek().Ms >= RecentWindowMs)
        {
            (long ms, long bytes) = _recent.Dequeue();
            _recentMs -= ms;
            _recentBytes -= bytes;
        }
    }
}

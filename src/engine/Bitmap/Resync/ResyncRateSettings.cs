// The disk-section options that drive the resync rate, in the units ResourceOptions resolves them to.
using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Engine.Bitmap.Resync;

public sealed record ResyncRateSettings
{
    /// <summary>resync-rate: the fixed rate when c-plan-ahead is 0, and the dynamic controller's start rate.</summary>
    public long ResyncRateKibPerSec { get; init; } = 250;
    /// <summary>c-plan-ahead; 0 selects the fixed resync-rate.</summary>
    public long CPlanAheadMs { get; init; } = 2000;
    /// <summary>c-fill-target: data to keep in flight; 0 means use c-delay-target.</summary>
    public long CFillTargetBytes { get; init; } = 100 * 512;
    /// <summary>c-delay-target: in-flight data worth this much time at the current throughput.</summary>
    public long CDelayTargetMs { get; init; } = 1000;
    /// <summary>c-max-rate: upper bound of the dynamic controller (0 = none).</summary>
    public long CMaxRateKibPerSec { get; init; } = 102400;
    /// <summary>c-min-rate: while application I/O is active, resync is throttled down to this rate (0 = never throttled).</summary>
    public long CMinRateKibPerSec { get; init; } = 250;
    /// <summary>Bound on data in flight (DRBD bounds it by max-buffers); 0 = none.</summary>
    public long MaxInFlightBytes { get; init; }

    public static ResyncRateSettings From(ResourceDefinition resource, VolumeDefinition? volume = null) => new()
    {
        ResyncRateKibPerSec = resource.ResyncRateKibPerSec(volume),
        CPlanAheadMs = resource.CPlanAheadMs(volume),
        CFillTargetBytes = resource.CFillTargetBytes(volume),
        CDelayTargetMs = resource.CDelayTargetMs(volume),
        CMaxRateKibPerSec = resource.CMaxRateKibPerSec(volume),
        CMinRateKibPerSec = resource.CMinRateKibPerSec(volume),
    };
}

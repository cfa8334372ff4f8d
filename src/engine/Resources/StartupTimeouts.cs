namespace Redundancy.Block.Engine.Resources;

/// <summary>
/// The startup section's three waits (seconds, 0 = forever) and drbdsetup's choose_timeout: a
/// degraded timeout longer than wfc-timeout (or 0 while wfc-timeout is not) is cut to wfc-timeout,
/// an outdated timeout longer than the degraded one to that, each with drbdsetup's warning.
/// </summary>
public sealed record StartupTimeouts(long WfcTimeoutSec, long DegrWfcTimeoutSec, long OutdatedWfcTimeoutSec)
{
    /// <summary>The timeout (seconds, 0 = forever) for <paramref name="type"/>, and the warnings about the values it had to cut.</summary>
    public (long Seconds, IReadOnlyList<string> Warnings) Choose(WaitTimeoutType type)
    {
        var warnings = new List<string>();
        long degraded = DegrWfcTimeoutSec;
        long outdated = OutdatedWfcTimeoutSec;
        if (WfcTimeoutSec > 0 && (WfcTimeoutSec < degraded || degraded == 0))
        {
            degraded = WfcTimeoutSec;
            if (type != WaitTimeoutType.Default)
            {
                warnings.Add($"degr-wfc-timeout has to be shorter than wfc-timeout\ndegr-wfc-timeout implicitly set to wfc-timeout ({degraded}s)");
            }
        }
        if (degraded > 0 && (degraded < outdated || outdated == 0))
        {
            outdated = degraded;
            if (type == WaitTimeoutType.PeerOutdated)
            {
                warnings.Add($"outdated-wfc-timeout has to be shorter than degr-wfc-timeout\noutdated-wfc-timeout implicitly set to degr-wfc-timeout ({degraded}s)");
            }
        }
        long seconds = type switch
        {
            WaitTimeoutType.Degraded => degraded,
            WaitTimeoutType.PeerOutdated => outdated,
            _ => WfcTimeoutSec,
        };
        return (seconds, warnings);
    }
}

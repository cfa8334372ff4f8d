// net { rr-conflict }: what a Primary does when the handshake would make it SyncTarget (its data
// would be overwritten under its users). DRBD 8.4: disconnect, call-pri-lost, violently; DRBD 9 adds
// retry-connect (disconnect, then try again) and auto-discard.
namespace Redundancy.Block.Engine.SplitBrain;

public enum RrConflictPolicy
{
    /// <summary>Refuse: "I shall become SyncTarget, but I am primary!", StandAlone.</summary>
    Disconnect,
    /// <summary>Run the `pri-lost` handler, then disconnect.</summary>
    CallPriLost,
    /// <summary>Become SyncTarget anyway, "violating the stable-data assumption".</summary>
    Violently,
    /// <summary>Like disconnect, but keep trying to connect instead of going StandAlone.</summary>
    RetryConnect,
    /// <summary>
    /// DRBD 9 reverses the direction when its crashed-primary rule made the Primary SyncTarget; under the
    /// 8.4 rules a current Primary already wins that rule (41), so this proceeds like violently.
    /// </summary>
    AutoDiscard,
}

public static class RrConflictPolicies
{
    public static bool TryParse(string text, out RrConflictPolicy policy)
    {
        RrConflictPolicy? parsed = text switch
        {
            "disconnect" => RrConflictPolicy.Disconnect,
            "call-pri-lost" => RrConflictPolicy.CallPriLost,
            "violently" => RrConflictPolicy.Violently,
            "retry-connect" => RrConflictPolicy.RetryConnect,
            "auto-discard" => RrConflictPolicy.AutoDiscard,
            _ => null,
        };
        policy = parsed.GetValueOrDefault();
        return parsed.HasValue;
    }

    public static RrConflictPolicy Parse(string text) =>
        TryParse(text, out var policy) ? policy : throw new FormatException($"unknown rr-conflict policy '{text}'");
}

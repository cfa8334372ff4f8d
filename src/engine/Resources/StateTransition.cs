namespace Redundancy.Block.Engine.Resources;

/// <summary>
/// One observed state change, e.g. `role( Secondary -> Primary )` on `r0` or `disk( Inconsistent -> UpToDate )`
/// on `r0/0`. The agent logs these in DRBD's kernel-log style.
/// </summary>
public readonly record struct StateTransition(string Subject, string Field, string From, string To)
{
    /// <summary>DRBD's log spelling: `r0/0: disk( Inconsistent -> UpToDate )`.</summary>
    public override string ToString() => $"{Subject}: {Field}( {From} -> {To} )";
}

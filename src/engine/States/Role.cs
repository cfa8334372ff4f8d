namespace Redundancy.Block.Engine.States;

/// <summary>A node's role for a resource, as DRBD names it.</summary>
public enum Role
{
    /// <summary>Not known (a peer we are not connected to).</summary>
    Unknown = 0,
    /// <summary>Serves application I/O.</summary>
    Primary = 1,
    /// <summary>Keeps a copy; refuses application I/O.</summary>
    Secondary = 2,
}

namespace Redundancy.Block.Engine.States;

/// <summary>State of the connection to one peer, as DRBD 9 names it.</summary>
public enum ConnectionState
{
    StandAlone = 0,
    Disconnecting = 1,
    Unconnected = 2,
    Timeout = 3,
    BrokenPipe = 4,
    NetworkFailure = 5,
    ProtocolError = 6,
    TearDown = 7,
    Connecting = 8,
    Connected = 9,
}

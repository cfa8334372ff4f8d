// Socket and buffer settings of peer connections (the replication link), shared by the listener,
// the dialer and every connection they create.
namespace Redundancy.Block.Agent.Peers;

/// <summary>Settings of peer connections; <see cref="Validate"/> refuses nonsense.</summary>
public sealed record PeerConnectionOptions
{
    /// <summary>
    /// SO_SNDBUF and SO_RCVBUF (DRBD's sndbuf-size/rcvbuf-size). 4 MiB keeps a 1 Gbit/s link with a few
    /// ms of round trip busy; the kernel caps it at net.core.wmem_max/rmem_max. 0 leaves the kernel default.
    /// </summary>
    public int SocketBufferBytes { get; init; } = 4 << 20;

    /// <summary>Queued, unsent bytes at which <see cref="PeerConnection.WaitForSendCapacityAsync"/> starts waiting.</summary>
    public int SendPauseThresholdBytes { get; init; } = 8 << 20;

    /// <summary>Queued bytes below which waiting senders continue.</summary>
    public int SendResumeThresholdBytes { get; init; } = 4 << 20;

    /// <summary>Smallest buffer one receive fills; larger means fewer syscalls for bulk data.</summary>
    public int ReceiveBufferBytes { get; init; } = 1 << 20;

    /// <summary>How long an accepted connection may take to send its Hello before it is closed.</summary>
    public TimeSpan HelloTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Frames an accepted connection may send before its Hello (Features comes first).</summary>
    public int MaxFramesBeforeHello { get; init; } = 4;

    /// <summary>Accepted connections allowed to be waiting for their Hello at once; more are closed at once.</summary>
    public int MaxConcurrentHandshakes { get; init; } = 16;

    /// <summary>How long a local close keeps sending what was queued before the socket is torn down.</summary>
    public TimeSpan CloseLinger { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(SocketBufferBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(SendResumeThresholdBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(SendPauseThresholdBytes, SendResumeThresholdBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(ReceiveBufferBytes, 4096);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HelloTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxFramesBeforeHello, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrentHandshakes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(CloseLinger, TimeSpan.Zero);
    }
}

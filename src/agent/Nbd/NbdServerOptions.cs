// Tunables of the NBD server: handshake timeout, payload cap, per-connection concurrency.
namespace Redundancy.Block.Agent.Nbd;

/// <summary>Limits and timeouts of <see cref="NbdServer"/>. Defaults follow the reference (§1, §4, §5).</summary>
public sealed record NbdServerOptions
{
    /// <summary>A client that has not entered transmission within this time is dropped.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest READ/WRITE payload; advertised as the maximum in NBD_INFO_BLOCK_SIZE.</summary>
    public int MaxPayloadBytes { get; init; } = 32 * 1024 * 1024;

    /// <summary>
    /// An oversized WRITE up to this length is read and discarded, then failed with EINVAL; a longer one is
    /// treated as a denial-of-service attempt and the connection is dropped.
    /// </summary>
    public long MaxDiscardedPayloadBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Requests one connection may have executing at once; further requests wait to be read.</summary>
    public int MaxInFlightRequestsPerConnection { get; init; } = 64;

    /// <summary>Connections still negotiating at once; more are closed on accept.</summary>
    public int MaxConcurrentHandshakes { get; init; } = 64;

    /// <summary>How long closing a session waits for executing requests before it closes anyway.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Checks the values; throws <see cref="ArgumentOutOfRangeException"/> on a bad one.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HandshakeTimeout, TimeSpan.Zero, nameof(HandshakeTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxPayloadBytes, 4096, nameof(MaxPayloadBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxDiscardedPayloadBytes, MaxPayloadBytes, nameof(MaxDiscardedPayloadBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxInFlightRequestsPerConnection, 1, nameof(MaxInFlightRequestsPerConnection));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(DrainTimeout, TimeSpan.Zero, nameof(DrainTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrentHandshakes, 1, nameof(MaxConcurrentHandshakes));
    }
}

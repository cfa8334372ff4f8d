namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// The I/O a <see cref="Replica"/> asks of its host. Every call starts something and returns at
/// once; the host reports completion later through the replica's methods (never from inside the
/// call, so the replica is not re-entered). The agent implements it with sockets and disks, the
/// simulator with its seeded network and disks.
/// </summary>
public interface IReplicaIo
{
    /// <summary>Queues a whole frame for the peer (dropped if it has no transport). The bytes are copied during the call.</summary>
    void Send(int peerNodeId, ReadOnlySpan<byte> frame);

    /// <summary>
    /// Queues a frame given in two pieces: its header and message, then its trailing payload (a
    /// block of data sent from where it is, not copied into a frame first). Both are copied during
    /// the call; otherwise as <see cref="Send(int, ReadOnlySpan{byte})"/>.
    /// </summary>
    void Send(int peerNodeId, ReadOnlySpan<byte> head, ReadOnlySpan<byte> payload);

    /// <summary>Closes the transport to the peer (after sending what is queued).</summary>
    void CloseTransport(int peerNodeId, string reason);

    /// <summary>Starts dialling the peer; the host reports the transport or nothing (the link retries).</summary>
    void Dial(int peerNodeId);

    /// <summary>Writes to the local data area; completion: <see cref="Replica.LocalDone"/> with <paramref name="token"/>.</summary>
    void WriteLocal(int volume, long offsetBytes, ReadOnlyMemory<byte> data, bool fua, long token);

    /// <summary>Reads from the local data area; completion: <see cref="Replica.LocalReadDone"/> with <paramref name="token"/> (the data is read during that call only).</summary>
    void ReadLocal(int volume, long offsetBytes, int lengthBytes, long token);

    /// <summary>Zeroes (or trims, reading back zeroes) a local range; completion as for writes.</summary>
    void ZeroLocal(int volume, long offsetBytes, long lengthBytes, bool trim, long token);

    /// <summary>
    /// Writes an activity-log transaction durably, after the bitmap pages of
    /// <paramref name="evictedExtents"/> (they leave the AL, so their bits must be on disk first);
    /// completion: <see cref="Replica.LocalDone"/> with <paramref name="token"/>.
    /// </summary>
    void WriteActivityLog(int volume, Metadata.ActivityLogTransaction transaction, IReadOnlyList<uint> evictedExtents, long token);

    /// <summary>Makes every completed local write durable; completion as for writes.</summary>
    void FlushLocal(long token);

    /// <summary>The client request <paramref name="clientToken"/> is done (its protocol guarantee holds, or it failed).</summary>
    void CompleteClient(long clientToken, bool succeeded);

    /// <summary>
    /// The client read <paramref name="clientToken"/> is done: <paramref name="data"/> holds exactly the
    /// bytes asked for when it succeeded (from the local disk or a peer's). The replica does not touch
    /// <paramref name="data"/> afterwards.
    /// </summary>
    void CompleteClientRead(long clientToken, bool succeeded, ReadOnlyMemory<byte> data);

    /// <summary>
    /// A volume's generation identifiers, metadata flags or disk state changed (read them from
    /// <see cref="Replica.Volume"/>): persist them before the replica acts on them.
    /// </summary>
    void PersistVolume(int volume);

    /// <summary>
    /// A peer runs `resize`: re-read the local disk's size; if it grew, move the metadata and call
    /// <see cref="Replica.SetCapacity"/>. Then (grown or not) report with <see cref="Replica.CapacityRefreshed"/>.
    /// </summary>
    void RefreshCapacity(int volume);

    /// <summary>
    /// Runs the `handlers { }` entry <paramref name="handler"/> (e.g. "split-brain",
    /// "before-resync-target") with DRBD's environment for the peer and volume (volume -1: the
    /// whole resource). False when none is configured. When true and <paramref name="token"/> is not
    /// 0, the host reports the exit code through <see cref="Replica.HandlerDone"/>.
    /// </summary>
    bool RunHandler(string handler, int peerNodeId, int volume, long token);

    /// <summary>
    /// The handshake decided this Primary lost a split brain (call-pri-lost-after-sb): demote now if
    /// the resource allows it (no clients holding it open). True when it is Secondary now.
    /// </summary>
    bool TryBecomeSecondary();

    /// <summary>
    /// The promotion request <paramref name="token"/> (<see cref="Replica.RequestPromotion"/>) has
    /// news: read it with <see cref="Replica.PromotionAnswer"/> once the call returned. May come
    /// more than once (a peer that connects meanwhile is asked too).
    /// </summary>
    void PromotionAnswered(long token);

    /// <summary>A line for the log, in DRBD's words.</summary>
    void Log(string line);
}

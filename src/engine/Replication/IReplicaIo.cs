namespace Redundancy.Block.Engine.Replication;

/// <summary>
/// The I/O a <see cref="Replica"/> asks of its host. Every call starts something and returns at
/// once; the host reports completion later through the replica's methods (never from inside the
/// call, so the replica is not re-entered). The agent implements it with sockets and disks, the
/// simulator with its seeded network and disks.
/// </summary>
public interface IReplicaIo
{
    /// <summary>Queues a whole frame for the peer (dropped if it has no transport).</summary>
    void Send(int peerNodeId, byte[] frame);

    /// <summary>Closes the transport to the peer (after sending what is queued).</summary>
    void CloseTransport(int peerNodeId, string reason);

    /// <summary>Starts dialling the peer; the host reports the transport or nothing (the link retries).</summary>
    void Dial(int peerNodeId);

    /// <summary>Writes to the local data area; completion: <see cref="Replica.LocalDone"/> with <paramref name="token"/>.</summary>
    void WriteLocal(int volume, long offsetBytes, ReadOnlyMemory<byte> data, bool fua, long token);

    /// <summary>Reads from the local data area; completion: <see cref="Replica.LocalReadDone"/> with <paramref name="token"/>.</summary>
    void ReadLocal(int volume, long offsetBytes, int lengthBytes, long token);

    /// <summary>Zeroes (or trims, reading back zeroes) a local range; completion as for writes.</summary>
    void ZeroLocal(int volume, long offsetBytes, long lengthBytes, bool trim, long token);

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

    /// <summary>A line for the log, in DRBD's words.</summary>
    void Log(string line);
}

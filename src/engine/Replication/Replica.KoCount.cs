namespace Redundancy.Block.Engine.Replication;

// ko-count, as DRBD: a peer that leaves a write unanswered for ko-count × timeout is considered
// dead and dropped ("Remote failed to finish a request within ko-count * timeout"), so a stuck
// Secondary cannot hold the Primary's writes forever; its blocks go into the bitmap. Request ages
// are measured in ticks (the replica's clock only moves on Tick), which is precise enough for
// limits of seconds.
public sealed partial class Replica
{
    private readonly Dictionary<ulong, long> requestSentAtMs = [];
    private long lastTickMs;

    /// <summary>Remembers when a request went to the peers (the last tick's time).</summary>
    private void RecordSent(ulong requestId) => requestSentAtMs[requestId] = lastTickMs;

    private void ForgetSent(ulong requestId) => requestSentAtMs.Remove(requestId);

    private void KoCountCheck(long nowMs)
    {
        lastTickMs = nowMs;
        foreach (int peer in connected.ToList())
        {
            var settings = links[peer].Settings;
            if (settings.KoCount <= 0 || writes.OldestUnacked(peer) is not { } oldest || !requestSentAtMs.TryGetValue(oldest, out long sentAtMs))
            {
                continue;
            }
            long limitMs = settings.KoCount * settings.TimeoutMs;
            if (nowMs - sentAtMs > limitMs)
            {
                io.Log($"{Subject(peer)}: Remote failed to finish a request within ko-count * timeout ({limitMs} ms)");
                links[peer].Fail("ko-count: the peer did not answer a write in time");
                Drain(peer);
            }
        }
    }
}

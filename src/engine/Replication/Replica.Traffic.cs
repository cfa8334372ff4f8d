namespace Redundancy.Block.Engine.Replication;

// DRBD's per-peer-device statistics "sent" and "received": the data (application writes and
// resync blocks, as the blocks' lengths, before any compression) this node sent to or took from a
// peer for a volume, counted since the resource came up, across reconnects.
public sealed partial class Replica
{
    private readonly Dictionary<(int Peer, int Volume), (long SentBytes, long ReceivedBytes)> traffic = [];

    /// <summary>Data bytes sent to and received from <paramref name="peerNodeId"/> for <paramref name="volume"/>.</summary>
    public (long SentBytes, long ReceivedBytes) TrafficOf(int peerNodeId, int volume) =>
        traffic.GetValueOrDefault((peerNodeId, volume));

    private void CountSent(int peer, int volume, long bytes)
    {
        var (sent, received) = traffic.GetValueOrDefault((peer, volume));
        traffic[(peer, volume)] = (sent + bytes, received);
    }

    private void CountReceived(int peer, int volume, long bytes)
    {
        var (sent, received) = traffic.GetValueOrDefault((peer, volume));
        traffic[(peer, volume)] = (sent, received + bytes);
    }
}

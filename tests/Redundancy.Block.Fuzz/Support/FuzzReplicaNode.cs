// One node of the replica fuzz target: the real engine's Replica with an in-memory disk whose
// operations complete when the pair is pumped, frames handed to a delegate, no clock, no handlers.
// Deterministic (a seeded random), so a crashing input replays exactly.
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Replication;

namespace Redundancy.Block.Fuzz.Support;

internal sealed class FuzzReplicaNode : IReplicaIo
{
    private readonly Queue<Action> _work = new();
    private readonly byte[] _disk;

    public FuzzReplicaNode(PeerLinkSettings settings, ReplicaVolume volume, int seed)
    {
        _disk = new byte[volume.UsableSizeBytes];
        Replica = new Replica([settings], [volume], this, new SeededRandom(seed));
    }

    public Replica Replica { get; }

    /// <summary>Where sent frames go (the other node, a recorder, or nowhere).</summary>
    public Action<byte[]>? Deliver { get; set; }

    public bool TransportOpen { get; set; } = true;

    public long CompletedClientRequests { get; private set; }

    /// <summary>Runs one pending disk completion; false when none is pending.</summary>
    public bool CompleteOne()
    {
        if (!_work.TryDequeue(out var action))
        {
            return false;
        }
        action();
        return true;
    }

    public void Send(int peerNodeId, ReadOnlySpan<byte> frame)
    {
        if (TransportOpen)
        {
            Deliver?.Invoke(frame.ToArray());
        }
    }

    public void Send(int peerNodeId, ReadOnlySpan<byte> head, ReadOnlySpan<byte> payload) => Send(peerNodeId, [.. head, .. payload]);

    public void CloseTransport(int peerNodeId, string reason) => TransportOpen = false;

    public void Dial(int peerNodeId)
    {
        // The pair connects its nodes itself, once.
    }

    public void WriteLocal(int volume, long offsetBytes, ReadOnlyMemory<byte> data, bool fua, long token)
    {
        bool inside = InDisk(offsetBytes, data.Length);
        if (inside)
        {
            data.Span.CopyTo(_disk.AsSpan((int)offsetBytes));
        }
        _work.Enqueue(() => Replica.LocalDone(token, inside));
    }

    public void ReadLocal(int volume, long offsetBytes, int lengthBytes, long token)
    {
        bool inside = InDisk(offsetBytes, lengthBytes);
        byte[] data = inside ? _disk.AsSpan((int)offsetBytes, lengthBytes).ToArray() : [];
        _work.Enqueue(() => Replica.LocalReadDone(token, inside, data));
    }

    public void ZeroLocal(int volume, long offsetBytes, long lengthBytes, bool trim, long token)
    {
        bool inside = InDisk(offsetBytes, lengthBytes);
        if (inside)
        {
            _disk.AsSpan((int)offsetBytes, (int)lengthBytes).Clear();
        }
        _work.Enqueue(() => Replica.LocalDone(token, inside));
    }

    public void WriteActivityLog(int volume, ActivityLogTransaction transaction, IReadOnlyList<uint> evictedExtents, long token) =>
        _work.Enqueue(() => Replica.LocalDone(token, true));

    public void FlushLocal(long token) => _work.Enqueue(() => Replica.LocalDone(token, true));

    public void CompleteClient(long clientToken, bool succeeded) => CompletedClientRequests++;

    public void CompleteClientRead(long clientToken, bool succeeded, ReadOnlyMemory<byte> data) => CompletedClientRequests++;

    public void PersistVolume(int volume)
    {
        // Nothing to persist: the target checks the engine's reaction to frames, not restarts.
    }

    public void RefreshCapacity(int volume) => _work.Enqueue(() => Replica.CapacityRefreshed(volume));

    public bool RunHandler(string handler, int peerNodeId, int volume, long token) => false;

    public bool TryBecomeSecondary() => true;

    public void PromotionAnswered(long token)
    {
        // No promotion is requested on the fuzzed pair after the handshake (alpha is Primary from the start).
    }

    public void Log(string line)
    {
        // Logs are not part of the outcome: they carry numbers that would make every input "new".
    }

    private bool InDisk(long offsetBytes, long lengthBytes) => offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= _disk.Length;

    /// <summary>xorshift64*: reproducible UUIDs and challenges.</summary>
    private sealed class SeededRandom(int seed) : IRandom
    {
        private ulong _state = (ulong)seed * 0x9E3779B97F4A7C15UL | 1;

        public ulong NextUInt64()
        {
            _state ^= _state >> 12;
            _state ^= _state << 25;
            _state ^= _state >> 27;
            return _state * 0x2545F4914F6CDD1DUL;
        }
    }
}

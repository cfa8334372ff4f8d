// Fuzz target "replica-frames": what a connected node's engine does with a peer's frames, not only
// whether they parse (peer-frames covers that). Two real replicas connect in memory (the scenario
// byte, the input's first, picks in sync / bitmap resync / full sync, the net options, and whether
// the Secondary or the Primary is fuzzed); then the other node falls silent and the rest of the
// input is the frame stream the fuzzed node receives from it, with its disk completions, its
// answers reaching the silent node, and time passing between frames. Oracle: no
// exception — a peer's bytes, however wrong, must end in a refused message or a dropped
// connection, never in a failed invariant (which would stop the agent).
using System.Buffers;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Fuzz.Support;

namespace Redundancy.Block.Fuzz.Targets;

public sealed class ReplicaFramesTarget : IFuzzTarget
{
    public string Name => "replica-frames";

    public IReadOnlyList<byte[]> Dictionary { get; } = new PeerFramesTarget().Dictionary;

    public IReadOnlyList<(string Name, byte[] Input)> Seeds() => ReplicaFrameSeeds.All();

    public byte[] Repair(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Length > 1)
        {
            byte[] frames = PeerFramesTarget.RepairHeaders(input[1..]);
            frames.CopyTo(input, 1);
        }
        return input;
    }

    public string Execute(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Length == 0)
        {
            return "empty";
        }
        var pair = new FuzzReplicaPair(input[0]);
        if (!pair.Connect())
        {
            throw new FuzzOracleException($"scenario {input[0]}: the pair did not connect");
        }
        var victim = FuzzReplicaPair.FuzzesPrimary(input[0]) ? pair.Alpha : pair.Beta;
        int peer = pair.PeerOf(victim);
        pair.Silence(victim);
        var buffer = new ReadOnlySequence<byte>(input, 1, input.Length - 1);
        int frames = 0;
        string? error = null;
        string? firstDrop = null;
        while (victim.TransportOpen && FrameReader.TryReadFrame(ref buffer, victim.Replica.Links[peer].MaxFramePayloadBytes, out var header, out var payload, out error))
        {
            victim.Replica.Receive(peer, header, payload, pair.NowMs);
            pair.Pump();
            firstDrop ??= victim.TransportOpen ? null : $"{header.Type}: {victim.Replica.Links[peer].LastError}";
            if (++frames % 8 == 0)
            {
                pair.Advance(100);
            }
        }
        if (victim.TransportOpen && !buffer.IsEmpty)
        {
            // The agent's receive loop closes the connection on a frame it cannot read.
            victim.TransportOpen = false;
            victim.Replica.TransportClosed(peer, error ?? "incomplete frame", pair.NowMs);
            pair.Pump();
            firstDrop ??= $"unreadable frame: {error}";
        }
        pair.Advance(2_000); // timers: ping-timeout, ko-count, resync and verify turns
        // The first reason the fuzzed node dropped the connection (its kind, numbers removed) and where it ended.
        var link = victim.Replica.Links[peer];
        return $"{Outcome.Normalize(firstDrop ?? "kept")}|{link.State}|{victim.Replica.ReplicationOf(peer, 0)}|{victim.Replica.Volume(0).Disk}";
    }

    public IReadOnlyList<(string Name, Func<string?> Check)> Checks() => [];
}

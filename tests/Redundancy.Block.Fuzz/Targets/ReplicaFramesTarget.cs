// Fuzz target "replica-frames": what a connected Secondary's engine does with a peer's frames, not
// only whether they parse (peer-frames covers that). Two real replicas connect in memory (the
// scenario byte, the input's first, picks in sync / bitmap resync / full sync and the net options);
// then alpha falls silent and the rest of the input is the frame stream beta receives from it, with
// beta's disk completions, its answers reaching alpha, and time passing between frames. Oracle: no
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
        pair.SilenceAlpha();
        var beta = pair.Beta;
        var buffer = new ReadOnlySequence<byte>(input, 1, input.Length - 1);
        int frames = 0;
        string? error = null;
        string? firstDrop = null;
        while (beta.TransportOpen && FrameReader.TryReadFrame(ref buffer, beta.Replica.Links[0].MaxFramePayloadBytes, out var header, out var payload, out error))
        {
            beta.Replica.Receive(0, header, payload, pair.NowMs);
            pair.Pump();
            firstDrop ??= beta.TransportOpen ? null : $"{header.Type}: {beta.Replica.Links[0].LastError}";
            if (++frames % 8 == 0)
            {
                pair.Advance(100);
            }
        }
        if (beta.TransportOpen && !buffer.IsEmpty)
        {
            // The agent's receive loop closes the connection on a frame it cannot read.
            beta.TransportOpen = false;
            beta.Replica.TransportClosed(0, error ?? "incomplete frame", pair.NowMs);
            pair.Pump();
            firstDrop ??= $"unreadable frame: {error}";
        }
        pair.Advance(2_000); // timers: ping-timeout, ko-count, resync and verify turns
        // The first reason beta dropped the connection (its kind, numbers removed) and where it ended.
        var link = beta.Replica.Links[0];
        return $"{Outcome.Normalize(firstDrop ?? "kept")}|{link.State}|{beta.Replica.ReplicationOf(0, 0)}|{beta.Replica.Volume(0).Disk}";
    }

    public IReadOnlyList<(string Name, Func<string?> Check)> Checks() => [];
}

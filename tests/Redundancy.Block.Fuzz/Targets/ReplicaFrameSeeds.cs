// Seeds for "replica-frames": what one node really sends the fuzzed one after the handshake in each
// scenario while the Primary (alpha) writes (plain, FUA, zeroing, a flush), the Secondary resyncs and
// an online verify runs — alpha's Data, resync replies and verify requests for beta; beta's acks,
// barrier acks, resync requests and verify replies for alpha — recorded from the same in-memory pair
// the target runs, up to a size the fuzzer takes.
using Redundancy.Block.Fuzz.Support;

namespace Redundancy.Block.Fuzz.Targets;

public static class ReplicaFrameSeeds
{
    private const int MaxSeedBytes = 192 * 1024;

    /// <summary>Scenario bytes: start (0 in sync, 1 bitmap resync, 2 full sync), protocol in bits 2-3, options in bits 4-6, bit 7 the Primary fuzzed.</summary>
    private static readonly (string Name, byte Scenario)[] Scenarios =
    [
        ("in-sync-c-verify", 0x08),
        ("in-sync-a-integrity-lz4", 0x60),
        ("bitmap-resync-c-csums", 0x19),
        ("full-sync-b", 0x06),
        ("primary-in-sync-c-verify", 0x88),
        ("primary-bitmap-resync-c-csums", 0x99),
        ("primary-full-sync-a-integrity", 0xA2),
    ];

    public static IReadOnlyList<(string Name, byte[] Input)> All() => [.. Scenarios.Select(s => (s.Name, Record(s.Scenario)))];

    private static byte[] Record(byte scenario)
    {
        var pair = new FuzzReplicaPair(scenario);
        if (!pair.Connect())
        {
            throw new InvalidOperationException($"scenario {scenario}: the pair did not connect");
        }
        var recorded = new List<byte[]>();
        pair.RecordFramesTo(FuzzReplicaPair.FuzzesPrimary(scenario) ? pair.Alpha : pair.Beta, recorded);
        var alpha = pair.Alpha.Replica;
        long token = 1;
        for (int i = 0; i < 8; i++)
        {
            alpha.ClientWrite(token++, 0, i * 200_704L, Pattern(4096, i), fua: i == 3);
        }
        alpha.ClientWrite(token++, 0, 1L << 20, Pattern(65536, 9), fua: false);
        alpha.ClientZero(token++, 0, 2L << 20, 8192, trim: true);
        alpha.ClientFlush(token);
        pair.Pump();
        pair.Advance(500);
        if ((scenario & 3) == 0)
        {
            alpha.StartVerify(1, 0);
            pair.Pump();
            pair.Advance(300);
        }
        var input = new List<byte> { scenario };
        foreach (byte[] frame in recorded)
        {
            if (input.Count + frame.Length > MaxSeedBytes)
            {
                break;
            }
            input.AddRange(frame);
        }
        return [.. input];
    }

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 31) + (seed * 7) + (i >> 9));
        }
        return bytes;
    }
}

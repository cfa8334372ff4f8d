// Fuzz target "nbd-session": the agent's real NBD server code (NbdSession: handshake, option
// handling, NbdInputBuffer, transmission, replies) driven by one input as the whole client byte
// stream (after the server greeting), delivered in pieces of varying size, then end of stream.
// Oracle: the session ends (no hang), logs no Error (SessionFailed/DeviceUnexpectedError: an
// exception escaped), touches the devices only inside the exports, releases every export it opened
// and allocates a bounded amount (an option or WRITE claiming gigabytes is refused without buffer).
using System.Buffers.Binary;
using Redundancy.Block.Agent.Nbd;
using Redundancy.Block.Engine.Nbd;
using Redundancy.Block.Fuzz.Support;

namespace Redundancy.Block.Fuzz.Targets;

public sealed class NbdSessionTarget : IFuzzTarget
{
    private static readonly NbdServerOptions Options = new()
    {
        MaxPayloadBytes = 64 * 1024,
        MaxDiscardedPayloadBytes = 256 * 1024,
        MaxInFlightRequestsPerConnection = 8,
        DrainTimeout = TimeSpan.FromSeconds(5),
    };

    private readonly FuzzCatalog _catalog = new();

    public string Name => "nbd-session";

    public IReadOnlyList<byte[]> Dictionary { get; } =
    [
        [0x25, 0x60, 0x95, 0x13], [0x49, 0x48, 0x41, 0x56, 0x45, 0x4F, 0x50, 0x54], "r0"u8.ToArray(), "ro"u8.ToArray(),
        "base:allocation"u8.ToArray(), NbdParsersTarget.Request(NbdCommandFlags.None, NbdCommand.Read, 0, 512),
        NbdParsersTarget.Request(NbdCommandFlags.Fua, NbdCommand.Write, 0, 16),
    ];

    public IReadOnlyList<(string Name, byte[] Input)> Seeds() => NbdSessionSeeds.All();

    public byte[] Repair(byte[] input) => input;

    public string Execute(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (logger, allocated) = RunSession(input);
        long bound = (2L << 20) + (16L * input.Length);
        if (allocated > bound)
        {
            // First-time code paths (static tables, logger templates) allocate once: only a repeat counts.
            (logger, allocated) = RunSession(input);
        }

        if (logger.Errors.Count > 0)
        {
            throw new FuzzOracleException($"the NBD server logged an error: {logger.Errors[0]}");
        }

        if (_catalog.OpenExports != 0)
        {
            throw new FuzzOracleException($"{_catalog.OpenExports} export(s) still open after the session ended");
        }

        if (allocated > bound)
        {
            throw new FuzzOracleException($"a session on {input.Length} input bytes allocated {allocated} bytes (bound {bound})");
        }

        IReadOnlyList<string> messages = logger.Messages;
        return string.Join('|', messages.Skip(Math.Max(0, messages.Count - 2)).Select(Outcome.Normalize));
    }

    /// <summary>Runs one session to its end; returns its log and the bytes allocated meanwhile (process-wide).</summary>
    private (RecordingLogger Logger, long Allocated) RunSession(byte[] input)
    {
        var logger = new RecordingLogger();
        using var stream = new ScriptedClientStream(input);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var session = new NbdSession(stream, "fuzz", _catalog, Options, logger);
        session.RunAsync().GetAwaiter().GetResult();
        return (logger, GC.GetTotalAllocatedBytes(precise: true) - before);
    }

    public IReadOnlyList<(string Name, Func<string?> Check)> Checks() =>
    [
        ("WRITE claiming 2 GiB drops the client without allocating it",
            () => BoundedDrop([.. NbdSessionSeeds.Go("r0"), .. NbdParsersTarget.Request(NbdCommandFlags.None, NbdCommand.Write, 0, 0x80000000)], "exceeds")),
        ("option claiming 4 GiB of data drops the client without allocating it",
            () => BoundedDrop([.. NbdSessionSeeds.ClientFlags(), .. NbdParsersTarget.OptionHeader(NbdOption.Go, 0xFFFFFFFF)], "bytes of data")),
        ("option claiming 16 MiB is skipped without allocating it",
            () => BoundedDrop([.. NbdSessionSeeds.ClientFlags(), .. NbdParsersTarget.OptionHeader(NbdOption.Info, 16 << 20), .. new byte[100]], "")),
        ("WRITE over the payload limit is discarded without allocating it",
            () => BoundedDrop([.. NbdSessionSeeds.Go("r0"), .. NbdParsersTarget.Request(NbdCommandFlags.None, NbdCommand.Write, 0, 200 * 1024), .. new byte[1000]], "")),
    ];

    private string? BoundedDrop(byte[] input, string reason)
    {
        RunSession(input); // warm up: first-time code paths allocate
        var (logger, allocated) = RunSession(input);

        string log = string.Join(" / ", logger.Messages);
        return logger.Errors.Count > 0 ? $"logged an error: {logger.Errors[0]}"
            : allocated > 1L << 20 ? $"allocated {allocated} bytes ({log})"
            : !log.Contains(reason, StringComparison.Ordinal) ? $"expected a drop mentioning '{reason}', log: {log}"
            : null;
    }

    /// <summary>Client-side encoders for the seeds.</summary>
    public static byte[] U32(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }
}

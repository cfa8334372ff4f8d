// Fuzz target "nbd-parsers": the engine's pure NBD parsers on one input each: option data
// (NbdOptionParser: strings, NBD_OPT_INFO/GO, NBD_OPT_LIST/SET_META_CONTEXT), the option header and
// the transmission request header with NbdRequestValidator under several export limits. Oracle: no
// exception; what is accepted re-encodes to exactly the input; a request the validator lets run stays
// inside the export, within the payload limit and uses only flags its command allows.
using System.Buffers.Binary;
using System.Text;
using Redundancy.Block.Engine.Nbd;
using Redundancy.Block.Fuzz.Support;

namespace Redundancy.Block.Fuzz.Targets;

public sealed class NbdParsersTarget : IFuzzTarget
{
    private static readonly NbdExportLimits[] Limits =
    [
        new(1 << 20, IsReadOnly: false, StructuredReplies: false, CanFastZero: false, HasMetaContext: false, MaxPayloadBytes: 32 << 20),
        new(1 << 20, IsReadOnly: true, StructuredReplies: true, CanFastZero: true, HasMetaContext: true, MaxPayloadBytes: 65536),
        new(ulong.MaxValue - 4095, IsReadOnly: false, StructuredReplies: true, CanFastZero: false, HasMetaContext: true, MaxPayloadBytes: 32 << 20),
        new(0, IsReadOnly: false, StructuredReplies: true, CanFastZero: true, HasMetaContext: false, MaxPayloadBytes: 4096),
    ];

    public string Name => "nbd-parsers";

    public IReadOnlyList<byte[]> Dictionary { get; } =
    [
        Encoding.UTF8.GetBytes(NbdLimits.BaseAllocation), "base:"u8.ToArray(), BitConverter.GetBytes(NbdMagic.Request), [0x25, 0x60, 0x95, 0x13],
        [0x49, 0x48, 0x41, 0x56, 0x45, 0x4F, 0x50, 0x54],
    ];

    public IReadOnlyList<(string Name, byte[] Input)> Seeds() =>
    [
        ("info-request", InfoRequest("r0", 0, 1, 2, 3)),
        ("info-request-empty", InfoRequest("")),
        ("meta-context", MetaContextRequest("r0", NbdLimits.BaseAllocation, "base:")),
        ("meta-context-none", MetaContextRequest("r0")),
        ("option-header", OptionHeader(NbdOption.Go, 12)),
        ("request-read", Request(NbdCommandFlags.DontFragment, NbdCommand.Read, 4096, 4096)),
        ("request-write-fua", Request(NbdCommandFlags.Fua, NbdCommand.Write, 0, 65536)),
        ("request-zeroes", Request(NbdCommandFlags.NoHole | NbdCommandFlags.FastZero, NbdCommand.WriteZeroes, 8192, 1 << 19)),
        ("request-block-status", Request(NbdCommandFlags.ReqOne, NbdCommand.BlockStatus, 0, 1 << 20)),
        ("request-flush", Request(NbdCommandFlags.None, NbdCommand.Flush, 0, 0)),
    ];

    public byte[] Repair(byte[] input) => input;

    public string Execute(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var outcome = new StringBuilder();
        outcome.Append(NbdOptionParser.TryDecodeString(input, out string text, out string error) ? "string" : Outcome.Normalize(error));
        if (error.Length == 0 && (Encoding.UTF8.GetByteCount(text) != input.Length || input.Length > NbdLimits.MaxStringBytes))
        {
            throw new FuzzOracleException($"TryDecodeString accepted {input.Length} bytes as a {Encoding.UTF8.GetByteCount(text)}-byte string");
        }

        outcome.Append('|').Append(Info(input)).Append('|').Append(MetaContext(input)).Append('|').Append(Headers(input));
        return outcome.ToString();
    }

    private static string Info(byte[] input)
    {
        if (!NbdOptionParser.TryParseInfoRequest(input, out NbdInfoRequest? request, out string error))
        {
            return error.Length > 0 && request is null ? Outcome.Normalize(error) : throw new FuzzOracleException("info request refused without a reason");
        }

        byte[] again = InfoRequest(request!.ExportName, [.. request.InfoTypes]);
        return again.AsSpan().SequenceEqual(input) ? "info" : throw new FuzzOracleException("an accepted NBD_OPT_INFO request re-encodes differently");
    }

    private static string MetaContext(byte[] input)
    {
        if (!NbdOptionParser.TryParseMetaContextRequest(input, out NbdMetaContextRequest? request, out string error))
        {
            return error.Length > 0 && request is null ? Outcome.Normalize(error) : throw new FuzzOracleException("meta context request refused without a reason");
        }

        byte[] again = MetaContextRequest(request!.ExportName, [.. request.Queries]);
        return again.AsSpan().SequenceEqual(input) ? "meta" : throw new FuzzOracleException("an accepted NBD_OPT_*_META_CONTEXT request re-encodes differently");
    }

    private static string Headers(byte[] input)
    {
        var outcome = new StringBuilder();
        if (NbdOptionHeader.TryRead(input, out NbdOptionHeader option))
        {
            var again = new byte[NbdOptionHeader.SizeBytes];
            option.Write(again);
            outcome.Append(again.AsSpan().SequenceEqual(input.AsSpan(0, NbdOptionHeader.SizeBytes)) ? "option" : throw new FuzzOracleException("option header re-encodes differently"));
        }

        if (!NbdRequestHeader.TryRead(input, out NbdRequestHeader request))
        {
            return outcome.ToString();
        }

        var bytes = new byte[NbdRequestHeader.SizeBytes];
        request.Write(bytes);
        if (!bytes.AsSpan().SequenceEqual(input.AsSpan(0, NbdRequestHeader.SizeBytes)))
        {
            throw new FuzzOracleException("request header re-encodes differently");
        }

        foreach (NbdExportLimits limits in Limits)
        {
            NbdError verdict = NbdRequestValidator.Validate(request, limits);
            CheckVerdict(request, limits, verdict);
            outcome.Append(':').Append(verdict);
        }

        return outcome.ToString();
    }

    /// <summary>What a request the validator lets run must satisfy.</summary>
    private static void CheckVerdict(in NbdRequestHeader request, in NbdExportLimits limits, NbdError verdict)
    {
        if (verdict != NbdError.None)
        {
            return;
        }

        NbdCommand command = request.Command;
        bool ranged = command is not (NbdCommand.Flush or NbdCommand.Disconnect);
        ulong end = request.OffsetBytes + request.LengthBytes;
        string? problem = command > NbdCommand.BlockStatus ? "unknown command"
            : (request.Flags & ~NbdCommandFlags.Known) != 0 ? "unknown flags"
            : ranged && (end < request.OffsetBytes || end > limits.SizeBytes) ? "range outside the export"
            : command is NbdCommand.Read or NbdCommand.Write && request.LengthBytes > limits.MaxPayloadBytes ? "payload over the limit"
            : limits.IsReadOnly && command is NbdCommand.Write or NbdCommand.Trim or NbdCommand.WriteZeroes ? "write to a read-only export"
            : command == NbdCommand.BlockStatus && !(limits.StructuredReplies && limits.HasMetaContext) ? "BLOCK_STATUS without a meta context"
            : (request.Flags & NbdCommandFlags.DontFragment) != 0 && command != NbdCommand.Read ? "DF on a non-READ"
            : null;
        if (problem is not null)
        {
            throw new FuzzOracleException($"validator let {command} {request.Flags} {request.OffsetBytes}+{request.LengthBytes} run: {problem}");
        }
    }

    public IReadOnlyList<(string Name, Func<string?> Check)> Checks() => [];

    public static byte[] InfoRequest(string name, params ushort[] types)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        var data = new byte[4 + nameBytes.Length + 2 + (2 * types.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)nameBytes.Length);
        nameBytes.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + nameBytes.Length), (ushort)types.Length);
        for (int i = 0; i < types.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(6 + nameBytes.Length + (2 * i)), types[i]);
        }

        return data;
    }

    public static byte[] MetaContextRequest(string name, params string[] queries)
    {
        var data = new List<byte>();
        void AddString(string value)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(value);
            var length = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(length, (uint)bytes.Length);
            data.AddRange(length);
            data.AddRange(bytes);
        }

        AddString(name);
        var count = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(count, (uint)queries.Length);
        data.AddRange(count);
        foreach (string query in queries)
        {
            AddString(query);
        }

        return [.. data];
    }

    public static byte[] OptionHeader(NbdOption option, uint length)
    {
        var bytes = new byte[NbdOptionHeader.SizeBytes];
        new NbdOptionHeader((uint)option, length).Write(bytes);
        return bytes;
    }

    public static byte[] Request(NbdCommandFlags flags, NbdCommand command, ulong offset, uint length, ulong cookie = 1)
    {
        var bytes = new byte[NbdRequestHeader.SizeBytes];
        new NbdRequestHeader(flags, command, cookie, offset, length).Write(bytes);
        return bytes;
    }
}

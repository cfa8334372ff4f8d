// Client conversations for the nbd-session seed corpus: every option the server knows (LIST, INFO,
// GO, EXPORT_NAME, STRUCTURED_REPLY, LIST/SET_META_CONTEXT, ABORT, STARTTLS, an unknown one) and
// every transmission command with plain and structured replies, on the writable and read-only exports.
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Fuzz.Targets;

public static class NbdSessionSeeds
{
    public static byte[] ClientFlags() => NbdSessionTarget.U32((uint)(NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes));

    public static byte[] Option(NbdOption option, byte[] data) => [.. NbdParsersTarget.OptionHeader(option, (uint)data.Length), .. data];

    /// <summary>Client flags and NBD_OPT_GO for <paramref name="export"/>.</summary>
    public static byte[] Go(string export) => [.. ClientFlags(), .. Option(NbdOption.Go, NbdParsersTarget.InfoRequest(export, 1, 3))];

    private static byte[] Structured(string export) =>
    [
        .. ClientFlags(),
        .. Option(NbdOption.StructuredReply, []),
        .. Option(NbdOption.SetMetaContext, NbdParsersTarget.MetaContextRequest(export, "base:allocation")),
        .. Option(NbdOption.Go, NbdParsersTarget.InfoRequest(export, 0, 1, 2, 3)),
    ];

    private static byte[] Commands(bool structured)
    {
        var bytes = new List<byte>();
        bytes.AddRange(NbdParsersTarget.Request(structured ? NbdCommandFlags.DontFragment : NbdCommandFlags.None, NbdCommand.Read, 0, 4096, 1));
        bytes.AddRange(NbdParsersTarget.Request(NbdCommandFlags.Fua, NbdCommand.Write, 4096, 512, 2));
        bytes.AddRange(Enumerable.Range(0, 512).Select(i => (byte)i));
        bytes.AddRange(NbdParsersTarget.Request(NbdCommandFlags.None, NbdCommand.Flush, 0, 0, 3));
        bytes.AddRange(NbdParsersTarget.Request(NbdCommandFlags.None, NbdCommand.Trim, 8192, 4096, 4));
        bytes.AddRange(NbdParsersTarget.Request(NbdCommandFlags.NoHole, NbdCommand.WriteZeroes, 12288, 8192, 5));
        bytes.AddRange(NbdParsersTarget.Request(NbdCommandFlags.None, NbdCommand.Cache, 0, 65536, 6));
        if (structured)
        {
            bytes.AddRange(NbdParsersTarget.Request(NbdCommandFlags.ReqOne, NbdCommand.BlockStatus, 0, 65536, 7));
            bytes.AddRange(NbdParsersTarget.Request(NbdCommandFlags.None, NbdCommand.BlockStatus, 4096, 1 << 19, 8));
        }

        bytes.AddRange(NbdParsersTarget.Request(NbdCommandFlags.None, NbdCommand.Read, (1 << 20) - 512, 1024, 9));
        bytes.AddRange(NbdParsersTarget.Request(NbdCommandFlags.None, NbdCommand.Disconnect, 0, 0, 10));
        return [.. bytes];
    }

    public static IReadOnlyList<(string Name, byte[] Input)> All() =>
    [
        ("go-simple", [.. Go("r0"), .. Commands(structured: false)]),
        ("go-structured", [.. Structured("r0"), .. Commands(structured: true)]),
        ("read-only", [.. Go("ro"), .. Commands(structured: false)]),
        ("export-name", [.. ClientFlags(), .. Option(NbdOption.ExportName, "r0"u8.ToArray()), .. Commands(structured: false)]),
        ("options", [
            .. ClientFlags(),
            .. Option(NbdOption.List, []),
            .. Option(NbdOption.Info, NbdParsersTarget.InfoRequest("r1", 1)),
            .. Option(NbdOption.Info, NbdParsersTarget.InfoRequest("nope")),
            .. Option(NbdOption.ListMetaContext, NbdParsersTarget.MetaContextRequest("r0")),
            .. Option(NbdOption.ListMetaContext, NbdParsersTarget.MetaContextRequest("r0", "base:")),
            .. Option(NbdOption.StartTls, []),
            .. Option((NbdOption)0x1234, new byte[20]),
            .. Option(NbdOption.Abort, []),
        ]),
        ("refused-export-name", [.. ClientFlags(), .. Option(NbdOption.ExportName, "r1"u8.ToArray())]),
    ];
}

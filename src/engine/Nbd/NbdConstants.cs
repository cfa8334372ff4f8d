// The numbers of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md): magics, option and reply
// codes, flags, commands and errors. Kept in one place so the wire code never uses a bare literal.
namespace Redundancy.Block.Engine.Nbd;

/// <summary>Magic numbers that frame NBD messages.</summary>
public static class NbdMagic
{
    /// <summary>"NBDMAGIC": first 8 bytes the server sends.</summary>
    public const ulong InitPassword = 0x4e42444d41474943UL;

    /// <summary>"IHAVEOPT": follows NBDMAGIC in newstyle, and starts every client option.</summary>
    public const ulong IHaveOpt = 0x49484156454F5054UL;

    /// <summary>Starts every option reply.</summary>
    public const ulong OptionReply = 0x3e889045565a9UL;

    /// <summary>Starts every transmission request.</summary>
    public const uint Request = 0x25609513U;

    /// <summary>Starts a simple reply.</summary>
    public const uint SimpleReply = 0x67446698U;

    /// <summary>Starts a structured reply chunk.</summary>
    public const uint StructuredReply = 0x668e33efU;
}

/// <summary>Flags the server sends after the magics (16 bits).</summary>
[Flags]
public enum NbdHandshakeFlags : ushort
{
    None = 0,
    FixedNewstyle = 1 << 0,
    NoZeroes = 1 << 1,
}

/// <summary>Flags the client answers with (32 bits). Any other bit set means: drop the client.</summary>
[Flags]
public enum NbdClientFlags : uint
{
    None = 0,
    FixedNewstyle = 1 << 0,
    NoZeroes = 1 << 1,
    Known = FixedNewstyle | NoZeroes,
}

/// <summary>Option codes of the negotiation phase.</summary>
public enum NbdOption : uint
{
    ExportName = 1,
    Abort = 2,
    List = 3,
    PeekExport = 4,
    StartTls = 5,
    Info = 6,
    Go = 7,
    StructuredReply = 8,
    ListMetaContext = 9,
    SetMetaContext = 10,
    ExtendedHeaders = 11,
}

/// <summary>Option reply types. Errors have bit 31 set.</summary>
public enum NbdOptionReplyType : uint
{
    Ack = 1,
    Server = 2,
    Info = 3,
    MetaContext = 4,
    ErrUnsup = 0x80000001U,
    ErrPolicy = 0x80000002U,
    ErrInvalid = 0x80000003U,
    ErrPlatform = 0x80000004U,
    ErrTlsReqd = 0x80000005U,
    ErrUnknown = 0x80000006U,
    ErrShutdown = 0x80000007U,
    ErrBlockSizeReqd = 0x80000008U,
    ErrTooBig = 0x80000009U,
}

/// <summary>Information types requested by NBD_OPT_INFO/GO and sent in NBD_REP_INFO.</summary>
public enum NbdInfoType : ushort
{
    Export = 0,
    Name = 1,
    Description = 2,
    BlockSize = 3,
}

/// <summary>Transmission flags (16 bits) sent with the export size.</summary>
[Flags]
public enum NbdTransmissionFlags : ushort
{
    None = 0,
    HasFlags = 1 << 0,
    ReadOnly = 1 << 1,
    SendFlush = 1 << 2,
    SendFua = 1 << 3,
    Rotational = 1 << 4,
    SendTrim = 1 << 5,
    SendWriteZeroes = 1 << 6,
    SendDf = 1 << 7,
    CanMultiConn = 1 << 8,
    SendResize = 1 << 9,
    SendCache = 1 << 10,
    SendFastZero = 1 << 11,
}

/// <summary>Transmission commands (the request "type" field).</summary>
public enum NbdCommand : ushort
{
    Read = 0,
    Write = 1,
    Disconnect = 2,
    Flush = 3,
    Trim = 4,
    Cache = 5,
    WriteZeroes = 6,
    BlockStatus = 7,
}

/// <summary>Command flags (the request "flags" field).</summary>
[Flags]
public enum NbdCommandFlags : ushort
{
    None = 0,
    /// <summary>Force unit access: the reply means this request's data is durable.</summary>
    Fua = 1 << 0,
    /// <summary>WRITE_ZEROES must leave the blocks allocated.</summary>
    NoHole = 1 << 1,
    /// <summary>READ must come back as one data chunk.</summary>
    DontFragment = 1 << 2,
    /// <summary>BLOCK_STATUS wants exactly one extent.</summary>
    ReqOne = 1 << 3,
    /// <summary>WRITE_ZEROES must fail with ENOTSUP rather than be slow.</summary>
    FastZero = 1 << 4,
    Known = Fua | NoHole | DontFragment | ReqOne | FastZero,
}

/// <summary>Structured reply chunk types.</summary>
public enum NbdChunkType : ushort
{
    None = 0,
    OffsetData = 1,
    OffsetHole = 2,
    BlockStatus = 5,
    Error = 0x8001,
    ErrorOffset = 0x8002,
}

/// <summary>Structured reply chunk flags.</summary>
[Flags]
public enum NbdChunkFlags : ushort
{
    None = 0,
    /// <summary>Last chunk of this reply.</summary>
    Done = 1 << 0,
}

/// <summary>Error values carried in replies (Linux errno numbers, as the spec fixes them).</summary>
public enum NbdError : uint
{
    None = 0,
    Perm = 1,
    Io = 5,
    NoMem = 12,
    Invalid = 22,
    NoSpace = 28,
    Overflow = 75,
    NotSupported = 95,
    Shutdown = 108,
}

/// <summary>Fixed sizes and limits of the protocol.</summary>
public static class NbdLimits
{
    /// <summary>Longest export name or metadata context query the spec allows, in bytes.</summary>
    public const int MaxStringBytes = 4096;

    /// <summary>Zero padding after an NBD_OPT_EXPORT_NAME reply when NO_ZEROES was not negotiated.</summary>
    public const int ExportNamePaddingBytes = 124;

    /// <summary>The only metadata context we implement.</summary>
    public const string BaseAllocation = "base:allocation";
}

// Encoders for the negotiation phase: the server greeting, option replies (ACK, SERVER, INFO,
// META_CONTEXT, errors) and the old NBD_OPT_EXPORT_NAME answer. Handshake traffic is small and rare,
// so these return fresh arrays.
using System.Buffers.Binary;
using System.Text;

namespace Redundancy.Block.Engine.Nbd;

/// <summary>Builds the server's negotiation-phase messages.</summary>
public static class NbdHandshakeWriter
{
    /// <summary>Greeting: u64 NBDMAGIC, u64 IHAVEOPT, u16 handshake flags.</summary>
    public const int GreetingSizeBytes = 18;

    /// <summary>Option reply header: u64 magic, u32 option, u32 reply type, u32 length.</summary>
    public const int OptionReplyHeaderSizeBytes = 20;

    /// <summary>NBD_INFO_EXPORT payload: u16 type, u64 size, u16 transmission flags.</summary>
    public const int InfoExportSizeBytes = 12;

    /// <summary>NBD_INFO_BLOCK_SIZE payload: u16 type, u32 minimum, u32 preferred, u32 maximum payload.</summary>
    public const int InfoBlockSizeSizeBytes = 14;

    public static byte[] Greeting(NbdHandshakeFlags flags)
    {
        var message = new byte[GreetingSizeBytes];
        BinaryPrimitives.WriteUInt64BigEndian(message, NbdMagic.InitPassword);      // u64 "NBDMAGIC"
        BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(8), NbdMagic.IHaveOpt); // u64 "IHAVEOPT"
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(16), (ushort)flags);    // u16 handshake flags
        return message;
    }

    /// <summary>An option reply with <paramref name="data"/> as its payload.</summary>
    public static byte[] OptionReply(uint option, NbdOptionReplyType type, ReadOnlySpan<byte> data)
    {
        var message = new byte[OptionReplyHeaderSizeBytes + data.Length];
        Span<byte> span = message;
        BinaryPrimitives.WriteUInt64BigEndian(span, NbdMagic.OptionReply);     // u64 reply magic
        BinaryPrimitives.WriteUInt32BigEndian(span[8..], option);              // u32 option being answered
        BinaryPrimitives.WriteUInt32BigEndian(span[12..], (uint)type);         // u32 reply type
        BinaryPrimitives.WriteUInt32BigEndian(span[16..], (uint)data.Length);  // u32 payload length
        data.CopyTo(span[OptionReplyHeaderSizeBytes..]);
        return message;
    }

    public static byte[] Ack(uint option) => OptionReply(option, NbdOptionReplyType.Ack, []);

    /// <summary>An error reply; the message is shown to the user by clients such as nbdinfo.</summary>
    public static byte[] Error(uint option, NbdOptionReplyType error, string message)
    {
        Invariant.Assert(((uint)error & 0x80000000U) != 0, "option error types have bit 31 set");
        return OptionReply(option, error, Encoding.UTF8.GetBytes(message));
    }

    /// <summary>NBD_REP_SERVER: u32 name length, name, then the description.</summary>
    public static byte[] Server(string name, string description)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        byte[] descriptionBytes = Encoding.UTF8.GetBytes(description);
        var data = new byte[4 + nameBytes.Length + descriptionBytes.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)nameBytes.Length);   // u32 name length
        nameBytes.CopyTo(data, 4);                                              // name
        descriptionBytes.CopyTo(data, 4 + nameBytes.Length);                    // description (rest)
        return OptionReply((uint)NbdOption.List, NbdOptionReplyType.Server, data);
    }

    /// <summary>NBD_REP_INFO with NBD_INFO_EXPORT.</summary>
    public static byte[] InfoExport(uint option, ulong sizeBytes, NbdTransmissionFlags flags)
    {
        Span<byte> data = stackalloc byte[InfoExportSizeBytes];
        BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)NbdInfoType.Export); // u16 info type
        BinaryPrimitives.WriteUInt64BigEndian(data[2..], sizeBytes);             // u64 export size
        BinaryPrimitives.WriteUInt16BigEndian(data[10..], (ushort)flags);        // u16 transmission flags
        return OptionReply(option, NbdOptionReplyType.Info, data);
    }

    /// <summary>NBD_REP_INFO with NBD_INFO_BLOCK_SIZE.</summary>
    public static byte[] InfoBlockSize(uint option, uint minimumBytes, uint preferredBytes, uint maxPayloadBytes)
    {
        Span<byte> data = stackalloc byte[InfoBlockSizeSizeBytes];
        BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)NbdInfoType.BlockSize); // u16 info type
        BinaryPrimitives.WriteUInt32BigEndian(data[2..], minimumBytes);             // u32 minimum block size
        BinaryPrimitives.WriteUInt32BigEndian(data[6..], preferredBytes);           // u32 preferred block size
        BinaryPrimitives.WriteUInt32BigEndian(data[10..], maxPayloadBytes);         // u32 maximum payload size
        return OptionReply(option, NbdOptionReplyType.Info, data);
    }

    /// <summary>NBD_REP_INFO with NBD_INFO_NAME or NBD_INFO_DESCRIPTION: u16 type, then the text.</summary>
    public static byte[] InfoText(uint option, NbdInfoType type, string text)
    {
        Invariant.Assert(type is NbdInfoType.Name or NbdInfoType.Description, "only NAME and DESCRIPTION are text");
        byte[] textBytes = Encoding.UTF8.GetBytes(text);
        var data = new byte[2 + textBytes.Length];
        BinaryPrimitives.WriteUInt16BigEndian(data, (ushort)type); // u16 info type
        textBytes.CopyTo(data, 2);                                 // text (rest)
        return OptionReply(option, NbdOptionReplyType.Info, data);
    }

    /// <summary>NBD_REP_META_CONTEXT: u32 context id, then the context name.</summary>
    public static byte[] MetaContext(uint option, uint contextId, string name)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        var data = new byte[4 + nameBytes.Length];
        BinaryPrimitives.WriteUInt32BigEndian(data, contextId); // u32 context id
        nameBytes.CopyTo(data, 4);                              // context name (rest)
        return OptionReply(option, NbdOptionReplyType.MetaContext, data);
    }

    /// <summary>
    /// Answer to NBD_OPT_EXPORT_NAME: u64 size, u16 transmission flags, then 124 zero bytes unless the
    /// client negotiated NO_ZEROES.
    /// </summary>
    public static byte[] ExportNameReply(ulong sizeBytes, NbdTransmissionFlags flags, bool noZeroes)
    {
        var message = new byte[10 + (noZeroes ? 0 : NbdLimits.ExportNamePaddingBytes)];
        BinaryPrimitives.WriteUInt64BigEndian(message, sizeBytes);                // u64 export size
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(8), (ushort)flags);  // u16 transmission flags
        return message;                                                            // zero padding (if any)
    }
}

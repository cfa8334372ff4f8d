// Parsers for the data of NBD_OPT_INFO/GO and NBD_OPT_LIST/SET_META_CONTEXT. The data comes from an
// unauthenticated client: every length is checked against what is actually there and against the
// spec's 4096-byte string limit before anything is decoded.
using System.Buffers.Binary;
using System.Text;

namespace Redundancy.Block.Engine.Nbd;

/// <summary>NBD_OPT_INFO/GO data: the export name and the info types the client asked for.</summary>
public sealed record NbdInfoRequest(string ExportName, IReadOnlyList<ushort> InfoTypes);

/// <summary>NBD_OPT_LIST/SET_META_CONTEXT data: the export name and the context queries.</summary>
public sealed record NbdMetaContextRequest(string ExportName, IReadOnlyList<string> Queries);

/// <summary>Parses option data; a false return carries a message for NBD_REP_ERR_INVALID.</summary>
public static class NbdOptionParser
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Decodes an export name or query: at most 4096 bytes of valid UTF-8.</summary>
    public static bool TryDecodeString(ReadOnlySpan<byte> bytes, out string value, out string error)
    {
        value = "";
        if (bytes.Length > NbdLimits.MaxStringBytes)
        {
            error = $"string of {bytes.Length} bytes exceeds the {NbdLimits.MaxStringBytes}-byte limit";
            return false;
        }

        try
        {
            value = StrictUtf8.GetString(bytes);
            error = "";
            return true;
        }
        catch (DecoderFallbackException)
        {
            error = "string is not valid UTF-8";
            return false;
        }
    }

    /// <summary>Data: u32 name length, name, u16 count, u16 info type × count; nothing after.</summary>
    public static bool TryParseInfoRequest(ReadOnlySpan<byte> data, out NbdInfoRequest? request, out string error)
    {
        request = null;
        if (!TryReadName(ref data, out string name, out error))
        {
            return false;
        }

        if (data.Length < 2)
        {
            error = "missing the count of information requests";
            return false;
        }

        int count = BinaryPrimitives.ReadUInt16BigEndian(data);   // u16 number of info requests
        data = data[2..];
        if (data.Length != count * 2)
        {
            error = $"{count} information requests need {count * 2} bytes, {data.Length} were sent";
            return false;
        }

        var types = new ushort[count];
        for (int i = 0; i < count; i++)
        {
            types[i] = BinaryPrimitives.ReadUInt16BigEndian(data[(i * 2)..]);  // u16 info type
        }

        request = new NbdInfoRequest(name, types);
        return true;
    }

    /// <summary>Data: u32 name length, name, u32 query count, (u32 length, query) × count; nothing after.</summary>
    public static bool TryParseMetaContextRequest(ReadOnlySpan<byte> data, out NbdMetaContextRequest? request, out string error)
    {
        request = null;
        if (!TryReadName(ref data, out string name, out error))
        {
            return false;
        }

        if (data.Length < 4)
        {
            error = "missing the count of queries";
            return false;
        }

        uint count = BinaryPrimitives.ReadUInt32BigEndian(data);   // u32 number of queries
        data = data[4..];
        if (count > (uint)data.Length / 4)
        {
            error = $"{count} queries cannot fit in {data.Length} bytes";
            return false;
        }

        var queries = new List<string>((int)count);
        for (uint i = 0; i < count; i++)
        {
            if (!TryReadName(ref data, out string query, out error))   // u32 query length, query
            {
                return false;
            }

            queries.Add(query);
        }

        if (!data.IsEmpty)
        {
            error = $"{data.Length} unexpected bytes after the queries";
            return false;
        }

        request = new NbdMetaContextRequest(name, queries);
        return true;
    }

    /// <summary>Reads a u32 length and that many bytes of string, advancing <paramref name="data"/>.</summary>
    private static bool TryReadName(ref ReadOnlySpan<byte> data, out string value, out string error)
    {
        value = "";
        if (data.Length < 4)
        {
            error = "truncated string length";
            return false;
        }

        uint length = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (length > (uint)data.Length - 4)
        {
            error = $"string length {length} exceeds the {data.Length - 4} bytes sent";
            return false;
        }

        if (!TryDecodeString(data.Slice(4, (int)length), out value, out error))
        {
            return false;
        }

        data = data[(4 + (int)length)..];
        return true;
    }
}

// The 16-byte header of every client option in the negotiation phase.
using System.Buffers.Binary;

namespace Redundancy.Block.Engine.Nbd;

/// <summary>A client option header: the option code and the length of the data that follows.</summary>
/// <param name="Option">Option code (may be one we do not know).</param>
/// <param name="DataLengthBytes">Length of the option data; untrusted, may be huge.</param>
public readonly record struct NbdOptionHeader(uint Option, uint DataLengthBytes)
{
    /// <summary>Size on the wire: u64 IHAVEOPT, u32 option, u32 length.</summary>
    public const int SizeBytes = 16;

    /// <summary>Parses a header; false when too short or the magic is not IHAVEOPT.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out NbdOptionHeader header)
    {
        if (source.Length < SizeBytes || BinaryPrimitives.ReadUInt64BigEndian(source) != NbdMagic.IHaveOpt)
        {
            header = default;
            return false;
        }

        header = new NbdOptionHeader(
            Option: BinaryPrimitives.ReadUInt32BigEndian(source[8..]),             // u32 option
            DataLengthBytes: BinaryPrimitives.ReadUInt32BigEndian(source[12..]));  // u32 data length
        return true;
    }

    /// <summary>Writes this header (used by clients and tests).</summary>
    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, NbdMagic.IHaveOpt);   // u64 IHAVEOPT
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], Option);         // u32 option
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], DataLengthBytes); // u32 data length
        return SizeBytes;
    }
}

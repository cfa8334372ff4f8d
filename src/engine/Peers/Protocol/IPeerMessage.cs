// The shape every peer message shares, so frames can be written and read generically without boxing.
namespace Redundancy.Block.Engine.Peers.Protocol;

public interface IPeerMessage<TSelf> where TSelf : struct, IPeerMessage<TSelf>
{
    /// <summary>The message type in the frame header.</summary>
    static abstract MessageType Type { get; }

    /// <summary>
    /// Parses and validates the message from a whole frame payload (exact length, every field checked).
    /// On failure <paramref name="error"/> says which field is wrong; the caller disconnects.
    /// </summary>
    static abstract bool TryRead(ReadOnlySpan<byte> source, out TSelf message, out string? error);

    /// <summary>Bytes <see cref="Write"/> produces (for data-carrying messages: without the data).</summary>
    int EncodedLength { get; }

    /// <summary>Writes the message; returns <see cref="EncodedLength"/>.</summary>
    int Write(Span<byte> destination);
}

using System.Buffers;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Engine.Replication;

// `net { compression lz4; }` (our extension): when both ends offered Lz4Compression in Features,
// Data and RsDataReply payloads travel as LZ4 blocks whenever that is smaller. A receiver accepts a
// compressed payload only on such a connection, only for at most what one frame could carry
// uncompressed, and only when it decompresses to exactly the declared length; anything else is a
// protocol error and drops the connection.
public sealed partial class Replica
{
    /// <summary>True when both ends of the connection to <paramref name="peer"/> offered LZ4 compression.</summary>
    private bool CompressesWith(int peer) => (links[peer].AgreedFeatures & FeatureFlags.Lz4Compression) != 0;

    /// <summary>A client request's frame: its data compressed when <paramref name="compress"/> and smaller (see <see cref="PooledFrame.SendTo"/>).</summary>
    private static PooledFrame DataFrame(ushort volume, in DataMessage message, ReadOnlySpan<byte> data, bool compress) =>
        compress && message.ExpectsData
            ? PooledFrame.CreateCompressed(volume, message, message with { Flags = message.Flags | DataFlags.Compressed }, data)
            : PooledFrame.Head(volume, message, data.Length);

    /// <summary>A resync reply's frame for <paramref name="peer"/>: its data compressed when agreed and smaller (see <see cref="PooledFrame.SendTo"/>).</summary>
    private PooledFrame ResyncReplyFrame(int peer, ushort volume, in RsDataReplyMessage reply, ReadOnlySpan<byte> data) =>
        CompressesWith(peer)
            ? PooledFrame.CreateCompressed(volume, reply, reply with { Flags = reply.Flags | RsDataFlags.Compressed }, data)
            : PooledFrame.Head(volume, reply, data.Length);

    /// <summary>
    /// A received payload as a pooled block of <paramref name="lengthBytes"/>: copied, or decompressed
    /// when <paramref name="compressed"/>. Null with the protocol error when the peer compressed
    /// without agreement, declared more than a frame could carry, or sent a malformed block.
    /// </summary>
    private PooledBlock? ReceivedBlock(int peer, in ReadOnlySequence<byte> payload, bool compressed, uint lengthBytes, out string? error)
    {
        error = null;
        if (!compressed)
        {
            return PooledBlock.CopyOf(payload);
        }
        if (!CompressesWith(peer))
        {
            error = "a COMPRESSED payload, but LZ4 compression was not agreed";
            return null;
        }
        var block = PooledBlock.Decompress(payload, lengthBytes, links[peer].MaxFramePayloadBytes, out error);
        error = block is null ? $"a malformed LZ4 payload: {error}" : null;
        return block;
    }
}

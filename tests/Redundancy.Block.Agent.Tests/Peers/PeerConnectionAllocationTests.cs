// An oversized frame announced by a peer is refused from its header: the 64 MiB it announces is
// never allocated. Measured with the process-wide allocation counter, so this class runs alone.
using System.Buffers;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Redundancy.Block.Agent.Peers;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Tests.Peers;

[CollectionDefinition(nameof(AllocationSensitive), DisableParallelization = true)]
public sealed class AllocationSensitive;

[Collection(nameof(AllocationSensitive))]
public sealed class PeerConnectionAllocationTests
{
    [Fact]
    public async Task An_announced_64_MiB_payload_over_a_1_MiB_limit_closes_without_being_buffered()
    {
        var (client, server) = await PeerTestSupport.SocketPairAsync();
        using var _ = client;
        var receiver = new PeerConnection(server, "r0 beta", new PeerConnectionOptions(), NullLogger.Instance);
        await using var __ = receiver;
        receiver.SetMaxPayloadBytes(1 << 20);
        var closed = new CloseRecorder();

        // The header announces 64 MiB of Data; 8 MiB of it really follow, more than a receiver that
        // waited for the payload would have to buffer before failing this test.
        byte[] stream = new byte[FrameHeader.Size + (8 << 20)];
        new FrameHeader(MessageType.Data, 0, 64u << 20).Write(stream);
        Task sending = SendIgnoringResetAsync(client, stream);

        long before = GC.GetTotalAllocatedBytes(precise: true);
        receiver.Start((in FrameHeader h, in ReadOnlySequence<byte> p) => { }, closed.OnClosed);
        PeerCloseReason reason = await closed.FirstAsync();
        long allocatedBytes = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(PeerCloseKind.FrameError, reason.Kind);
        Assert.Contains("payload of 67108864 bytes exceeds the maximum of 1048576", reason.Message, StringComparison.Ordinal);
        Assert.True(allocatedBytes < 1 << 20, $"{allocatedBytes} bytes allocated while refusing the frame");
        await sending.WaitAsync(PeerTestSupport.Patience);
    }

    private static async Task SendIgnoringResetAsync(Socket socket, byte[] bytes)
    {
        try
        {
            await socket.SendAsync(bytes, SocketFlags.None);
        }
        catch (SocketException)
        {
            // The receiver closed on the header: the rest cannot be delivered, which is the point.
        }
    }
}

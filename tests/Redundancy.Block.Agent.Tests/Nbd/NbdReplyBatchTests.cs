// NBD replies completed by another thread inside its SendBatch (as the peer connection's receive loop
// completes a read's worth of replicated writes) are held until the batch closes, then all arrive.
using Redundancy.Block.Agent.Batching;
using Redundancy.Block.Agent.Tests.Nbd.TestSupport;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd;

public sealed class NbdReplyBatchTests
{
    [Fact]
    public async Task Replies_completed_inside_another_threads_batch_leave_when_it_closes()
    {
        var catalog = new TestCatalog();
        MemoryBlockDevice device = catalog.Add("r0", 1 << 20);
        await using NbdServerFixture fixture = await NbdServerFixture.StartAsync(catalog);
        using NbdTestClient client = fixture.Connect();
        client.Go("r0");
        var gate = new TaskCompletionSource(); // continuations run inline: on the thread that opens the gate
        device.Gate = gate;
        for (ulong cookie = 1; cookie <= 3; cookie++)
        {
            client.SendRequest(NbdCommand.Write, cookie, cookie * 4096, 4, payload: [1, 2, 3, (byte)cookie]);
        }

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Volatile.Read(ref device.Started) < 3)
        {
            Assert.True(DateTime.UtcNow < deadline, "the writes never reached the device");
            await Task.Delay(5);
        }

        bool heldWhileOpen = false;
        await Task.Factory.StartNew(() =>
        {
            SendBatch.Open();
            gate.SetResult(); // completes the three writes here, inside the batch
            heldWhileOpen = !client.HasBytesWithin(TimeSpan.FromMilliseconds(200));
            SendBatch.Close();
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        Assert.True(heldWhileOpen, "a reply left before the batch closed");
        var cookies = new HashSet<ulong>();
        for (int i = 0; i < 3; i++)
        {
            NbdTestClient.SimpleReply reply = client.ReadSimpleReply();
            Assert.Equal(NbdError.None, reply.Error);
            cookies.Add(reply.Cookie);
        }

        Assert.Equal([1UL, 2UL, 3UL], cookies.Order());
        Assert.Equal([1, 2, 3, 2], device.Peek(2 * 4096, 4));
    }
}

using Redundancy.Block.Engine.States;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Protocol A and B acknowledge nothing per write, so a SyncSource cannot learn from acks that the
/// target got a block the application rewrote during the resync; the resync must still finish, with
/// identical disks.
/// </summary>
public class ReplicaProtocolAResyncTests
{
    private const int BlockBytes = 4096;

    [Theory]
    [InlineData("A")]
    [InlineData("B")]
    public void A_resync_with_the_same_blocks_rewritten_meanwhile_finishes_with_identical_disks(string protocol)
    {
        for (int seed = 1; seed <= 10; seed++)
        {
            var pair = new SimReplicaPair(seed, protocol, options: new NetworkOptions { MaxDelayMs = 3 },
                resyncRate: new Engine.Bitmap.Resync.ResyncRateSettings { CPlanAheadMs = 0, ResyncRateKibPerSec = 2048 });
            pair.ConnectWithAlphaPrimary();
            pair.Network.Partition("alpha", "beta");
            Assert.True(pair.Scheduler.RunUntil(() => pair.Alpha.Replica.Links[1].State != ConnectionState.Connected, 30_000));
            var offsets = Enumerable.Range(0, 64).Select(i => (long)(i * 7 % 1024) * BlockBytes).Distinct().ToList();
            int done = 0;
            Write(pair, offsets, () => done++);
            Assert.True(pair.Scheduler.RunUntil(() => done == offsets.Count, 30_000));

            pair.Network.HealAll();
            Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.ReplicationOf(0, 0) == ReplicationState.SyncTarget, 30_000), pair.Logs);
            done = 0;
            Write(pair, offsets, () => done++); // the same blocks again, while they are being resynced
            Assert.True(pair.Scheduler.RunUntil(() => done == offsets.Count && pair.InSync(), 60_000), $"seed {seed}: {pair.Logs}");
            var alpha = pair.Alpha.Disks[0].Contents;
            var beta = pair.Beta.Disks[0].Contents;
            Assert.True(alpha.SequenceEqual(beta), $"seed {seed}: the disks differ after the resync");
        }
    }

    private static void Write(SimReplicaPair pair, List<long> offsets, Action onDone)
    {
        foreach (long offset in offsets)
        {
            var data = new byte[BlockBytes];
            pair.Random.Fill(data);
            pair.Alpha.Write(0, offset, data, ok =>
            {
                Assert.True(ok);
                onDone();
            });
        }
    }
}

/// <summary>
/// A switch-over right after busy protocol A writes: the new Primary's writes to the same blocks
/// must land after the old Primary's last writes, which may still be on their way to its disk.
/// </summary>
public class ReplicaSwitchOverTests
{
    private const int BlockBytes = 4096;

    [Theory]
    [InlineData("A")]
    [InlineData("C")]
    public void Writes_on_the_new_Primary_land_after_the_old_Primarys_last_writes(string protocol)
    {
        for (int seed = 1; seed <= 20; seed++)
        {
            var pair = new SimReplicaPair(seed, protocol, options: new NetworkOptions { MaxDelayMs = 3 });
            pair.Beta.DiskLatencyMaxMs = 200; // the peer's disk lags far behind the network
            pair.ConnectWithAlphaPrimary();
            int done = 0;
            for (int i = 0; i < 64; i++)
            {
                WriteBlock(pair.Alpha, pair, i % 8, () => done++);
            }
            Assert.True(pair.Scheduler.RunUntil(() => done == 64, 120_000), pair.Logs);
            pair.Alpha.Replica.SetRole(Role.Secondary);
            Assert.True(pair.Scheduler.RunUntil(() => pair.Beta.Replica.Links[0].PeerRole == Role.Secondary, 10_000), pair.Logs);
            pair.Beta.Replica.SetRole(Role.Primary);
            done = 0;
            for (int i = 0; i < 16; i++)
            {
                WriteBlock(pair.Beta, pair, i % 8, () => done++);
            }
            Assert.True(pair.Scheduler.RunUntil(() => done == 16, 120_000), pair.Logs);
            pair.Scheduler.RunUntil(pair.Scheduler.NowMs + 2_000);
            Assert.True(pair.Alpha.Disks[0].Contents.SequenceEqual(pair.Beta.Disks[0].Contents), $"seed {seed}: the disks differ after the switch-over");
        }
    }

    private static void WriteBlock(SimReplicaNode node, SimReplicaPair pair, int block, Action onDone)
    {
        var data = new byte[BlockBytes];
        pair.Random.Fill(data);
        node.Write(0, block * (long)BlockBytes, data, ok =>
        {
            Assert.True(ok);
            onDone();
        });
    }
}

using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Bitmap.Resync;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Tests.Bitmap;

public class ResyncPlannerTests
{
    private const long Usable = 64L << 20; // 16384 bits

    private static (long First, long Count)[] Plan(ResyncPlanner p, long budget) =>
        [.. p.NextRequests(budget).Select(r => (r.FirstBit, r.BitCount))];

    private static void CompleteAll(ResyncPlanner p, IEnumerable<ResyncRequest> requests)
    {
        foreach (ResyncRequest r in requests)
        {
            Assert.Equal(ReplyDisposition.Write, p.BeginReply(r.Id));
            p.CompleteReply(r.Id);
        }
    }

    [Fact]
    public void Requests_go_in_disk_order_coalesced_and_aligned_to_the_request_size()
    {
        var t = new BitmapTracker(Usable, 1);
        t.SetBits(0, 10, 20);
        t.SetBits(0, 300, 700);
        t.SetBits(0, 2000, 1);
        t.SetBits(0, 2002, 1);
        var p = new ResyncPlanner(t, 0, maxRequestBytes: 1L << 20);
        Assert.Equal([(10L, 20L), (300L, 212L), (512L, 256L), (768L, 232L), (2000L, 1L), (2002L, 1L)], Plan(p, long.MaxValue));
        Assert.Empty(p.NextRequests(long.MaxValue)); // all in flight
        Assert.Equal(722 * 4096, p.InFlightBytes);

        var t2 = new BitmapTracker(Usable, 1);
        t2.SetBits(0, 0, 100);
        var p2 = new ResyncPlanner(t2, 0, maxRequestBytes: 128 << 10);
        Assert.Equal([(0L, 32L), (32L, 8L)], Plan(p2, 40 * 4096)); // budget cuts the second request
        Assert.Equal(40, p2.NextBit);
        Assert.Equal([(40L, 24L), (64L, 32L), (96L, 4L)], Plan(p2, 4096 * 1000));
        Assert.Empty(Plan(p2, 4095)); // less than one block of budget
    }

    [Fact]
    public void Completion_clears_bits_and_the_resync_finishes()
    {
        var t = new BitmapTracker(Usable, 2);
        t.SetAll(1);
        var p = new ResyncPlanner(t, 1);
        Assert.False(p.IsFinished);
        while (!p.IsFinished)
        {
            IReadOnlyList<ResyncRequest> batch = p.NextRequests(3L << 20);
            Assert.NotEmpty(batch);
            CompleteAll(p, batch);
        }

        Assert.Equal(0, t.OutOfSyncBytes(1));
        Assert.Equal(t.PageCount, t.DirtyPageCount(1));
        ResyncProgress progress = p.Progress(0);
        Assert.Equal(100.0, progress.DonePercent);
        Assert.True(progress.IsFinished);
    }

    [Fact]
    public void Interrupted_resync_resumes_without_resending_completed_ranges()
    {
        var random = new Random(21);
        var t = new BitmapTracker(Usable, 1);
        for (int i = 0; i < 300; i++)
        {
            t.SetBits(0, random.NextInt64(16000), random.Next(1, 300));
        }

        var completed = new bool[t.BitCount];
        var p = new ResyncPlanner(t, 0, maxRequestBytes: 256 << 10);
        int interrupts = 0;
        for (int round = 0; !p.IsFinished; round++)
        {
            Assert.True(round < 10_000, "the resync makes progress");
            foreach (ResyncRequest r in p.NextRequests(random.Next(1, 64) * 4096L))
            {
                for (long b = r.FirstBit; b < r.FirstBit + r.BitCount; b++)
                {
                    Assert.False(completed[b], $"bit {b} was requested again after it completed");
                }

                if (round < 150 && random.Next(3) == 0)
                {
                    continue; // left in flight: its reply is lost with the next interruption
                }

                p.BeginReply(r.Id);
                p.CompleteReply(r.Id);
                Array.Fill(completed, true, (int)r.FirstBit, (int)r.BitCount);
            }

            if (p.InFlightRequests > 0 && (random.Next(10) == 0 || round >= 150))
            {
                p.Interrupt(); // connection lost: in-flight requests are dropped
                interrupts++;
                Assert.Equal(0, p.InFlightRequests);
            }
        }

        Assert.True(interrupts > 5);
        Assert.True(p.IsFinished);
        Assert.Equal(0, t.OutOfSyncBytes(0));
    }

    [Fact]
    public void After_a_crash_the_planner_rebuilt_from_the_persisted_bitmap_only_repeats_unpersisted_work()
    {
        var random = new Random(8);
        var t = new BitmapTracker(Usable, 1);
        t.SetAll(0);
        QuickSyncBitmap disk = Persist(t, new QuickSyncBitmap(Usable));
        var completedAt = new int[t.BitCount]; // 0 = never, else the round it completed
        int lastPersistRound = 0;
        var p = new ResyncPlanner(t, 0);
        int round = 1;
        for (; round <= 40; round++)
        {
            foreach (ResyncRequest r in p.NextRequests(random.Next(1, 300) * 4096L))
            {
                if (random.Next(4) > 0)
                {
                    p.BeginReply(r.Id);
                    p.CompleteReply(r.Id);
                    Array.Fill(completedAt, round, (int)r.FirstBit, (int)r.BitCount);
                }
            }

            if (round % 7 == 0)
            {
                disk = Persist(t, disk); // lazy bitmap write-back during resync
                lastPersistRound = round;
            }
        }

        // Crash: memory is gone; the node restarts from the bitmap on disk and resyncs again.
        var restarted = new BitmapTracker([QuickSyncBitmap.FromSlotBytes(SlotBytes(disk), Usable)]);
        for (long b = 0; b < t.BitCount; b++)
        {
            bool redo = completedAt[b] == 0 || completedAt[b] > lastPersistRound;
            Assert.Equal(redo, restarted.Bitmap(0).IsSet(b));
        }

        Assert.True(restarted.OutOfSyncBytes(0) < Usable, "work survived the crash");
        var again = new ResyncPlanner(restarted, 0);
        long resent = 0;
        while (!again.IsFinished)
        {
            foreach (ResyncRequest r in again.NextRequests(1L << 20))
            {
                for (long b = r.FirstBit; b < r.FirstBit + r.BitCount; b++)
                {
                    Assert.True(completedAt[b] == 0 || completedAt[b] > lastPersistRound, $"bit {b} completed and persisted, yet requested again");
                    resent += completedAt[b] > lastPersistRound ? 1 : 0;
                }

                again.BeginReply(r.Id);
                again.CompleteReply(r.Id);
            }
        }

        Assert.True(resent > 0, "the work after the last write-back is redone");
        Assert.Equal(0, restarted.OutOfSyncBytes(0));
    }

    [Fact]
    public void A_persisted_position_is_honoured_and_bits_behind_it_are_not_forgotten()
    {
        var t = new BitmapTracker(Usable, 1);
        t.SetBits(0, 5, 1);
        t.SetBits(0, 9000, 2);
        var p = new ResyncPlanner(t, 0, startBit: 8000);
        Assert.Equal([(9000L, 2L)], Plan(p, 4096 * 2));
        Assert.Equal([(5L, 1L)], Plan(p, 4096 * 100)); // second pass from the start
        Assert.Empty(Plan(p, 4096 * 100));
    }

    [Fact]
    public void Pause_stops_new_requests_but_in_flight_ones_complete()
    {
        var t = new BitmapTracker(Usable, 1);
        t.SetBits(0, 0, 64);
        var p = new ResyncPlanner(t, 0);
        IReadOnlyList<ResyncRequest> first = p.NextRequests(16 * 4096);
        p.Pause();
        Assert.True(p.Progress(0).IsPaused);
        Assert.Empty(p.NextRequests(1L << 30));
        CompleteAll(p, first);
        Assert.Equal(48 * 4096, t.OutOfSyncBytes(0));
        p.Resume();
        Assert.Equal([(16L, 48L)], Plan(p, 1L << 30));
    }

    [Fact]
    public void Failed_requests_stay_out_of_sync_and_are_not_asked_again()
    {
        var t = new BitmapTracker(Usable, 1);
        t.SetBits(0, 0, 10);
        var p = new ResyncPlanner(t, 0, maxRequestBytes: 5 * 4096);
        IReadOnlyList<ResyncRequest> rs = p.NextRequests(1L << 20);
        p.FailRequest(rs[0].Id);
        CompleteAll(p, [rs[1]]);
        Assert.Empty(p.NextRequests(1L << 20));
        ResyncProgress progress = p.Progress(0);
        Assert.True(progress.IsFinished);
        Assert.Equal(5, progress.FailedBits);
        Assert.Equal(20, progress.OutOfSyncKib);
    }

    [Fact]
    public void Progress_reports_done_out_of_sync_and_an_estimate()
    {
        var t = new BitmapTracker(Usable, 1);
        t.SetBits(0, 0, 1000);
        var p = new ResyncPlanner(t, 0);
        ResyncProgress start = p.Progress(10_000);
        Assert.Equal(0.0, start.DonePercent);
        Assert.Equal(4000, start.OutOfSyncKib);
        Assert.Null(start.EstimatedRemainingMs);

        CompleteAll(p, p.NextRequests(500 * 4096));
        ResyncProgress half = p.Progress(13_000);
        Assert.Equal(50.0, half.DonePercent);
        Assert.Equal(2000, half.OutOfSyncKib);
        Assert.Equal(2000 / 3, half.RateKibPerSec);
        Assert.Equal(3000, half.EstimatedRemainingMs);
        Assert.Equal(0, half.InFlightBytes);
    }

    [Fact]
    public void Application_write_overtaking_a_request_discards_its_reply_and_the_range_is_fetched_again()
    {
        var t = new BitmapTracker(Usable, 1);
        t.SetBits(0, 0, 8);
        var p = new ResyncPlanner(t, 0);
        ResyncRequest r = Assert.Single(p.NextRequests(1L << 20));

        ApplicationWriteAdmission w = p.ApplicationWriteArrived((2 * 4096) + 512, 4096); // blocks 2 (partly) and 3 (partly)
        Assert.True(w.Admitted);
        Assert.Empty(p.NextRequests(1L << 20)); // nothing else to ask while blocks 2..3 are written
        Assert.Equal(ReplyDisposition.Discard, p.BeginReply(r.Id));
        Assert.Equal(0, p.ApplicationWriteCompleted(w.Token)); // covers no whole block: nothing in sync
        Assert.Equal(8, t.Bitmap(0).SetBitCount);
        Assert.Equal([(0L, 8L)], Plan(p, 1L << 20)); // asked again

        // A write fully covering blocks makes them in sync.
        var t2 = new BitmapTracker(Usable, 1);
        t2.SetBits(0, 0, 8);
        var p2 = new ResyncPlanner(t2, 0);
        ResyncRequest r2 = Assert.Single(p2.NextRequests(1L << 20));
        ApplicationWriteAdmission w2 = p2.ApplicationWriteArrived(4096, 3 * 4096);
        Assert.Equal(3, p2.ApplicationWriteCompleted(w2.Token));
        Assert.Equal(ReplyDisposition.Discard, p2.BeginReply(r2.Id));
        Assert.Equal([(0L, 1L), (4L, 4L)], Plan(p2, 1L << 20));
    }

    [Fact]
    public void Application_write_waits_for_a_reply_being_written()
    {
        var t = new BitmapTracker(Usable, 1);
        t.SetBits(0, 0, 8);
        var p = new ResyncPlanner(t, 0);
        ResyncRequest r = Assert.Single(p.NextRequests(1L << 20));
        Assert.Equal(ReplyDisposition.Write, p.BeginReply(r.Id));
        ApplicationWriteAdmission w = p.ApplicationWriteArrived(4096, 4096);
        Assert.False(w.Admitted);
        Assert.Equal([r.Id], w.WaitForRequestIds.ToArray());
        p.CompleteReply(r.Id);
        w = p.ApplicationWriteArrived(4096, 4096);
        Assert.True(w.Admitted);
        p.ApplicationWriteCompleted(w.Token);
        Assert.True(p.IsFinished);
        Assert.True(p.ApplicationWriteArrived(0, 0).Admitted);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void Random_interleaving_of_resync_and_application_writes_converges_to_the_source(int seed)
    {
        new ResyncSimulation(seed).Run();
    }

    [Fact]
    public void The_simulation_exercises_both_application_write_rules()
    {
        ResyncSimulation[] runs = [.. Enumerable.Range(1, 8).Select(seed => new ResyncSimulation(seed).Run())];
        Assert.True(runs.Sum(r => r.Discarded) > 10, "replies were overtaken by application writes");
        Assert.True(runs.Sum(r => r.WaitedForReply) > 10, "application writes waited for replies being written");
    }

    internal static QuickSyncBitmap Persist(BitmapTracker t, QuickSyncBitmap disk)
    {
        byte[] bytes = SlotBytes(disk);
        foreach (BitmapWrite w in t.TakeDirtyPages(0))
        {
            long pages = (w.BitCount + BitmapTracker.BitsPerPage - 1) / BitmapTracker.BitsPerPage;
            t.Bitmap(0).WriteSlotBytes(w.FirstBit / 8, bytes.AsSpan((int)(w.FirstBit / 8), (int)(pages * 4096)));
        }

        return QuickSyncBitmap.FromSlotBytes(bytes, disk.UsableSizeBytes);
    }

    internal static byte[] SlotBytes(QuickSyncBitmap b)
    {
        byte[] bytes = new byte[b.SlotSizeBytes];
        b.WriteSlotBytes(0, bytes);
        return bytes;
    }
}

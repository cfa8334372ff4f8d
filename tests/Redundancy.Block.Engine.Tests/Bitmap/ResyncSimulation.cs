// A seeded model of a SyncTarget resyncing while the SyncSource keeps writing: data as per-sector
// versions, resync reads at the source at random times (before or after application writes),
// replies and application writes arriving and landing in random order, one connection loss.
// Whatever the interleaving, following the planner's rules must end with target == source.
using Redundancy.Block.Engine.Bitmap;
using Redundancy.Block.Engine.Bitmap.Resync;

namespace Redundancy.Block.Engine.Tests.Bitmap;

internal sealed class ResyncSimulation(int seed)
{
    private const int Blocks = 256;
    private const int SectorsPerBlock = 8;
    private const int AppWrites = 600;

    private readonly Random _random = new(seed);
    private readonly long[] _source = new long[Blocks * SectorsPerBlock];
    private readonly long[] _target = new long[Blocks * SectorsPerBlock];
    private readonly List<(ResyncRequest Request, long[]? Snapshot)> _awaitingReply = [];
    private readonly List<(ResyncRequest Request, long[] Snapshot)> _writingReply = [];
    private readonly Queue<(long Offset, long Length, long Version)> _appOnTheWire = new();
    private (long Token, long Offset, long Length, long Version)? _appWriting;
    private long _version = 1;

    public int Discarded { get; private set; }
    public int WaitedForReply { get; private set; }

    public ResyncSimulation Run()
    {
        var tracker = new BitmapTracker(Blocks * 4096L, 1);
        Array.Fill(_source, 1);
        Array.Fill(_target, 1);
        for (int i = 0; i < 30; i++)
        {
            int first = _random.Next(Blocks - 64), count = _random.Next(1, 64);
            tracker.SetBits(0, first, count);
            if (_random.Next(4) > 0)
            {
                Array.Fill(_target, 0, first * SectorsPerBlock, count * SectorsPerBlock); // stale data
            }
        }

        var planner = new ResyncPlanner(tracker, 0, maxRequestBytes: 64 << 10);
        int appWrites = 0, steps = 0;
        bool interrupted = false;
        while (appWrites < AppWrites || !planner.IsFinished || _awaitingReply.Count + _writingReply.Count + _appOnTheWire.Count > 0 || _appWriting is not null)
        {
            Assert.True(++steps < 200_000, "the simulation makes progress");
            switch (_random.Next(10))
            {
                case 0: Issue(planner); break;
                case 1: SourceRead(); break;
                case 2: ReplyArrives(planner); break;
                case 3: ReplyLands(planner); break;
                case 4 when appWrites < AppWrites: SourceWrite(); appWrites++; break;
                case 5 or 8: AppWriteArrives(planner); break;
                case 6 or 9: AppWriteLands(planner); break;
                case 7 when !interrupted && _writingReply.Count > 0 && _awaitingReply.Count > 0:
                    interrupted = true;
                    planner.Interrupt();
                    _awaitingReply.Clear(); // those replies are lost with the connection
                    break;
            }

            CheckInSyncMeansEqual(tracker);
        }

        Assert.True(interrupted);
        Assert.Equal(0, tracker.OutOfSyncBytes(0));
        Assert.Equal(_source, _target);
        return this;
    }

    /// <summary>
    /// DRBD's invariant: a block whose bit is clear holds the source's data, unless a replicated write
    /// to it is still on its way or a resync reply to it is still being written.
    /// </summary>
    private void CheckInSyncMeansEqual(BitmapTracker tracker)
    {
        var busy = new bool[Blocks];
        foreach ((long offset, long length, _) in _appOnTheWire)
        {
            Array.Fill(busy, true, (int)(offset / 4096), (int)(((offset + length + 4095) / 4096) - (offset / 4096)));
        }

        if (_appWriting is { } w)
        {
            Array.Fill(busy, true, (int)(w.Offset / 4096), (int)(((w.Offset + w.Length + 4095) / 4096) - (w.Offset / 4096)));
        }

        foreach ((ResyncRequest r, _) in _writingReply)
        {
            Array.Fill(busy, true, (int)r.FirstBit, (int)r.BitCount);
        }

        for (int b = 0; b < Blocks; b++)
        {
            if (!busy[b] && !tracker.Bitmap(0).IsSet(b))
            {
                Assert.True(_source.AsSpan(b * SectorsPerBlock, SectorsPerBlock).SequenceEqual(_target.AsSpan(b * SectorsPerBlock, SectorsPerBlock)),
                    $"block {b} is marked in sync but differs from the source");
            }
        }
    }

    private void Issue(ResyncPlanner planner)
    {
        foreach (ResyncRequest r in planner.NextRequests(_random.Next(1, 8) * 4096L))
        {
            _awaitingReply.Add((r, null));
        }
    }

    private void SourceRead()
    {
        int[] unread = [.. Enumerable.Range(0, _awaitingReply.Count).Where(k => _awaitingReply[k].Snapshot is null)];
        if (unread.Length > 0)
        {
            int i = unread[_random.Next(unread.Length)];
            ResyncRequest r = _awaitingReply[i].Request;
            _awaitingReply[i] = (r, _source.AsSpan((int)r.FirstBit * SectorsPerBlock, (int)r.BitCount * SectorsPerBlock).ToArray());
        }
    }

    private void ReplyArrives(ResyncPlanner planner)
    {
        int[] read = [.. Enumerable.Range(0, _awaitingReply.Count).Where(k => _awaitingReply[k].Snapshot is not null)];
        if (read.Length == 0)
        {
            return;
        }

        int i = read[_random.Next(read.Length)];
        (ResyncRequest r, long[]? snapshot) = _awaitingReply[i];
        _awaitingReply.RemoveAt(i);
        if (planner.BeginReply(r.Id) == ReplyDisposition.Write)
        {
            _writingReply.Add((r, snapshot!));
        }
        else
        {
            Discarded++;
        }
    }

    private void ReplyLands(ResyncPlanner planner)
    {
        if (_writingReply.Count == 0)
        {
            return;
        }

        int i = _random.Next(_writingReply.Count);
        (ResyncRequest r, long[] snapshot) = _writingReply[i];
        _writingReply.RemoveAt(i);
        snapshot.CopyTo(_target, (int)r.FirstBit * SectorsPerBlock);
        planner.CompleteReply(r.Id);
    }

    private void SourceWrite()
    {
        long firstSector = _random.Next(Blocks * SectorsPerBlock - 64);
        long sectors = _random.Next(1, 64);
        long version = ++_version;
        Array.Fill(_source, version, (int)firstSector, (int)sectors);
        _appOnTheWire.Enqueue((firstSector * 512, sectors * 512, version));
    }

    private void AppWriteArrives(ResyncPlanner planner)
    {
        if (_appWriting is not null || _appOnTheWire.Count == 0)
        {
            return; // replicated writes land in order, one at a time
        }

        (long offset, long length, long version) = _appOnTheWire.Peek();
        ApplicationWriteAdmission admission = planner.ApplicationWriteArrived(offset, length);
        if (admission.Admitted)
        {
            _appOnTheWire.Dequeue();
            _appWriting = (admission.Token, offset, length, version);
        }
        else
        {
            WaitedForReply++;
            Assert.All(admission.WaitForRequestIds, id => Assert.Contains(_writingReply, w => w.Request.Id == id));
        }
    }

    private void AppWriteLands(ResyncPlanner planner)
    {
        if (_appWriting is not { } w)
        {
            return;
        }

        Array.Fill(_target, w.Version, (int)(w.Offset / 512), (int)(w.Length / 512));
        planner.ApplicationWriteCompleted(w.Token);
        _appWriting = null;
    }
}

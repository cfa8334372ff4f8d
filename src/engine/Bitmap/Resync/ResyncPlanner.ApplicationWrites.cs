// Application writes that reach the SyncTarget during resync (replicated from the SyncSource), and the
// rule that keeps them from being lost:
//  1. Call ApplicationWriteArrived before submitting the write to the local disk.
//     - If a resync reply for an overlapping range is being written (BeginReply said Write and
//       CompleteReply was not called yet), the write is NOT admitted: submit it after those replies
//       completed, so it lands after the (possibly older) resync data.
//     - Otherwise it is admitted, and every overlapping request still waiting for its reply is marked
//       overtaken: its reply will be Discarded (it may carry data read before this write), its bits stay
//       out of sync and the range is requested again.
//  2. While an admitted write is in progress, no request is handed out for its blocks.
//  3. ApplicationWriteCompleted (the data is on disk) marks the 4 KiB blocks it fully covers in sync
//     (partly covered blocks keep their state), as DRBD's EE_MAY_SET_IN_SYNC.
// So resync data never overwrites newer application data, and a discarded reply is always fetched again.
using System.Collections.Immutable;

namespace Redundancy.Block.Engine.Bitmap.Resync;

public sealed partial class ResyncPlanner
{
    private readonly Dictionary<long, ApplicationWrite> _applicationWrites = [];
    private long _nextApplicationToken = 1;

    /// <summary>Application writes admitted and not yet completed.</summary>
    public int ApplicationWritesInProgress => _applicationWrites.Count;

    /// <summary>An application write to [offset, offset+length) is about to be submitted; see the file comment.</summary>
    public ApplicationWriteAdmission ApplicationWriteArrived(long offsetBytes, long lengthBytes)
    {
        Invariant.Assert(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= _bitmap.UsableSizeBytes, "write inside the data");
        long first = offsetBytes / ResyncRequest.BitmapBytesPerBit;
        long end = (offsetBytes + lengthBytes + ResyncRequest.BitmapBytesPerBit - 1) / ResyncRequest.BitmapBytesPerBit;
        List<InFlight> overlapping = OverlappingRequests(first, end);
        ImmutableArray<long> writing = [.. overlapping.Where(f => f.Writing).Select(f => f.Request.Id)];
        if (writing.Length > 0)
        {
            return new ApplicationWriteAdmission { Admitted = false, WaitForRequestIds = writing };
        }

        foreach (InFlight f in overlapping)
        {
            f.Overtaken = true;
        }

        long token = _nextApplicationToken++;
        _applicationWrites.Add(token, new ApplicationWrite(offsetBytes, lengthBytes, first, end));
        return new ApplicationWriteAdmission { Admitted = true, Token = token };
    }

    /// <summary>The admitted write is on disk: fully covered blocks are in sync. Returns the bits cleared.</summary>
    public long ApplicationWriteCompleted(long token)
    {
        Invariant.Assert(_applicationWrites.Remove(token, out ApplicationWrite? write), "complete an admitted application write");
        return _tracker.MarkInSync(Slot, write.OffsetBytes, write.LengthBytes);
    }

    /// <summary>The admitted write failed: nothing becomes in sync; its blocks may be requested again.</summary>
    public void ApplicationWriteFailed(long token) =>
        Invariant.Assert(_applicationWrites.Remove(token), "fail an admitted application write");

    private List<InFlight> OverlappingRequests(long first, long end)
    {
        long hit = first < end ? _inFlightBits.FindNextSet(first) : -1;
        if (hit < 0 || hit >= end)
        {
            return [];
        }

        return [.. _inFlight.Values.Where(f => f.Request.FirstBit < end && first < f.Request.FirstBit + f.Request.BitCount)];
    }

    /// <summary>Shortens a request [bit, limit) so it does not reach into a write in progress (bit itself inside one: returns bit).</summary>
    private long LimitByApplicationWrites(long bit, long limit)
    {
        foreach (ApplicationWrite w in _applicationWrites.Values)
        {
            if (w.FirstBit < limit && bit < w.EndBit)
            {
                limit = Math.Max(bit, w.FirstBit);
            }
        }

        return limit;
    }

    private sealed record ApplicationWrite(long OffsetBytes, long LengthBytes, long FirstBit, long EndBit);
}

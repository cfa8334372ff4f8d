// The SyncTarget's resync planner for one peer bitmap: hands out requests for out-of-sync bits in
// linear disk order (adjacent bits coalesced up to MaxRequestBytes, never crossing a boundary aligned
// to it), tracks them in flight and clears the bits as replies land. Resume works as in DRBD: done
// bits are cleared in the bitmap (persisted by BitmapTracker write-back), so a planner rebuilt from
// the bitmap after an interruption or crash never asks for them again. NextBit is the resync
// position; starting from a persisted one is an optimisation, as bits before it are still picked up
// by wrapping around at the end. Application writes during resync: see ResyncPlanner.ApplicationWrites.cs.
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Bitmap.Resync;

public sealed partial class ResyncPlanner
{
    public const long DefaultMaxRequestBytes = 1L << 20;

    private readonly BitmapTracker _tracker;
    private readonly QuickSyncBitmap _bitmap;
    private readonly QuickSyncBitmap _inFlightBits;
    private readonly QuickSyncBitmap _failedBits;
    private readonly Dictionary<long, InFlight> _inFlight = [];
    private readonly long _maxRequestBits;
    private long _nextId = 1;
    private long _totalBits;

    /// <param name="tracker">The bitmaps; bits are cleared through it so write-back sees them.</param>
    /// <param name="slot">Peer slot whose bitmap is resynced.</param>
    /// <param name="maxRequestBytes">Largest request (a multiple of 4 KiB, e.g. 128 KiB or 1 MiB).</param>
    /// <param name="startBit">Resync position to continue from (0 = recompute from the bitmap).</param>
    public ResyncPlanner(BitmapTracker tracker, int slot, long maxRequestBytes = DefaultMaxRequestBytes, long startBit = 0)
    {
        Invariant.Assert(maxRequestBytes >= MetadataLayout.BytesPerBit && maxRequestBytes % MetadataLayout.BytesPerBit == 0, "request size is whole 4 KiB blocks");
        _tracker = tracker;
        Slot = slot;
        _bitmap = tracker.Bitmap(slot);
        Invariant.Assert(startBit >= 0 && startBit <= _bitmap.BitCount, "resync position inside the bitmap");
        _inFlightBits = new QuickSyncBitmap(_bitmap.UsableSizeBytes);
        _failedBits = new QuickSyncBitmap(_bitmap.UsableSizeBytes);
        MaxRequestBytes = maxRequestBytes;
        _maxRequestBits = maxRequestBytes / MetadataLayout.BytesPerBit;
        NextBit = startBit;
        _totalBits = _bitmap.SetBitCount;
    }

    public int Slot { get; }
    public long MaxRequestBytes { get; }
    /// <summary>The resync position (DRBD's resync_next_bit): where the next request search starts.</summary>
    public long NextBit { get; private set; }
    public bool IsPaused { get; private set; }
    public int InFlightRequests => _inFlight.Count;
    public long InFlightBytes => _inFlightBits.OutOfSyncBytes;
    /// <summary>True when nothing is in flight and every out-of-sync bit left has failed (normally: none left).</summary>
    public bool IsFinished => _inFlight.Count == 0 && FindPlannable(0) < 0;

    /// <summary>
    /// Hands out requests for at most <paramref name="budgetBytes"/> (rounded down to 4 KiB), in disk
    /// order from the resync position. Empty when paused, when nothing is left, or when the next
    /// out-of-sync block is being written by an application write (retry after it completes).
    /// </summary>
    public IReadOnlyList<ResyncRequest> NextRequests(long budgetBytes)
    {
        var requests = new List<ResyncRequest>();
        long budgetBits = Math.Max(0, budgetBytes) / MetadataLayout.BytesPerBit;
        while (!IsPaused && budgetBits > 0)
        {
            long bit = FindPlannable(NextBit);
            if (bit < 0 && NextBit > 0)
            {
                bit = FindPlannable(0); // bits set behind the position: a second pass
            }

            if (bit < 0)
            {
                break;
            }

            NextBit = bit;
            long end = RunEnd(bit, budgetBits);
            if (end == bit)
            {
                break; // an application write is writing this block: wait for it
            }

            var request = new ResyncRequest(_nextId++, bit, end - bit);
            _inFlight.Add(request.Id, new InFlight(request));
            _inFlightBits.SetBits(bit, end - bit);
            requests.Add(request);
            NextBit = end;
            budgetBits -= end - bit;
        }

        return requests;
    }

    /// <summary>The in-flight request <paramref name="requestId"/>, to check a reply's offset and size against.</summary>
    public bool TryGetRequest(long requestId, out ResyncRequest request)
    {
        bool found = _inFlight.TryGetValue(requestId, out InFlight? f);
        request = f?.Request!;
        return found;
    }

    /// <summary>
    /// A reply (P_RS_DATA_REPLY) arrived: Write it and call CompleteReply, or Discard it (overtaken by an
    /// application write, or the request is unknown / was dropped by Interrupt).
    /// </summary>
    public ReplyDisposition BeginReply(long requestId)
    {
        if (!_inFlight.TryGetValue(requestId, out InFlight? f))
        {
            return ReplyDisposition.Discard;
        }

        Invariant.Assert(!f.Writing, "one reply per request");
        if (f.Overtaken)
        {
            Drop(f);
            return ReplyDisposition.Discard;
        }

        f.Writing = true;
        return ReplyDisposition.Write;
    }

    /// <summary>The reply's data is on disk: its bits are in sync. Returns the bits cleared.</summary>
    public long CompleteReply(long requestId)
    {
        Invariant.Assert(_inFlight.TryGetValue(requestId, out InFlight? f) && f.Writing, "complete a reply that is being written");
        _inFlight.Remove(requestId);
        _inFlightBits.ClearBits(f.Request.FirstBit, f.Request.BitCount);
        return _tracker.ClearBits(Slot, f.Request.FirstBit, f.Request.BitCount);
    }

    /// <summary>
    /// The peer could not serve the request (P_NEG_RS_DREPLY) or its write failed: the bits stay out of
    /// sync and are not asked again by this planner (DRBD's rs_failed; the target stays Inconsistent).
    /// </summary>
    public void FailRequest(long requestId)
    {
        Invariant.Assert(_inFlight.TryGetValue(requestId, out InFlight? f), "fail an in-flight request");
        _inFlight.Remove(requestId);
        _inFlightBits.ClearBits(f.Request.FirstBit, f.Request.BitCount);
        _failedBits.SetBits(f.Request.FirstBit, f.Request.BitCount);
    }

    /// <summary>pause-sync: no new requests; in-flight ones still complete.</summary>
    public void Pause()
    {
        IsPaused = true;
        _marks.Clear();
    }

    /// <summary>resume-sync.</summary>
    public void Resume() => IsPaused = false;

    /// <summary>
    /// The connection broke: every request still waiting for its reply is dropped (its bits stay out
    /// of sync; a late reply is Discarded) and the position moves back to the first of them, so the
    /// next pass asks for them again. Replies already being written are local disk writes: they stay
    /// tracked and are completed with CompleteReply as usual.
    /// </summary>
    public void Interrupt()
    {
        foreach (InFlight f in _inFlight.Values.Where(f => !f.Writing).ToList())
        {
            Drop(f);
        }
    }

    private void Drop(InFlight f)
    {
        _inFlight.Remove(f.Request.Id);
        _inFlightBits.ClearBits(f.Request.FirstBit, f.Request.BitCount);
        NextBit = Math.Min(NextBit, f.Request.FirstBit);
    }

    /// <summary>First out-of-sync bit at or after <paramref name="fromBit"/> that is neither in flight nor failed, or -1.</summary>
    private long FindPlannable(long fromBit)
    {
        long bit = fromBit;
        while (true)
        {
            bit = _bitmap.FindNextSet(bit);
            if (bit < 0)
            {
                return -1;
            }

            QuickSyncBitmap? skip = _inFlightBits.IsSet(bit) ? _inFlightBits : _failedBits.IsSet(bit) ? _failedBits : null;
            if (skip is null)
            {
                return bit;
            }

            bit = skip.FindNextClear(bit);
            if (bit < 0)
            {
                return -1;
            }
        }
    }

    /// <summary>End of the request starting at <paramref name="bit"/>: adjacent plannable bits, bounded by budget, size, alignment and application writes.</summary>
    private long RunEnd(long bit, long budgetBits)
    {
        long alignedEnd = ((bit / _maxRequestBits) + 1) * _maxRequestBits;
        long limit = Math.Min(Math.Min(bit + budgetBits, alignedEnd), _bitmap.BitCount);
        limit = LimitByApplicationWrites(bit, limit);
        long end = bit;
        while (end < limit && _bitmap.IsSet(end) && !_inFlightBits.IsSet(end) && !_failedBits.IsSet(end))
        {
            end++;
        }

        return end;
    }

    private sealed class InFlight(ResyncRequest request)
    {
        public ResyncRequest Request { get; } = request;
        /// <summary>An application write to this range arrived before the reply: the reply must be discarded.</summary>
        public bool Overtaken { get; set; }
        /// <summary>The reply is being written to disk.</summary>
        public bool Writing { get; set; }
    }
}

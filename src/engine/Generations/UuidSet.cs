// One side's generation identifiers as the connect-time sync handshake sees them for ONE connection:
// the current UUID, the bitmap UUID of the slot that tracks the OTHER node, and the history UUIDs
// (newest first). This is DRBD 8.4's two-node `uuid[UI_CURRENT..UI_HISTORY_END]` view, cut out of
// our DRBD-9-shaped GenerationIds (one bitmap UUID per peer slot) and written back after fix-ups.
using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Engine.Generations;

public sealed class UuidSet : IEquatable<UuidSet>
{
    [System.Runtime.CompilerServices.OverloadResolutionPriority(1)] // `[.. xs]` binds here, not to params
    public UuidSet(ulong current, ulong bitmap, ImmutableArray<ulong> history)
    {
        Invariant.Assert(!history.IsDefault, "history array is set");
        Invariant.Assert(history.Length <= Superblock.MaxHistoryUuids, "history UUIDs bounded");
        Current = current;
        Bitmap = bitmap;
        History = history;
    }

    public UuidSet(ulong current, ulong bitmap, params ulong[] history)
        : this(current, bitmap, ImmutableArray.Create(history))
    {
    }

    public ulong Current { get; }

    /// <summary>Bitmap UUID of the slot tracking the other node; 0 while in sync with it.</summary>
    public ulong Bitmap { get; }

    /// <summary>Older generations, newest first (DRBD's UI_HISTORY_START is index 0).</summary>
    public ImmutableArray<ulong> History { get; }

    /// <summary>History entry <paramref name="index"/>, or 0 when there is none (as DRBD's zeroed slots).</summary>
    public ulong HistoryAt(int index) => index < History.Length ? History[index] : 0;

    /// <summary>The view of <paramref name="ids"/> for the peer whose bitmap lives in <paramref name="peerSlot"/>.</summary>
    public static UuidSet FromGenerationIds(GenerationIds ids, int peerSlot)
    {
        Invariant.Assert(peerSlot >= 0 && peerSlot < ids.Bitmap.Length, "peer slot index");
        return new UuidSet(ids.Current, ids.Bitmap[peerSlot], ids.History);
    }

    /// <summary>Writes this view back into <paramref name="ids"/>: current, the slot's bitmap UUID, history.</summary>
    public GenerationIds ApplyTo(GenerationIds ids, int peerSlot)
    {
        Invariant.Assert(peerSlot >= 0 && peerSlot < ids.Bitmap.Length, "peer slot index");
        return new GenerationIds(Current, ids.Bitmap.SetItem(peerSlot, Bitmap), History);
    }

    public UuidSet WithCurrent(ulong current) => new(current, Bitmap, History);

    public UuidSet WithBitmap(ulong bitmap) => new(Current, bitmap, History);

    public UuidSet WithHistory(ImmutableArray<ulong> history) => new(Current, Bitmap, history);

    /// <summary>
    /// DRBD's drbd_uuid_move_history + `uuid[UI_HISTORY_START] = uuid`: <paramref name="uuid"/> becomes the
    /// newest history entry, the oldest falls off. 0 and JUST_CREATED name no generation and are not kept.
    /// </summary>
    public UuidSet PushHistory(ulong uuid)
    {
        if (uuid is 0 or GenerationIds.JustCreated)
        {
            return this;
        }

        var list = History.Insert(0, uuid);
        return WithHistory(list.Length > Superblock.MaxHistoryUuids ? list.RemoveAt(list.Length - 1) : list);
    }

    /// <summary>The newest history entry is dropped and the rest move up (undoing <see cref="PushHistory"/>).</summary>
    public UuidSet PopHistory() => History.IsEmpty ? this : WithHistory(History.RemoveAt(0));

    public override string ToString() =>
        $"{Current:X16}:{Bitmap:X16}:{string.Join(':', History.Select(h => h.ToString("X16", System.Globalization.CultureInfo.InvariantCulture)))}";

    public bool Equals(UuidSet? other) =>
        other is not null && Current == other.Current && Bitmap == other.Bitmap && History.SequenceEqual(other.History);

    public override bool Equals(object? obj) => Equals(obj as UuidSet);

    public override int GetHashCode() => HashCode.Combine(Current, Bitmap, History.Length);
}

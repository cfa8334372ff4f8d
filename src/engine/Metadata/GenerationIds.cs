// DRBD's generation identifiers: the current UUID, one bitmap UUID per peer slot (the generation that
// slot's bitmap records changes since; 0 while the peer is in sync) and the history UUIDs (older
// generations, newest first). The low bit of a UUID is the "was Primary" bit; comparisons ignore it.
using System.Collections.Immutable;

namespace Redundancy.Block.Engine.Metadata;

public readonly struct GenerationIds : IEquatable<GenerationIds>
{
    /// <summary>DRBD's UUID_JUST_CREATED: the current UUID of freshly created metadata.</summary>
    public const ulong JustCreated = 4;
    /// <summary>DRBD's UUID_PRIMARY: the low bit, set while the generation was made by a Primary.</summary>
    public const ulong PrimaryBit = 1;

    public GenerationIds(ulong current, ImmutableArray<ulong> bitmap, ImmutableArray<ulong> history)
    {
        Invariant.Assert(!bitmap.IsDefault && !history.IsDefault, "generation id arrays are set");
        Invariant.Assert(history.Length <= Superblock.MaxHistoryUuids, "history UUIDs bounded");
        Current = current;
        Bitmap = bitmap;
        History = history;
    }

    public ulong Current { get; }

    /// <summary>Bitmap UUID per peer slot (index = slot).</summary>
    public ImmutableArray<ulong> Bitmap { get; }

    /// <summary>Older generations, newest first, at most <see cref="Superblock.MaxHistoryUuids"/>.</summary>
    public ImmutableArray<ulong> History { get; }

    /// <summary>
    /// A new current UUID, as drbd_uuid_new_current: the old current becomes the bitmap UUID of every
    /// slot in <paramref name="slotDisconnected"/> whose bitmap UUID was 0 (so that peer resyncs only
    /// what changes from now on); when no slot takes it, it moves to the history. The new UUID is
    /// <paramref name="random"/> with the low bit set when <paramref name="primary"/>.
    /// </summary>
    public GenerationIds NewCurrentUuid(ulong random, bool primary, ReadOnlySpan<bool> slotDisconnected)
    {
        Invariant.Assert(slotDisconnected.Length == Bitmap.Length, "one disconnected flag per peer slot");
        ulong value = random & ~PrimaryBit;
        if (value is 0 or JustCreated)
        {
            value |= 1UL << 63; // 0 and JUST_CREATED have meanings of their own
        }

        var bitmap = Bitmap.ToBuilder();
        bool taken = false;
        for (int i = 0; i < bitmap.Count; i++)
        {
            if (slotDisconnected[i] && bitmap[i] == 0)
            {
                bitmap[i] = Current;
                taken = true;
            }
        }

        ImmutableArray<ulong> history = taken ? History : PushHistory(History, Current);
        return new GenerationIds(primary ? value | PrimaryBit : value, bitmap.MoveToImmutable(), history);
    }

    /// <summary>The current UUID with the primary bit set or cleared (done on promotion/demotion).</summary>
    public GenerationIds WithPrimaryBit(bool primary) =>
        new(primary ? Current | PrimaryBit : Current & ~PrimaryBit, Bitmap, History);

    /// <summary>
    /// Clears a slot's bitmap UUID after a finished resync (drbd_uuid_set_bitmap(0)): the old value
    /// moves to the history.
    /// </summary>
    public GenerationIds ClearBitmapUuid(int slot)
    {
        Invariant.Assert(slot >= 0 && slot < Bitmap.Length, "peer slot index");
        ulong old = Bitmap[slot];
        return old == 0 ? this : new GenerationIds(Current, Bitmap.SetItem(slot, 0), PushHistory(History, old));
    }

    /// <summary>True for a UUID made by a Primary (low bit set).</summary>
    public static bool IsPrimaryUuid(ulong uuid) => (uuid & PrimaryBit) != 0;

    /// <summary>Two UUIDs name the same generation when equal apart from the primary bit.</summary>
    public static bool SameGeneration(ulong a, ulong b) => (a & ~PrimaryBit) == (b & ~PrimaryBit);

    private static ImmutableArray<ulong> PushHistory(ImmutableArray<ulong> history, ulong uuid)
    {
        if (uuid is 0 or JustCreated)
        {
            return history; // DRBD keeps neither "no UUID" nor "just created" in the history
        }

        var list = history.Insert(0, uuid);
        return list.Length > Superblock.MaxHistoryUuids ? list.RemoveAt(list.Length - 1) : list;
    }

    public bool Equals(GenerationIds other) =>
        Current == other.Current && Bitmap.SequenceEqual(other.Bitmap) && History.SequenceEqual(other.History);

    public override bool Equals(object? obj) => obj is GenerationIds other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Current, Bitmap.Length, History.Length);

    public static bool operator ==(GenerationIds left, GenerationIds right) => left.Equals(right);

    public static bool operator !=(GenerationIds left, GenerationIds right) => !left.Equals(right);
}

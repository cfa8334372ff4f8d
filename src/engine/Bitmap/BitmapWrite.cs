// One bitmap write-back to perform: whole 4 KiB bitmap pages of one peer slot, as a bit range that
// MetadataStore.WriteBitmapBitsAsync takes directly.

namespace Redundancy.Block.Engine.Bitmap;

/// <summary>Bits [FirstBit, FirstBit+BitCount) of peer slot <see cref="Slot"/>: whole bitmap pages (the last one clamped to the data).</summary>
public readonly record struct BitmapWrite(int Slot, long FirstBit, long BitCount);

namespace Redundancy.Block.Engine.Bitmap;

/// <summary>
/// A copy of bitmap pages of one slot, taken while the bitmap could not change, to be written at
/// <see cref="SlotOffsetBytes"/> within the slot's on-disk area (MetadataStore.WriteBitmapBytesAsync).
/// </summary>
public sealed record BitmapPageImage(int Slot, long SlotOffsetBytes, byte[] Bytes);

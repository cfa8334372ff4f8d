// One peer slot of the superblock (DRBD 9's peer_dev_md_on_disk_9): which peer it belongs to, the
// generation its bitmap tracks, and where that bitmap is.

namespace Redundancy.Block.Engine.Metadata;

/// <param name="NodeId">The peer's node-id, or <see cref="Free"/> (-1) when the slot is unused.</param>
/// <param name="BitmapUuid">Generation the bitmap tracks changes since; 0 while in sync/connected.</param>
/// <param name="Flags">MDF_PEER_* flags.</param>
/// <param name="BitmapIndex">Bitmap slot holding this peer's bitmap, or -1 for none.</param>
public readonly record struct PeerSlot(int NodeId, ulong BitmapUuid, PeerSlotFlags Flags, int BitmapIndex)
{
    public const int Free = -1;

    public static PeerSlot Unused => new(Free, 0, PeerSlotFlags.None, -1);

    public bool IsFree => NodeId == Free;
}

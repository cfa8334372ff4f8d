// Valid metadata images for the metadata seed corpus, written by the real MetadataStore: external
// and internal placement, one to three peer slots, history UUIDs, set bitmap bits, AL transactions
// (wrapping the ring in one seed) and a torn superblock copy.
using System.Buffers.Binary;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Fuzz.Support;

namespace Redundancy.Block.Fuzz.Targets;

public static class MetadataSeeds
{
    public static IReadOnlyList<(string Name, byte[] Input)> All() =>
    [
        ("external-1-peer", Build(isInternal: false, diskSizeBytes: 8 << 20, peers: 1, alStripes: 1, alStripeSize4k: 8, transactions: 3, tearCopy: false)),
        ("external-3-peers-striped-al", Build(isInternal: false, diskSizeBytes: 16 << 20, peers: 3, alStripes: 2, alStripeSize4k: 4, transactions: 12, tearCopy: false)),
        ("internal-2-peers", Build(isInternal: true, diskSizeBytes: 4 << 20, peers: 2, alStripes: 1, alStripeSize4k: 8, transactions: 2, tearCopy: false)),
        ("internal-torn-copy", Build(isInternal: true, diskSizeBytes: 4 << 20, peers: 1, alStripes: 1, alStripeSize4k: 8, transactions: 0, tearCopy: true)),
    ];

    private static byte[] Build(bool isInternal, int diskSizeBytes, int peers, int alStripes, int alStripeSize4k, int transactions, bool tearCopy)
    {
        MetadataLayout layout;
        bool ok = isInternal
            ? MetadataLayout.TryCreateInternal(diskSizeBytes, peers, out layout, out string error, alStripes, alStripeSize4k)
            : MetadataLayout.TryCreateExternal(diskSizeBytes, MetaSize(diskSizeBytes, peers, alStripes * alStripeSize4k), peers, out layout, out error, alStripes, alStripeSize4k);
        if (!ok || !Superblock.TryCreateFresh(layout, new MetadataFormatOptions { NodeId = 0, PeerNodeIds = MetadataTarget.Peers(peers), DeviceUuid = 0xD00D, CreationTime = 1_700_000_000 },
            out Superblock fresh, out error))
        {
            throw new InvalidOperationException($"seed layout: {error}");
        }

        var device = new ArrayDevice((int)layout.MetaDeviceSizeBytes, canFastZero: true);
        var store = new MetadataStore(device, layout);
        Superblock written = store.FormatAsync(fresh).AsTask().GetAwaiter().GetResult();
        written = written with { CurrentUuid = 0xCAFE0001, HistoryUuids = [0xCAFE0000, 0xBEEF], Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate };
        store.WriteAsync(written).AsTask().GetAwaiter().GetResult();
        var bitmap = new QuickSyncBitmap(layout.UsableSizeBytes);
        bitmap.SetBits(3, 40);
        store.WriteBitmapAsync(0, bitmap).AsTask().GetAwaiter().GetResult();
        var slots = new uint[written.AlExtents];
        Array.Fill(slots, ActivityLogTransaction.FreeExtent);
        for (int t = 0; t < transactions; t++)
        {
            slots[t % 5] = (uint)(t % 2 == 0 ? 0 : ActivityLogTransaction.FreeExtent);
            var transaction = ActivityLogTransaction.Create((ulong)t, [new ActivityLogUpdate(t % 5, slots[t % 5])], slots);
            store.WriteActivityLogTransactionAsync(transaction).AsTask().GetAwaiter().GetResult();
        }

        var bytes = new byte[layout.MetaDeviceSizeBytes];
        device.ReadAsync(0, bytes).AsTask().GetAwaiter().GetResult();
        if (tearCopy)
        {
            bytes[layout.SuperblockOffsetBytes(1) + 100] ^= 0x40;
        }

        byte[] image = isInternal ? bytes[(int)layout.BitmapOffsetBytes..] : bytes;
        var header = new byte[3];
        header[0] = (byte)(isInternal ? 1 : 0);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(1), (ushort)(diskSizeBytes / 4096));
        return [.. header, .. image];
    }

    private static long MetaSize(long diskSizeBytes, int peers, int alBlocks) =>
        MetadataLayout.SuperblockAreaSizeBytes + (alBlocks * 4096L) + (peers * MetadataLayout.BitmapSlotSizeFor(diskSizeBytes));
}

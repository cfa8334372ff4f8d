// Per-volume state messages: Sizes, Uuids, State (DRBD's P_SIZES, P_UUIDS110, P_STATE), sent once
// per volume right after the handshake and again whenever they change; StateChangeRequest/Reply for
// changes the peer must agree to (promotion while connected, outdate, invalidate-remote, verify);
// SyncUuid when a resync starts.
using System.Buffers.Binary;
using System.Collections.Immutable;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>What a Sizes message asks of its receiver (DRBD's dds_flags, plus the resize exchange).</summary>
[Flags]
public enum SizesFlags : uint
{
    None = 0,
    /// <summary>`resize` on the sender: re-read your disk's size, agree on the new size and answer with ResizeReply.</summary>
    Resize = 1,
    /// <summary>The answer to <see cref="Resize"/>: the sender applied the new size (its current size).</summary>
    ResizeReply = 2,
    /// <summary>--assume-clean (DDSF_NO_RESYNC): the area a resize adds is not resynced.</summary>
    NoResync = 4,
}

/// <summary>Sizes of one volume on the sender (DRBD's P_SIZES). Size 40.</summary>
/// <param name="BackingSizeBytes">Size of the backing device (0 when Diskless).</param>
/// <param name="UsableSizeBytes">Data area after metadata, whole 4 KiB blocks (DRBD's d_size); the smallest of the nodes' wins; 0 when Diskless.</param>
/// <param name="RequestedSizeBytes">disk { size; } from the config, 0 for "all".</param>
/// <param name="MaxRequestBytes">Largest single write the sender accepts.</param>
/// <param name="CurrentSizeBytes">The sender's agreed device size now (DRBD's c_size, la-size).</param>
/// <param name="Flags">Resize exchange and --assume-clean.</param>
public readonly record struct SizesMessage(ulong BackingSizeBytes, ulong UsableSizeBytes, ulong RequestedSizeBytes, uint MaxRequestBytes,
    ulong CurrentSizeBytes = 0, SizesFlags Flags = SizesFlags.None)
    : IPeerMessage<SizesMessage>
{
    public const int Size = 40;
    public const uint MinMaxRequestBytes = 4096;
    private const uint KnownFlags = 7;

    public static MessageType Type => MessageType.Sizes;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, BackingSizeBytes);        // u64 backing size
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], UsableSizeBytes);    // u64 usable size
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], RequestedSizeBytes); // u64 requested size
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], MaxRequestBytes);   // u32 max request
        BinaryPrimitives.WriteUInt32BigEndian(destination[28..], (uint)Flags);       // u32 flags
        BinaryPrimitives.WriteUInt64BigEndian(destination[32..], CurrentSizeBytes);  // u64 current size
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out SizesMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        var m = new SizesMessage(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[16..]), BinaryPrimitives.ReadUInt32BigEndian(source[24..]),
            BinaryPrimitives.ReadUInt64BigEndian(source[32..]), (SizesFlags)BinaryPrimitives.ReadUInt32BigEndian(source[28..]));
        const ulong Max = WireFields.MaxDeviceBytes;
        error = m.UsableSizeBytes > m.BackingSizeBytes ? $"Sizes usable size {m.UsableSizeBytes} exceeds backing size {m.BackingSizeBytes}"
            : m.UsableSizeBytes % MetadataLayout.BytesPerBit != 0 ? $"Sizes usable size {m.UsableSizeBytes} is not whole 4 KiB blocks"
            : m.UsableSizeBytes > Max ? $"Sizes usable size {m.UsableSizeBytes} exceeds {Max}"
            : m.CurrentSizeBytes % MetadataLayout.BytesPerBit != 0 || m.CurrentSizeBytes > Max ? $"Sizes current size {m.CurrentSizeBytes} is not whole 4 KiB blocks up to {Max}"
            : m.UsableSizeBytes != 0 && m.CurrentSizeBytes > m.UsableSizeBytes ? $"Sizes current size {m.CurrentSizeBytes} exceeds usable size {m.UsableSizeBytes}"
            : m.RequestedSizeBytes % 512 != 0 || m.RequestedSizeBytes > Max ? $"Sizes requested size {m.RequestedSizeBytes} is not whole sectors up to {Max}"
            : m.MaxRequestBytes < MinMaxRequestBytes || m.MaxRequestBytes > FeaturesMessage.MaxFramePayloadLimitBytes
            ? $"Sizes max request {m.MaxRequestBytes} is outside {MinMaxRequestBytes}..{FeaturesMessage.MaxFramePayloadLimitBytes}"
            : WireFields.UnknownFlags(Type, (uint)m.Flags, KnownFlags)
            ?? ((m.Flags & (SizesFlags.Resize | SizesFlags.ResizeReply)) == (SizesFlags.Resize | SizesFlags.ResizeReply) ? "Sizes is both a resize request and its reply" : null);
        message = error is null ? m : default;
        return error is null;
    }
}

/// <summary>Flags sent with the generation identifiers.</summary>
[Flags]
public enum UuidFlags : uint
{
    None = 0,
    /// <summary>The sender was Primary and crashed (MDF_CRASHED_PRIMARY): rule 40 prefers it as sync source.</summary>
    CrashedPrimary = 1,
    /// <summary>The sender's data is consistent (MDF_CONSISTENT).</summary>
    Consistent = 2,
    /// <summary>The sender's disk was UpToDate (MDF_WAS_UP_TO_DATE).</summary>
    WasUpToDate = 4,
    /// <summary>new-current-uuid --clear-bitmap: skip the initial sync (both sides just created).</summary>
    SkipInitialSync = 8,
    /// <summary>
    /// The sender was connected to the receiver before and lost the connection, without restarting
    /// since (DRBD 9's UUID_FLAG_RECONNECT): it did not crash, so it holds every write it acknowledged.
    /// </summary>
    Reconnect = 16,
    /// <summary>
    /// The sender's disk failed under writes that completed through a peer, and no resync has
    /// rewritten it since: its copy of those blocks is older than the peer's, so with equal
    /// generations it is the sync target, whatever crashed-primary says (our extension).
    /// </summary>
    MissedWrites = 32,
}

/// <summary>Generation identifiers of one volume, for the receiver's decision table. 32 + 8 per history UUID.</summary>
/// <param name="Current">Current UUID (0 when Diskless).</param>
/// <param name="Bitmap">Bitmap UUID of the sender's slot for the receiver (0 = in sync).</param>
/// <param name="History">History UUIDs, newest first, none 0, at most 32.</param>
/// <param name="Flags">Crashed primary, consistent, ...</param>
/// <param name="DirtyBits">Set bits in the sender's bitmap for the receiver (discard-least-changes).</param>
public readonly record struct UuidsMessage(ulong Current, ulong Bitmap, ImmutableArray<ulong> History, UuidFlags Flags, ulong DirtyBits)
    : IPeerMessage<UuidsMessage>
{
    public const int MinSize = 32;
    public const int MaxSize = MinSize + 8 * Superblock.MaxHistoryUuids;
    private const uint KnownFlags = 0x3F;

    public static MessageType Type => MessageType.Uuids;
    public int EncodedLength => MinSize + 8 * History.Length;

    public int Write(Span<byte> destination)
    {
        Invariant.Assert(!History.IsDefault && History.Length <= Superblock.MaxHistoryUuids, "history UUIDs bounded");
        BinaryPrimitives.WriteUInt64BigEndian(destination, Current);                     // u64 current
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Bitmap);                 // u64 bitmap
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], DirtyBits);             // u64 dirty bits
        BinaryPrimitives.WriteUInt32BigEndian(destination[24..], (uint)Flags);           // u32 flags
        BinaryPrimitives.WriteUInt16BigEndian(destination[28..], (ushort)History.Length); // u16 history count
        BinaryPrimitives.WriteUInt16BigEndian(destination[30..], 0);                     // u16 reserved
        for (int i = 0; i < History.Length; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(destination[(MinSize + 8 * i)..], History[i]); // u64 history[i]
        }

        return EncodedLength;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out UuidsMessage message, out string? error)
    {
        message = default;
        if (!WireFields.MinLength(source, MinSize, Type, out error))
        {
            return false;
        }

        int count = BinaryPrimitives.ReadUInt16BigEndian(source[28..]);
        uint flags = BinaryPrimitives.ReadUInt32BigEndian(source[24..]);
        ulong dirty = BinaryPrimitives.ReadUInt64BigEndian(source[16..]);
        error = count > Superblock.MaxHistoryUuids ? $"Uuids history count {count} exceeds {Superblock.MaxHistoryUuids}"
            : source.Length != MinSize + 8 * count ? $"Uuids with {count} history UUIDs must be {MinSize + 8 * count} bytes, got {source.Length}"
            : dirty > WireFields.MaxDeviceBytes / MetadataLayout.BytesPerBit ? $"Uuids dirty bit count {dirty} exceeds any bitmap"
            : WireFields.UnknownFlags(Type, flags, KnownFlags) ?? WireFields.Reserved(Type, BinaryPrimitives.ReadUInt16BigEndian(source[30..]));
        if (error is not null)
        {
            return false;
        }

        var history = ImmutableArray.CreateBuilder<ulong>(count);
        for (int i = 0; i < count; i++)
        {
            ulong uuid = BinaryPrimitives.ReadUInt64BigEndian(source[(MinSize + 8 * i)..]);
            if (uuid == 0)
            {
                error = $"Uuids history[{i}] is 0";
                return false;
            }

            history.Add(uuid);
        }

        message = new UuidsMessage(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt64BigEndian(source[8..]),
            history.MoveToImmutable(), (UuidFlags)flags, dirty);
        return true;
    }

    public bool Equals(UuidsMessage other) =>
        Current == other.Current && Bitmap == other.Bitmap && Flags == other.Flags && DirtyBits == other.DirtyBits &&
        History.AsSpan().SequenceEqual(other.History.AsSpan());

    public override int GetHashCode() => HashCode.Combine(Current, Bitmap, Flags, DirtyBits, History.Length);
}

/// <summary>Flags sent with the state.</summary>
[Flags]
public enum StateFlags : ushort
{
    None = 0,
    /// <summary>connect --discard-my-data: the sender volunteers as split-brain victim.</summary>
    DiscardMyData = 1,
    /// <summary>The sender holds the RESOLVE_CONFLICTS tie-breaker for this connection.</summary>
    ResolveConflicts = 2,
    /// <summary>pause-sync on the sender (DRBD's user_isp).</summary>
    SyncPausedByUser = 4,
    /// <summary>resync-after holds the sender's resync (DRBD's aftr_isp).</summary>
    SyncPausedByDependency = 8,
    /// <summary>The sender's application I/O is suspended.</summary>
    Suspended = 16,
}

/// <summary>The sender's role and disk states for one volume. Size 8.</summary>
/// <param name="Role">The sender's role (Primary or Secondary).</param>
/// <param name="Disk">The sender's own disk state.</param>
/// <param name="PeerDisk">What the sender believes the receiver's disk state is.</param>
/// <param name="Replication">The sender's replication state towards the receiver.</param>
/// <param name="Flags">discard-my-data, resolve-conflicts, paused sync, suspended I/O.</param>
public readonly record struct StateMessage(Role Role, DiskState Disk, DiskState PeerDisk, ReplicationState Replication, StateFlags Flags)
    : IPeerMessage<StateMessage>
{
    public const int Size = 8;
    private const ushort KnownFlags = 0x1F;

    public static MessageType Type => MessageType.State;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        destination[0] = (byte)Role;                                          // u8 role
        destination[1] = (byte)Disk;                                          // u8 disk state
        destination[2] = (byte)PeerDisk;                                      // u8 peer disk state
        destination[3] = (byte)Replication;                                   // u8 replication state
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], (ushort)Flags); // u16 flags
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], 0);          // u16 reserved
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out StateMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        var m = new StateMessage((Role)source[0], (DiskState)source[1], (DiskState)source[2], (ReplicationState)source[3],
            (StateFlags)BinaryPrimitives.ReadUInt16BigEndian(source[4..]));
        error = m.Role is not (Role.Primary or Role.Secondary) ? $"State role {source[0]} is not Primary or Secondary"
            : m.Disk > DiskState.UpToDate || m.Disk == DiskState.DUnknown ? $"State disk state {source[1]} is not a local disk state"
            : m.PeerDisk > DiskState.UpToDate ? $"State peer disk state {source[2]} is unknown"
            : m.Replication > ReplicationState.Behind ? $"State replication state {source[3]} is unknown"
            : WireFields.UnknownFlags(Type, (ushort)m.Flags, KnownFlags) ?? WireFields.Reserved(Type, BinaryPrimitives.ReadUInt16BigEndian(source[6..]));
        message = error is null ? m : default;
        return error is null;
    }
}

/// <summary>What a StateChangeRequest asks.</summary>
public enum StateChangeKind : byte
{
    /// <summary>"May I become Primary?" (the receiver refuses with TwoPrimaries unless allow-two-primaries).</summary>
    BecomePrimary = 1,
    /// <summary>The sender demotes; the receiver may refuse nothing but learns it before the State.</summary>
    BecomeSecondary = 2,
    /// <summary>Fencing: the receiver marks its disk Outdated.</summary>
    OutdatePeer = 3,
    /// <summary>invalidate-remote: the receiver becomes a full sync target.</summary>
    InvalidatePeer = 4,
    /// <summary>invalidate: the sender becomes a full sync target of the receiver.</summary>
    InvalidateSelf = 5,
    PauseSync = 6,
    ResumeSync = 7,
    /// <summary>verify: Argument is the start offset in bytes (whole 4 KiB blocks).</summary>
    StartVerify = 8,
    /// <summary>The device grew with the sender, which syncs the new area: the receiver becomes its (bitmap) sync target.</summary>
    ResyncAfterGrow = 9,
}

[Flags]
public enum StateChangeRequestFlags : byte
{
    None = 0,
    /// <summary>--force.</summary>
    Force = 1,

    /// <summary>invalidate / invalidate-remote with --reset-bitmap=no: resync only what the bitmaps already mark out-of-sync.</summary>
    KeepBitmap = 2,
}

/// <summary>A state change the receiver must agree to. Size 16.</summary>
public readonly record struct StateChangeRequestMessage(uint RequestId, StateChangeKind Kind, StateChangeRequestFlags Flags, ulong Argument)
    : IPeerMessage<StateChangeRequestMessage>
{
    public const int Size = 16;

    public static MessageType Type => MessageType.StateChangeRequest;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, RequestId);     // u32 request id
        destination[4] = (byte)Kind;                                        // u8 kind
        destination[5] = (byte)Flags;                                       // u8 flags
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], 0);        // u16 reserved
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], Argument); // u64 argument (StartVerify offset)
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out StateChangeRequestMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        var m = new StateChangeRequestMessage(BinaryPrimitives.ReadUInt32BigEndian(source), (StateChangeKind)source[4],
            (StateChangeRequestFlags)source[5], BinaryPrimitives.ReadUInt64BigEndian(source[8..]));
        error = m.Kind is < StateChangeKind.BecomePrimary or > StateChangeKind.ResyncAfterGrow ? $"StateChangeRequest kind {source[4]} is unknown"
            : WireFields.UnknownFlags(Type, (byte)m.Flags, (byte)(StateChangeRequestFlags.Force | StateChangeRequestFlags.KeepBitmap))
            ?? WireFields.Reserved(Type, BinaryPrimitives.ReadUInt16BigEndian(source[6..]))
            ?? (m.Kind == StateChangeKind.StartVerify
                ? (m.Argument % MetadataLayout.BytesPerBit != 0 || m.Argument > WireFields.MaxDeviceBytes ? $"StateChangeRequest verify start {m.Argument} is not a 4 KiB block offset" : null)
                : WireFields.Reserved(Type, m.Argument));
        message = error is null ? m : default;
        return error is null;
    }
}

/// <summary>Answer to a StateChangeRequest: Success, or why not (StateChangeResult). Size 8.</summary>
public readonly record struct StateChangeReplyMessage(uint RequestId, StateChangeResult Result) : IPeerMessage<StateChangeReplyMessage>
{
    public const int Size = 8;

    public static MessageType Type => MessageType.StateChangeReply;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, RequestId);       // u32 request id
        BinaryPrimitives.WriteInt32BigEndian(destination[4..], (int)Result); // i32 result (drbd_state_rv style)
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out StateChangeReplyMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        var result = (StateChangeResult)BinaryPrimitives.ReadInt32BigEndian(source[4..]);
        if (!Enum.IsDefined(result))
        {
            error = $"StateChangeReply result {(int)result} is unknown";
            return false;
        }

        message = new StateChangeReplyMessage(BinaryPrimitives.ReadUInt32BigEndian(source), result);
        return true;
    }
}

/// <summary>
/// The requester of a granted StateChangeRequest gives it up (DRBD 9's P_TWOPC_ABORT): it did not
/// carry the change out (refused elsewhere, timed out, or its own rules changed their mind), so the
/// receiver stops holding back for it. A carried-out promotion needs no message: the State that
/// announces Primary is the commit. Size 8.
/// </summary>
public readonly record struct StateChangeAbortMessage(uint RequestId) : IPeerMessage<StateChangeAbortMessage>
{
    public const int Size = 8;

    public static MessageType Type => MessageType.StateChangeAbort;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, RequestId);  // u32 request id
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], 0);     // u32 reserved
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out StateChangeAbortMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        uint requestId = BinaryPrimitives.ReadUInt32BigEndian(source);
        error = requestId == 0 ? "StateChangeAbort request id 0 names no request" : WireFields.Reserved(Type, BinaryPrimitives.ReadUInt32BigEndian(source[4..]));
        message = error is null ? new StateChangeAbortMessage(requestId) : default;
        return error is null;
    }
}

/// <summary>The UUID the sync target records as its bitmap UUID when a resync starts. Size 8.</summary>
public readonly record struct SyncUuidMessage(ulong Uuid) : IPeerMessage<SyncUuidMessage>
{
    public const int Size = 8;

    public static MessageType Type => MessageType.SyncUuid;
    public int EncodedLength => Size;

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, Uuid); // u64 sync UUID
        return Size;
    }

    public static bool TryRead(ReadOnlySpan<byte> source, out SyncUuidMessage message, out string? error)
    {
        message = default;
        if (!WireFields.ExactLength(source, Size, Type, out error))
        {
            return false;
        }

        ulong uuid = BinaryPrimitives.ReadUInt64BigEndian(source);
        error = uuid is 0 or GenerationIds.JustCreated ? $"SyncUuid {uuid} is not a generation" : null;
        message = error is null ? new SyncUuidMessage(uuid) : default;
        return error is null;
    }
}

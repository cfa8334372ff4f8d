using System.Buffers.Binary;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.Peers.Protocol.WireTestHelpers;

namespace Redundancy.Block.Engine.Tests.Peers.Protocol;

/// <summary>Every field that can be invalid is refused, with a reason that names it.</summary>
public class MessageValidationTests
{
    private static void Refused<T>(T valid, Action<byte[]> corrupt, string expected, byte[]? trailing = null)
        where T : struct, IPeerMessage<T>
    {
        byte[] payload = [.. Payload(valid), .. trailing ?? []];
        Assert.True(T.TryRead(payload, out _, out string? error), error); // valid before
        corrupt(payload);
        Assert.False(T.TryRead(payload, out _, out error));
        Assert.Contains(expected, error);
    }

    /// <summary>A message that writes fine but must not be read back.</summary>
    private static void Invalid<T>(T message, string expected, byte[]? trailing = null) where T : struct, IPeerMessage<T>
    {
        Assert.False(T.TryRead([.. Payload(message), .. trailing ?? []], out _, out string? error));
        Assert.Contains(expected, error);
    }

    private static Action<byte[]> Byte(int index, byte value) => p => p[index] = value;
    private static Action<byte[]> U16(int index, ushort value) => p => BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(index), value);
    private static Action<byte[]> U32(int index, uint value) => p => BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(index), value);
    private static Action<byte[]> U64(int index, ulong value) => p => BinaryPrimitives.WriteUInt64BigEndian(p.AsSpan(index), value);

    [Fact]
    public void Handshake_fields()
    {
        var features = new FeaturesMessage(1, 2, FeatureFlags.Trim, 1 << 20);
        Refused(features, U16(0, 0), "not a valid range");
        Refused(features, U16(0, 3), "not a valid range");
        Refused(features, U32(4, 1 << 20), "unknown flags");
        Refused(features, U32(8, 4095), "max frame payload 4095");
        Refused(features, U32(8, (64 << 20) + 1), "max frame payload");
        Refused(features, U32(12, 1), "reserved");

        var hello = new HelloMessage(0, 1, "r0", "alpha");
        Refused(hello, Byte(0, 32), "must be 0..31");
        Refused(hello, Byte(1, 0), "both 0");
        Refused(hello, U16(2, 1), "reserved");
        Invalid(new HelloMessage(0, 1, "", "alpha"), "must not be empty");
        Invalid(new HelloMessage(0, 1, "r0", ""), "must not be empty");
        Refused(hello, U16(4, 200), "resource name is truncated");
        Refused(hello, Byte(6, 0x0A), "without control characters");
        Refused(hello, Byte(6, 0xFF), "valid UTF-8");
        Invalid(new HelloMessage(0, 1, "r0", new string('n', 65)), "at most 64 bytes");

        Refused(new AuthChallengeMessage(new byte[64].Select((_, i) => (byte)i).ToArray()), p => Array.Clear(p), "all zero");
        Refused(new AuthResponseMessage(Digest.Compute(DigestAlgorithm.Sha1, "x"u8)), Byte(0, 32), "does not match");
        Refused(new AuthResponseMessage(Digest.Compute(DigestAlgorithm.Sha1, "x"u8)), Byte(0, 7), "not that of any digest");
        Refused(new AuthResponseMessage(Digest.Compute(DigestAlgorithm.Md5, "x"u8)), p => { p[0] = 4; Array.Resize(ref p, 5); }, "does not match");

        var settings = new ProtocolSettingsMessage(ReplicationProtocol.C, 0, 0, 0, 0, 0, 0, 0, 0);
        Refused(settings, Byte(0, 4), "protocol 4 is not A, B or C");
        Refused(settings, Byte(1, 7), "after-sb-0pri 7");
        Refused(settings, Byte(2, 5), "after-sb-1pri 5");
        Refused(settings, Byte(3, 3), "after-sb-2pri 3");
        Refused(settings, U16(4, 4), "unknown flags");
        Refused(settings, Byte(6, 6), "data-integrity-alg 6");
        Refused(settings, Byte(7, 6), "csums-alg 6");
        Refused(settings, Byte(8, 6), "verify-alg 6");
        Refused(settings, Byte(9, 2), "compression 2");
        Refused(settings, U16(10, 1), "reserved");
        Refused(settings, p => { p[0] = 1; p[5] = 1; }, "allow-two-primaries requires protocol C");
    }

    [Fact]
    public void Volume_state_fields()
    {
        var sizes = new SizesMessage(1 << 30, 1 << 29, 0, 1 << 20);
        Refused(sizes, U64(8, (1UL << 30) + 4096), "exceeds backing size");
        Refused(sizes, U64(8, 4097), "not whole 4 KiB blocks");
        Refused(sizes, p => { BinaryPrimitives.WriteUInt64BigEndian(p, ulong.MaxValue); BinaryPrimitives.WriteUInt64BigEndian(p.AsSpan(8), 1UL << 60); }, "exceeds");
        Refused(sizes, U64(16, 513), "requested size 513");
        Refused(sizes, U32(24, 4095), "max request 4095");
        Refused(sizes, U32(28, 8), "unknown flags");
        Refused(sizes, U32(28, 3), "both a resize request and its reply");
        Refused(sizes, U64(32, 4097), "current size 4097");
        Refused(sizes, U64(32, (1UL << 29) + 4096), "exceeds usable size");

        var uuids = new UuidsMessage(11, 12, [13, 14], UuidFlags.Consistent, 5);
        Refused(uuids, U16(28, 33), "history count 33");
        Refused(uuids, U16(28, 3), "must be 56 bytes, got 48");
        Refused(uuids, U32(24, 0x40), "unknown flags");
        Refused(uuids, U16(30, 1), "reserved");
        Refused(uuids, U64(40, 0), "history[1] is 0");
        Refused(uuids, U64(16, ulong.MaxValue), "dirty bit count");

        var state = new StateMessage(Role.Primary, DiskState.UpToDate, DiskState.UpToDate, ReplicationState.Established, 0);
        Refused(state, Byte(0, (byte)Role.Unknown), "role 0");
        Refused(state, Byte(1, (byte)DiskState.DUnknown), "not a local disk state");
        Refused(state, Byte(1, 10), "not a local disk state");
        Refused(state, Byte(2, 10), "peer disk state 10");
        Refused(state, Byte(3, 15), "replication state 15");
        Refused(state, U16(4, 0x20), "unknown flags");
        Refused(state, U16(6, 1), "reserved");

        var request = new StateChangeRequestMessage(1, StateChangeKind.BecomePrimary, 0, 0);
        Refused(request, Byte(4, 0), "kind 0");
        Refused(request, Byte(4, 10), "kind 10");
        Refused(request, Byte(5, 4), "unknown flags");
        Refused(request, U16(6, 1), "reserved");
        Refused(request, U64(8, 1), "reserved");
        Refused(new StateChangeRequestMessage(1, StateChangeKind.StartVerify, 0, 4096), U64(8, 4097), "verify start 4097");
        Refused(new StateChangeReplyMessage(1, StateChangeResult.Success), U32(4, 77), "result 77");
        var abort = new StateChangeAbortMessage(0x8000_0001);
        Refused(abort, U32(0, 0), "request id 0");
        Refused(abort, U32(4, 1), "reserved");
        Invalid(abort, "StateChangeAbort payload must be 8 bytes, got 9", trailing: [0]);
        Refused(new SyncUuidMessage(9), U64(0, 0), "not a generation");
        Refused(new SyncUuidMessage(9), U64(0, 4), "not a generation");
    }

    [Fact]
    public void Data_path_fields()
    {
        byte[] block = new byte[4096];
        var data = new DataMessage(0, 4096, 1, 1, DataFlags.SendWriteAck);
        Refused(data, U32(28, 0x80), "unknown flags", block);
        Refused(data, U32(28, (uint)(DataFlags.Trim | DataFlags.Zeroes)), "both TRIM and ZEROES", block);
        Refused(data, U32(28, (uint)(DataFlags.Trim | DataFlags.Compressed)), "cannot be COMPRESSED", block);
        Refused(data, U32(28, (uint)(DataFlags.SendReceiveAck | DataFlags.SendWriteAck)), "both RecvAck and WriteAck", block);
        Refused(data, U32(28, (uint)DataFlags.Trim), "followed by 4096 bytes", block);
        Refused(data, U32(28, (uint)DataFlags.Compressed), "COMPRESSED payload of 4096", block);
        Refused(data, U32(24, 0), "pure FLUSH", block);
        Refused(data, U64(0, 1UL << 56), "beyond the largest device", block);
        Refused(data, U32(24, 8192), "followed by 4096 bytes", block);
        Refused(data, Byte(32, 5), "digest length 5", block);
        Assert.False(DataMessage.TryRead(Payload(new DataMessage(0, 4096, 1, 1, 0, Digest.Compute(DigestAlgorithm.Sha512, block)))[..50], out _, out string? error));
        Assert.Contains("64-byte digest is truncated", error);
        Invalid(new DataMessage(0, 4096, 1, 1, 0, Digest.Compute(DigestAlgorithm.Sha512, block)), "followed by 0 bytes");
        Refused(data, Byte(33, 1), "reserved", block);
        Refused(data, U32(36, 1), "reserved", block);
        Refused(new DataMessage(0, 0, 1, 1, DataFlags.Flush), U64(0, 4096), "offset 0");

        var ack = new AckMessage(AckKind.WriteAck, 0, 4096, 1, 1);
        Refused(ack, Byte(28, 0), "kind 0");
        Refused(ack, Byte(28, 6), "kind 6");
        Refused(ack, Byte(29, 1), "reserved");
        Refused(ack, U64(0, ulong.MaxValue), "beyond the largest device");
        Refused(new BarrierAckMessage(1, 1), U32(12, 1), "reserved");
        Refused(new OutOfSyncMessage(0, 4096), U32(8, 0), "length is 0");
        Refused(new OutOfSyncMessage(0, 4096), U32(12, 1), "reserved");
    }

    [Fact]
    public void Resync_verify_bitmap_and_control_fields()
    {
        var request = new RsDataRequestMessage(4096, 4096, 1);
        Refused(request, U64(0, 4097), "whole 4 KiB blocks");
        Refused(request, U32(16, 100), "whole 4 KiB blocks");
        Refused(request, U32(16, 0), "length is 0");
        Refused(request, U32(20, 1), "reserved");
        Refused(new RsDataReplyMessage(0, 4096, 1, RsDataFlags.Zeroes), U32(20, 3), "both COMPRESSED and ZEROES");
        Refused(new RsDataReplyMessage(0, 4096, 1, RsDataFlags.Zeroes), U32(20, 8), "unknown flags");
        Refused(new RsDataReplyMessage(0, 4096, 1, RsDataFlags.Zeroes), U32(20, 6), "digest length");
        Refused(new RsDataReplyMessage(0, 4096, 1, RsDataFlags.Zeroes), U32(20, 0), "followed by 0 bytes");
        var read = new DataRequestMessage(512, 512, 1);
        Refused(read, U32(16, 0), "length is 0");
        Refused(read, U64(0, ulong.MaxValue - 10), "beyond the largest device");
        Refused(read, U32(20, 1), "reserved");
        Refused(new NegDReplyMessage(0, 4096, 1), U32(20, 1), "reserved");
        Refused(new DataReplyMessage(0, 8, 1), U32(16, 9), "followed by 8 bytes", new byte[8]);
        Refused(new DataReplyMessage(0, 8, 1), U32(20, 2), "unknown flags", new byte[8]);
        Refused(new DataReplyMessage(0, 8, 1), U32(20, 1), "digest length 0", new byte[8]);
        Invalid(new DataReplyMessage(0, 8, 1), "followed by 0 bytes");
        var csum = new CsumRsRequestMessage(0, 4096, 1, Digest.Compute(DigestAlgorithm.Crc32C, "x"u8));
        Refused(csum, Byte(24, 3), "digest length 3");
        Refused(csum, Byte(24, 16), "does not match");
        Refused(new OvReplyMessage(0, 4096, 1, Digest.Compute(DigestAlgorithm.Sha256, "x"u8)), U32(20, 1), "reserved");
        Refused(new OvResultMessage(0, 4096, 1, true), U32(20, 2), "unknown flags");

        var chunk = new BitmapChunkMessage(0, 16, BitmapEncoding.Raw, 0);
        Refused(chunk, Byte(16, 3), "encoding 3", [0, 0]);
        Refused(chunk, Byte(17, 4), "unknown flags", [0, 0]);
        Refused(chunk, Byte(17, 2), "Raw cannot have StartsWithSet", [0, 0]);
        Refused(chunk, U16(18, 1), "reserved", [0, 0]);
        Refused(chunk, U64(8, 17), "needs 3 bytes, got 2", [0, 0]);
        Refused(chunk, U64(0, ulong.MaxValue - 1), "exceed any bitmap", [0, 0]);
        Refused(chunk, U64(8, 0), "empty last chunk", [0, 0]);
        Invalid(new BitmapChunkMessage(0, 16, BitmapEncoding.RunLength, 0), "body is empty");
        Assert.False(BitmapChunkMessage.TryRead([.. Payload(new BitmapChunkMessage(0, 1 << 20, BitmapEncoding.RunLength, 0)), .. new byte[16385]], out _, out string? error));
        Assert.Contains("exceeds 16384", error);

        var bye = new DisconnectMessage(DisconnectReason.Requested, "down");
        Refused(bye, U16(0, 0), "reason 0");
        Refused(bye, U16(0, 10), "reason 10");
        Refused(bye, U16(2, 1), "reserved");
        Refused(bye, U16(4, 5), "truncated");
        Refused(bye, Byte(6, 0x1B), "control characters");
        Invalid(new DisconnectMessage(DisconnectReason.Requested, new string('x', 1025)), "at most 1024 bytes");
        Assert.False(PingMessage.TryRead([0], out _, out error));
        Assert.Contains("must be 0 bytes", error);
    }
}

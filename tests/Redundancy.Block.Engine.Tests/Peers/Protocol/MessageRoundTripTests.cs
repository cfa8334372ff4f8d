using System.Buffers;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;
using static Redundancy.Block.Engine.Tests.Peers.Protocol.WireTestHelpers;

namespace Redundancy.Block.Engine.Tests.Peers.Protocol;

public class MessageRoundTripTests
{
    private static readonly Digest Sha256 = Digest.Compute(DigestAlgorithm.Sha256, "block"u8);
    private static readonly Digest Crc = Digest.Compute(DigestAlgorithm.Crc32C, "block"u8);

    /// <summary>
    /// Frames the message, reads it back through a segmented FrameReader and T.TryRead, and checks
    /// that every shorter payload and one with an extra byte are refused with a reason. A compressed
    /// body has no fixed length (the frame's length is authoritative): only its header is truncated.
    /// </summary>
    private static T RoundTrip<T>(T message, byte[]? trailing = null, bool compressed = false) where T : struct, IPeerMessage<T>
    {
        Assert.True(MessageTypes.TryGetInfo(T.Type, out var info));
        ushort volume = info.Scope == MessageScope.Volume ? (ushort)3 : (ushort)0;
        var buffer = Segmented(Frame(volume, message, trailing), 7);
        Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out var header, out var payload, out string? error), error);
        Assert.Equal((T.Type, volume), (header.Type, header.Volume));
        byte[] bytes = payload.ToArray();
        Assert.True(T.TryRead(bytes, out var back, out error), error);
        Assert.Equal(message, back);
        for (int n = 0; n < (compressed ? message.EncodedLength + 1 : bytes.Length); n++)
        {
            Assert.False(T.TryRead(bytes[..n], out _, out error), $"{T.Type} truncated to {n} bytes is refused");
            Assert.False(string.IsNullOrEmpty(error));
        }

        if (!compressed)
        {
            Assert.False(T.TryRead([.. bytes, 0], out _, out error), $"{T.Type} with an extra byte is refused");
            Assert.False(string.IsNullOrEmpty(error));
        }

        return back;
    }

    [Fact]
    public void Fixed_sizes_are_pinned()
    {
        Assert.Equal(16, FeaturesMessage.Size);
        Assert.Equal(64, AuthChallengeMessage.Size);
        Assert.Equal(12, ProtocolSettingsMessage.Size);
        Assert.Equal(40, SizesMessage.Size);
        Assert.Equal(32, UuidsMessage.MinSize);
        Assert.Equal(32 + 8 * 32, UuidsMessage.MaxSize);
        Assert.Equal(8, StateMessage.Size);
        Assert.Equal(16, StateChangeRequestMessage.Size);
        Assert.Equal(8, StateChangeReplyMessage.Size);
        Assert.Equal(8, StateChangeAbortMessage.Size);
        Assert.Equal(8, SyncUuidMessage.Size);
        Assert.Equal(40, DataMessage.Size);
        Assert.Equal(32, AckMessage.Size);
        Assert.Equal(8, BarrierMessage.Size);
        Assert.Equal(16, BarrierAckMessage.Size);
        Assert.Equal(16, OutOfSyncMessage.Size);
        Assert.Equal(0, PingMessage.Size);
        Assert.Equal(0, PingAckMessage.Size);
        Assert.Equal(20, BitmapChunkMessage.Size);
        Assert.Equal(24, RsDataRequestMessage.Size);
        Assert.Equal(24, RsDataReplyMessage.Size);
        Assert.Equal(24, RsWriteAckMessage.Size);
        Assert.Equal(24, RsIsInSyncMessage.Size);
        Assert.Equal(24, NegRsDReplyMessage.Size);
        Assert.Equal(24, DataRequestMessage.Size);
        Assert.Equal(24, DataReplyMessage.Size);
        Assert.Equal(24, NegDReplyMessage.Size);
        Assert.Equal(24, RsCancelMessage.Size);
        Assert.Equal(24, OvRequestMessage.Size);
        Assert.Equal(24, OvResultMessage.Size);
        Assert.Equal(29, CsumRsRequestMessage.MinSize);
        Assert.Equal(89, OvReplyMessage.MaxSize);
    }

    [Fact]
    public void Handshake_messages_round_trip()
    {
        RoundTrip(new FeaturesMessage(1, 3, FeatureFlags.Lz4Compression | FeatureFlags.Authentication, 1 << 20));
        RoundTrip(new HelloMessage(0, 1, "r0", "alpha"));
        RoundTrip(new HelloMessage(31, 2, new string('r', 64), "ünïcode-node"));
        byte[] challenge = Enumerable.Range(1, 64).Select(i => (byte)i).ToArray();
        var back = RoundTrip(new AuthChallengeMessage(challenge));
        Assert.Equal(challenge, back.Bytes.ToArray());
        RoundTrip(new AuthResponseMessage(Sha256));
        RoundTrip(new AuthResponseMessage(Digest.Compute(DigestAlgorithm.Sha512, "x"u8)));
        RoundTrip(new ProtocolSettingsMessage(ReplicationProtocol.C, AfterSb0Pri.DiscardLocal, AfterSb1Pri.CallPriLostAfterSb,
            AfterSb2Pri.ViolentlyAs0p, ProtocolSettingsFlags.AllowTwoPrimaries | ProtocolSettingsFlags.AlwaysAsbp,
            DigestAlgorithm.Crc32C, DigestAlgorithm.Sha1, DigestAlgorithm.Sha256, CompressionAlgorithm.Lz4));
    }

    [Fact]
    public void Volume_state_messages_round_trip()
    {
        RoundTrip(new SizesMessage(1L << 40, (1L << 40) - (1 << 20), 1L << 39, 1 << 20));
        RoundTrip(new SizesMessage(0, 0, 0, 4096)); // Diskless
        RoundTrip(new SizesMessage(80 << 20, 76 << 20, 0, 1 << 20, 60 << 20, SizesFlags.Resize | SizesFlags.NoResync));
        RoundTrip(new SizesMessage(80 << 20, 76 << 20, 0, 1 << 20, 76 << 20, SizesFlags.ResizeReply));
        RoundTrip(new SizesMessage(0, 0, 0, 4096, 1 << 20)); // Diskless: its current size is the one it learnt
        RoundTrip(new UuidsMessage(0xABCDEF01, 0x1234, [], UuidFlags.None, 0));
        RoundTrip(new UuidsMessage(0xABCDEF01, 0, [.. Enumerable.Range(1, 32).Select(i => (ulong)i * 1000)],
            UuidFlags.CrashedPrimary | UuidFlags.Consistent | UuidFlags.WasUpToDate | UuidFlags.SkipInitialSync | UuidFlags.Reconnect | UuidFlags.MissedWrites, 12345));
        RoundTrip(new StateMessage(Role.Primary, DiskState.UpToDate, DiskState.Inconsistent, ReplicationState.SyncSource,
            StateFlags.DiscardMyData | StateFlags.ResolveConflicts | StateFlags.SyncPausedByUser | StateFlags.SyncPausedByDependency | StateFlags.Suspended));
        RoundTrip(new StateMessage(Role.Secondary, DiskState.Diskless, DiskState.DUnknown, ReplicationState.Off, StateFlags.None));
        RoundTrip(new StateChangeRequestMessage(9, StateChangeKind.BecomePrimary, StateChangeRequestFlags.Force, 0));
        RoundTrip(new StateChangeRequestMessage(10, StateChangeKind.StartVerify, StateChangeRequestFlags.None, 8192));
        RoundTrip(new StateChangeRequestMessage(11, StateChangeKind.ResyncAfterGrow, StateChangeRequestFlags.None, 0));
        RoundTrip(new StateChangeReplyMessage(9, StateChangeResult.TwoPrimaries));
        RoundTrip(new StateChangeReplyMessage(10, StateChangeResult.Success));
        RoundTrip(new StateChangeReplyMessage(0x8000_0001, StateChangeResult.ConcurrentStateChange));
        RoundTrip(new StateChangeReplyMessage(0x8000_0002, StateChangeResult.Timeout));
        RoundTrip(new StateChangeAbortMessage(0x8000_0001));
        RoundTrip(new SyncUuidMessage(0x77));
    }

    [Fact]
    public void Data_path_messages_round_trip()
    {
        byte[] block = Enumerable.Range(0, 4096).Select(i => (byte)i).ToArray();
        RoundTrip(new DataMessage(512, 4096, 1, 2, DataFlags.Fua | DataFlags.SendWriteAck), block);
        RoundTrip(new DataMessage(3, 4096, 1, 2, DataFlags.SendReceiveAck, Digest.Compute(DigestAlgorithm.Sha256, block)), block);
        RoundTrip(new DataMessage(0, 4096, 1, 2, DataFlags.Compressed, Crc), block[..100], compressed: true);
        RoundTrip(new DataMessage(1 << 20, 1 << 20, 5, 6, DataFlags.Trim));
        RoundTrip(new DataMessage(1 << 20, 1 << 20, 5, 6, DataFlags.Zeroes | DataFlags.Fua | DataFlags.SendWriteAck));
        RoundTrip(new DataMessage(0, 0, 7, 8, DataFlags.Flush | DataFlags.SendWriteAck));
        foreach (AckKind kind in Enum.GetValues<AckKind>())
        {
            RoundTrip(new AckMessage(kind, 4096, 512, ulong.MaxValue, 99));
        }

        RoundTrip(new BarrierMessage(ulong.MaxValue));
        RoundTrip(new BarrierAckMessage(4, 2048));
        RoundTrip(new OutOfSyncMessage(4096, 8192));
        RoundTrip(new PingMessage());
        RoundTrip(new PingAckMessage());
    }

    [Fact]
    public void Resync_verify_and_control_messages_round_trip()
    {
        RoundTrip(new RsDataRequestMessage(4096, 65536, 1));
        RoundTrip(new RsDataReplyMessage(4096, 4096, 1), new byte[4096]);
        RoundTrip(new RsDataReplyMessage(4096, 1 << 20, 1, RsDataFlags.Zeroes));
        RoundTrip(new RsDataReplyMessage(4096, 4096, 1, RsDataFlags.Compressed), new byte[17], compressed: true);
        RoundTrip(new RsDataReplyMessage(4096, 4096, 1, IntegrityDigest: Sha256), new byte[4096]);
        RoundTrip(new RsDataReplyMessage(4096, 4096, 1, RsDataFlags.Compressed, Crc), new byte[17], compressed: true);
        RoundTrip(new RsWriteAckMessage(0, 4096, 2));
        RoundTrip(new CsumRsRequestMessage(8192, 4096, 3, Sha256));
        RoundTrip(new CsumRsRequestMessage(8192, 4096, 3, Crc));
        RoundTrip(new RsIsInSyncMessage(8192, 4096, 3));
        RoundTrip(new NegRsDReplyMessage(8192, 4096, 4));
        RoundTrip(new RsCancelMessage(8192, 4096, 5));
        RoundTrip(new OvRequestMessage(0, 1 << 20, 6));
        RoundTrip(new OvReplyMessage(0, 1 << 20, 6, Digest.Compute(DigestAlgorithm.Md5, "x"u8)));
        RoundTrip(new OvResultMessage(0, 1 << 20, 6, InSync: true));
        RoundTrip(new OvResultMessage(0, 1 << 20, 6, InSync: false));
        RoundTrip(new DisconnectMessage(DisconnectReason.IncompatibleSettings, "incompatible protocol settings (local C, peer A)"));
        RoundTrip(new DisconnectMessage(DisconnectReason.WrongPeer, ""));
        RoundTrip(new DisconnectMessage(DisconnectReason.TwoPrimaries, "Multiple primaries not allowed by config"));
        RoundTrip(new BitmapChunkMessage(64, 10, BitmapEncoding.Raw, BitmapChunkFlags.LastChunk), [0xFF, 0x03]);
        RoundTrip(new BitmapChunkMessage(0, 300, BitmapEncoding.RunLength, BitmapChunkFlags.StartsWithSet), [0x10, 0x80, 0x01], compressed: true); // runs are checked by the codec
    }

    [Fact]
    public void Remote_read_messages_round_trip_with_any_byte_range()
    {
        RoundTrip(new DataRequestMessage(512, 1536, 7));
        RoundTrip(new DataRequestMessage(4096, 1 << 20, ulong.MaxValue));
        RoundTrip(new DataReplyMessage(512, 1536, 7), Enumerable.Range(0, 1536).Select(i => (byte)i).ToArray());
        RoundTrip(new DataReplyMessage(512, 1536, 7, Sha256), Enumerable.Range(0, 1536).Select(i => (byte)i).ToArray());
        RoundTrip(new NegDReplyMessage(3, 1, 8));

        byte[] block = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray();
        var buffer = Segmented(Frame(2, new DataReplyMessage(8192, 4096, 9), block), 13);
        Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out _, out var payload, out string? error), error);
        Assert.True(DataReplyMessage.TryRead(payload, out var reply, out var data, out error), error);
        Assert.Equal(new DataReplyMessage(8192, 4096, 9), reply);
        Assert.Equal(block, data.ToArray());

        // With a digest, cut into segments that split the fixed part, the digest and the data.
        buffer = Segmented(Frame(2, new RsDataReplyMessage(8192, 4096, 9, IntegrityDigest: Sha256), block), 7);
        Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out _, out payload, out error), error);
        Assert.True(RsDataReplyMessage.TryRead(payload, out var resync, out data, out error), error);
        Assert.Equal(new RsDataReplyMessage(8192, 4096, 9, IntegrityDigest: Sha256), resync);
        Assert.Equal(block, data.ToArray());
    }

    [Fact]
    public void Data_payload_across_segments_is_sliced_not_copied()
    {
        byte[] block = Enumerable.Range(0, 8192).Select(i => (byte)(i * 3)).ToArray();
        var digest = Digest.Compute(DigestAlgorithm.Sha512, block);
        var message = new DataMessage(8192, 8192, 1, 2, DataFlags.SendWriteAck, digest);
        byte[] frame = Frame(1, message, block);
        foreach (int segment in new[] { 1, 13, 41, 50, 104, 4096 })
        {
            var buffer = Segmented(frame, segment);
            Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out _, out var payload, out string? error), error);
            Assert.True(DataMessage.TryRead(payload, out var back, out var data, out error), error);
            Assert.Equal(message, back);
            Assert.Equal(block, data.ToArray());
            Assert.Equal(digest, Digest.Compute(DigestAlgorithm.Sha512, data.ToArray()));
        }
    }

    [Fact]
    public void Segmented_reads_of_data_carrying_messages_validate_like_span_reads()
    {
        byte[] reply = Payload(new RsDataReplyMessage(0, 4096, 1));
        Assert.False(RsDataReplyMessage.TryRead(Segmented([.. reply, .. new byte[4095]], 5), out _, out _, out string? error));
        Assert.Contains("followed by 4095 bytes", error);
        Assert.True(BitmapChunkMessage.TryRead(Segmented([.. Payload(new BitmapChunkMessage(0, 8, BitmapEncoding.Raw, 0)), 0x55], 3), out _, out var body, out error), error);
        Assert.Equal([0x55], body.ToArray());
        Assert.False(DataMessage.TryRead(Segmented(new byte[39], 4), out _, out _, out error));
        Assert.Contains("at least 40 bytes", error);
        Assert.False(FramePayload.TryRead<AckMessage>(Segmented(new byte[FramePayload.MaxMessageBytes + 1], 100), out _, out error));
        Assert.Contains("larger than any such message", error);
        Assert.True(FramePayload.TryRead<UuidsMessage>(Segmented(Payload(new UuidsMessage(5, 6, [7, 8], 0, 1)), 3), out var uuids, out error), error);
        Assert.Equal(new ulong[] { 7, 8 }, uuids.History.ToArray());
    }

    [Fact]
    public void A_disconnect_with_a_long_text_is_read_from_a_segmented_payload()
    {
        // Found by scripts/fuzz --target peer-frames: FramePayload refused any message over 512 bytes,
        // so a peer's Disconnect with a long reason became a protocol error (corpus: crash-bd2e09cc6fdb76a5).
        var message = new DisconnectMessage(DisconnectReason.SplitBrain, new string('x', DisconnectMessage.MaxTextBytes));
        Assert.True(FramePayload.TryRead<DisconnectMessage>(Segmented(Payload(message), 100), out var back, out string? error), error);
        Assert.Equal(message, back);
        Assert.True(FramePayload.TryRead<DisconnectMessage>(new ReadOnlySequence<byte>(Payload(message)), out back, out error), error);
        Assert.Equal(message, back);
    }

    [Fact]
    public void Disconnect_create_cuts_the_text_at_1024_utf8_bytes_and_replaces_control_characters()
    {
        var message = DisconnectMessage.Create(DisconnectReason.IncompatibleSettings, "a\nb" + new string('\u00e9', 600));
        Assert.True(DisconnectMessage.TryRead(Payload(message), out var back, out string? error), error);
        Assert.StartsWith("a b\u00e9", back.Text, StringComparison.Ordinal);
        Assert.Equal(3 + (510 * 2), System.Text.Encoding.UTF8.GetByteCount(back.Text));
    }

    [Fact]
    public void A_segmented_data_with_an_impossible_digest_length_is_refused_not_an_invariant_failure()
    {
        // Found by scripts/fuzz --target peer-frames (corpus: regress-data-digest-length-255): the digest
        // length byte (up to 255) sized a copy into a 104-byte scratch before it was validated.
        byte[] payload = Payload(new DataMessage(0, 4096, 1, 1, DataFlags.None));
        payload[32] = 255;
        byte[] frame = [.. payload, .. new byte[255 + 4096]];
        Assert.False(DataMessage.TryRead(Segmented(frame, 16), out _, out _, out string? error));
        Assert.Contains("digest length 255", error);
    }
}

// Valid peer frame streams for the seed corpus: the handshake, every message type with realistic
// fields (plain, compressed, digest-carrying and zero-length variants), and a whole bitmap exchange
// in RunLength and Raw chunks.
using Redundancy.Block.Engine.Compression;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Fuzz.Targets;

public static class PeerFrameSeeds
{
    /// <summary>Builds a stream of frames.</summary>
    private sealed class Stream
    {
        private readonly List<byte> _bytes = [];

        public Stream Add<T>(in T message, ushort volume = 0, ReadOnlySpan<byte> trailing = default) where T : struct, IPeerMessage<T>
        {
            var frame = new byte[FrameWriter.FrameLength(message)];
            FrameWriter.Write(frame, volume, message, trailing.Length);
            _bytes.AddRange(frame);
            _bytes.AddRange(trailing.ToArray());
            return this;
        }

        public Stream AddRaw(byte[] bytes)
        {
            _bytes.AddRange(bytes);
            return this;
        }

        public byte[] ToArray() => [.. _bytes];
    }

    public static IReadOnlyList<(string Name, byte[] Input)> All()
    {
        byte[] block = Pattern(4096);
        byte[] compressible = new byte[8192];
        Array.Fill(compressible, (byte)'a');
        compressible[100] = 7;
        byte[] compressed = Compress(compressible);
        var digest = Digest.Compute(DigestAlgorithm.Crc32C, block);
        var sha = Digest.Compute(DigestAlgorithm.Sha256, block);
        return
        [
            ("handshake", Handshake().ToArray()),
            ("volume-state", Handshake()
                .Add(new SizesMessage(16L << 20, 15L << 20, 0, 1 << 20, 15L << 20))
                .Add(new UuidsMessage(0xABCDEF01, 0x1234, [0x77, 0x66], UuidFlags.Consistent | UuidFlags.WasUpToDate, 12))
                .Add(new StateMessage(Role.Primary, DiskState.UpToDate, DiskState.Outdated, ReplicationState.Established, StateFlags.ResolveConflicts))
                .Add(new StateChangeRequestMessage(3, StateChangeKind.StartVerify, StateChangeRequestFlags.None, 8192))
                .Add(new StateChangeReplyMessage(3, StateChangeResult.Success))
                .Add(new StateChangeRequestMessage(0x8000_0001, StateChangeKind.BecomePrimary, StateChangeRequestFlags.None, 0))
                .Add(new StateChangeReplyMessage(0x8000_0001, StateChangeResult.ConcurrentStateChange))
                .Add(new StateChangeAbortMessage(0x8000_0001))
                .Add(new SyncUuidMessage(0x5555))
                .ToArray()),
            ("data-path", Handshake()
                .Add(new DataMessage(4096, 4096, 1, 1, DataFlags.SendWriteAck), 0, block)
                .Add(new DataMessage(8192, 4096, 2, 2, DataFlags.Fua | DataFlags.SendReceiveAck, digest), 0, block)
                .Add(new DataMessage(0, 0, 3, 3, DataFlags.Flush))
                .Add(new DataMessage(1 << 20, 65536, 4, 4, DataFlags.Trim))
                .Add(new DataMessage(2 << 20, 65536, 5, 5, DataFlags.Zeroes | DataFlags.SendWriteAck))
                .Add(new DataMessage(0, (uint)compressible.Length, 6, 6, DataFlags.Compressed), 0, compressed)
                .Add(new AckMessage(AckKind.WriteAck, 4096, 4096, 1, 1))
                .Add(new AckMessage(AckKind.NegAck, 0, 0, 3, 3))
                .Add(new BarrierMessage(7))
                .Add(new BarrierAckMessage(7, 6))
                .Add(new ProtocolUpdateMessage(new ProtocolSettingsMessage(ReplicationProtocol.A, AfterSb0Pri.DiscardLocal, AfterSb1Pri.Consensus,
                    AfterSb2Pri.Disconnect, ProtocolSettingsFlags.AlwaysAsbp, DigestAlgorithm.Crc32C, DigestAlgorithm.Sha256, DigestAlgorithm.Sha256, CompressionAlgorithm.Lz4)))
                .Add(new OutOfSyncMessage(12288, 8192))
                .ToArray()),
            ("remote-read", Handshake()
                .Add(new DataRequestMessage(4096, 4096, 9))
                .Add(new DataReplyMessage(4096, 4096, 9), 0, block)
                .Add(new NegDReplyMessage(8192, 4096, 10))
                .ToArray()),
            ("liveness-disconnect", new Stream()
                .Add(new PingMessage())
                .Add(new PingAckMessage())
                .Add(new DisconnectMessage(DisconnectReason.IncompatibleSettings, "incompatible protocol settings: protocol C vs A"))
                .ToArray()),
            ("long-disconnect", new Stream()
                .Add(new DisconnectMessage(DisconnectReason.SplitBrain, new string('x', 900)))
                .ToArray()),
            ("resync", Handshake()
                .Add(new RsDataRequestMessage(0, 65536, 11))
                .Add(new RsDataReplyMessage(0, 4096, 11), 0, block)
                .Add(new RsDataReplyMessage(4096, (uint)compressible.Length, 12, RsDataFlags.Compressed), 0, compressed)
                .Add(new RsDataReplyMessage(1 << 20, 1 << 20, 13, RsDataFlags.Zeroes))
                .Add(new RsWriteAckMessage(0, 4096, 11))
                .Add(new CsumRsRequestMessage(0, 4096, 14, sha))
                .Add(new RsIsInSyncMessage(0, 4096, 14))
                .Add(new NegRsDReplyMessage(8192, 4096, 15))
                .Add(new RsCancelMessage(12288, 4096, 16))
                .ToArray()),
            ("verify", Handshake()
                .Add(new OvRequestMessage(0, 4096, 17))
                .Add(new OvReplyMessage(0, 4096, 17, digest))
                .Add(new OvResultMessage(0, 4096, 17, InSync: false))
                .ToArray()),
            ("bitmap-runlength", Handshake().AddRaw(BitmapFrames(sparse: true)).ToArray()),
            ("bitmap-raw", Handshake().AddRaw(BitmapFrames(sparse: false)).ToArray()),
            ("auth", new Stream()
                .Add(new FeaturesMessage(1, 1, FeatureFlags.Authentication, 1 << 20))
                .Add(new HelloMessage(1, 0, "r0", "beta"))
                .Add(new AuthChallengeMessage(Pattern(AuthChallengeMessage.Size)))
                .Add(new AuthResponseMessage(sha))
                .ToArray()),
        ];
    }

    private static Stream Handshake() => new Stream()
        .Add(new FeaturesMessage(1, FeaturesMessage.CurrentProtocolVersion, FeatureFlags.Lz4Compression | FeatureFlags.Trim | FeatureFlags.WriteZeroes | FeatureFlags.ResyncZeroes, 1 << 20))
        .Add(new HelloMessage(1, 0, "r0", "beta"))
        .Add(new ProtocolSettingsMessage(ReplicationProtocol.C, AfterSb0Pri.DiscardZeroChanges, AfterSb1Pri.Consensus, AfterSb2Pri.Disconnect,
            ProtocolSettingsFlags.None, DigestAlgorithm.Crc32C, DigestAlgorithm.Sha256, DigestAlgorithm.Sha256, CompressionAlgorithm.Lz4));

    /// <summary>The frames a BitmapSender produces for a 64 MiB bitmap (sparse: runs; dense random bits: raw).</summary>
    private static byte[] BitmapFrames(bool sparse)
    {
        var bitmap = new QuickSyncBitmap(64L << 20);
        var random = new Random(5);
        if (sparse)
        {
            bitmap.SetBits(100, 50);
            bitmap.SetBits(9000, 3);
        }
        else
        {
            for (int i = 0; i < 3000; i++)
            {
                bitmap.SetBits(random.Next((int)bitmap.BitCount), 1);
            }
        }

        var sender = new BitmapSender(bitmap, maxBodyBytes: 512);
        var frames = new List<byte>();
        var frame = new byte[sender.MaxFrameBytes];
        while (!sender.IsComplete)
        {
            frames.AddRange(frame.AsSpan(0, sender.WriteNextFrame(frame, 0)).ToArray());
        }

        return [.. frames];
    }

    private static byte[] Compress(byte[] source)
    {
        var destination = new byte[Lz4Block.MaxCompressedLength(source.Length)];
        Lz4Block.TryCompress(source, destination, out int written);
        return destination[..written];
    }

    private static byte[] Pattern(int length)
    {
        var bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 131) + 7);
        }

        return bytes;
    }
}

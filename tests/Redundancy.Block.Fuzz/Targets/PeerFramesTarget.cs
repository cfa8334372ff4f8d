// Fuzz target "peer-frames": a byte stream from a peer, cut into segments as a pipe delivers it, read
// frame by frame with FrameReader (the agent's receive loop) and every message decoded as the engine
// does (FramePayload.TryRead, the Data/DataReply/RsDataReply sequence readers, BitmapReceiver, LZ4
// decompression of compressed payloads). Oracle: no exception; the segmented and the contiguous
// decoder agree; an accepted message re-encodes to the same bytes and decodes to the same value; the
// allocations per input stay bounded (a frame claiming 2 GiB allocates nothing for it).
using System.Buffers;
using System.Buffers.Binary;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Fuzz.Support;

namespace Redundancy.Block.Fuzz.Targets;

public sealed class PeerFramesTarget : IFuzzTarget
{
    /// <summary>Usable size of the bitmap the fuzzed BitmapChunks are merged into (16384 bits).</summary>
    private const long BitmapUsableBytes = 64L << 20;

    private static readonly FeaturesMessage OwnFeatures = new(1, FeaturesMessage.CurrentProtocolVersion,
        FeaturesMessage.KnownFlags & ~FeatureFlags.Authentication, FeaturesMessage.MaxFramePayloadLimitBytes);

    private readonly byte[] _contiguous = new byte[512 * 1024];
    private readonly byte[] _encoded = new byte[4096];

    public string Name => "peer-frames";

    public IReadOnlyList<byte[]> Dictionary { get; } = BuildDictionary();

    public IReadOnlyList<(string Name, byte[] Input)> Seeds() => PeerFrameSeeds.All();

    public byte[] Repair(byte[] input) => RepairHeaders(input);

    /// <summary>Rewrites the magic and checksum of every header along the chain of claimed lengths.</summary>
    public static byte[] RepairHeaders(byte[] input)
    {
        ArgumentNullException.ThrowIfNull(input);
        long at = 0;
        while (at + FrameHeader.Size <= input.Length)
        {
            Span<byte> header = input.AsSpan((int)at, FrameHeader.Size);
            BinaryPrimitives.WriteUInt32BigEndian(header, FrameHeader.Magic);
            BinaryPrimitives.WriteUInt32BigEndian(header[16..], HeaderChecksum(header));
            at += FrameHeader.Size + (long)BinaryPrimitives.ReadUInt32BigEndian(header[8..]);
        }

        return input;
    }

    /// <summary>CRC32C of header bytes 0..15, as FrameHeader computes it.</summary>
    public static uint HeaderChecksum(ReadOnlySpan<byte> header) => Crc32C.Compute(header[..16]);

    public string Execute(byte[] input)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        string outcome = ReadStream(Segments.Split(input));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long bound = (256 * 1024) + (64L * input.Length);
        if (allocated > bound)
        {
            throw new FuzzOracleException($"decoding a {input.Length}-byte stream allocated {allocated} bytes (bound {bound})");
        }

        return outcome;
    }

    private string ReadStream(ReadOnlySequence<byte> buffer)
    {
        var state = new StreamState();
        var outcomes = new List<string>();
        string? error;
        while (FrameReader.TryReadFrame(ref buffer, state.MaxPayloadBytes, out FrameHeader header, out ReadOnlySequence<byte> payload, out error))
        {
            string? place = MessageTypes.CheckPlace(header, state.Phase);
            string? decode = MessageTypes.TryGetInfo(header.Type, out _) ? Decode(header, payload, state) : null;
            if (decode is { Length: 0 })
            {
                throw new FuzzOracleException($"{header.Type} refused with an empty reason");
            }

            outcomes.Add($"{header.Type}:{Outcome.Normalize(place)}:{Outcome.Normalize(decode)}");
        }

        outcomes.Add(buffer.IsEmpty ? "end" : error is null ? "incomplete" : Outcome.Normalize(error));
        return string.Join('|', outcomes.Distinct());
    }

    private sealed class StreamState
    {
        public PeerPhase Phase { get; set; } = PeerPhase.Handshake;

        public int MaxPayloadBytes { get; set; } = FrameHeader.HandshakeMaxPayloadBytes;

        public BitmapReceiver? Bitmap { get; set; }

        public QuickSyncBitmap? BitmapTarget { get; set; }
    }

    /// <summary>Decodes one frame's message; null when accepted, else the decoder's error.</summary>
    private string? Decode(in FrameHeader header, in ReadOnlySequence<byte> payload, StreamState state)
    {
        switch (header.Type)
        {
            case MessageType.Features:
                return Generic<FeaturesMessage>(payload, m =>
                {
                    if (FeaturesMessage.TryNegotiate(OwnFeatures, m, out var negotiated, out _))
                    {
                        state.MaxPayloadBytes = negotiated.MaxFramePayloadBytes;
                    }
                });
            case MessageType.Hello: return Generic<HelloMessage>(payload);
            case MessageType.AuthChallenge: return Generic<AuthChallengeMessage>(payload);
            case MessageType.AuthResponse: return Generic<AuthResponseMessage>(payload);
            case MessageType.ProtocolSettings: return Generic<ProtocolSettingsMessage>(payload, _ => state.Phase = PeerPhase.Established);
            case MessageType.ProtocolUpdate: return Generic<ProtocolUpdateMessage>(payload);
            case MessageType.Sizes: return Generic<SizesMessage>(payload);
            case MessageType.Uuids: return Generic<UuidsMessage>(payload);
            case MessageType.State: return Generic<StateMessage>(payload);
            case MessageType.StateChangeRequest: return Generic<StateChangeRequestMessage>(payload);
            case MessageType.StateChangeReply: return Generic<StateChangeReplyMessage>(payload);
            case MessageType.StateChangeAbort: return Generic<StateChangeAbortMessage>(payload);
            case MessageType.SyncUuid: return Generic<SyncUuidMessage>(payload);
            case MessageType.Data: return DecodeData(payload, state);
            case MessageType.Ack: return Generic<AckMessage>(payload);
            case MessageType.Barrier: return Generic<BarrierMessage>(payload);
            case MessageType.BarrierAck: return Generic<BarrierAckMessage>(payload);
            case MessageType.OutOfSync: return Generic<OutOfSyncMessage>(payload);
            case MessageType.DataRequest: return Generic<DataRequestMessage>(payload);
            case MessageType.DataReply: return DecodeDataReply(payload);
            case MessageType.NegDReply: return Generic<NegDReplyMessage>(payload);
            case MessageType.Ping: return Generic<PingMessage>(payload);
            case MessageType.PingAck: return Generic<PingAckMessage>(payload);
            case MessageType.BitmapChunk: return DecodeBitmapChunk(payload, state);
            case MessageType.RsDataRequest: return Generic<RsDataRequestMessage>(payload);
            case MessageType.RsDataReply: return DecodeRsDataReply(payload, state);
            case MessageType.RsWriteAck: return Generic<RsWriteAckMessage>(payload);
            case MessageType.CsumRsRequest: return Generic<CsumRsRequestMessage>(payload);
            case MessageType.RsIsInSync: return Generic<RsIsInSyncMessage>(payload);
            case MessageType.NegRsDReply: return Generic<NegRsDReplyMessage>(payload);
            case MessageType.RsCancel: return Generic<RsCancelMessage>(payload);
            case MessageType.OvRequest: return Generic<OvRequestMessage>(payload);
            case MessageType.OvReply: return Generic<OvReplyMessage>(payload);
            case MessageType.OvResult: return Generic<OvResultMessage>(payload);
            case MessageType.Disconnect: return Generic<DisconnectMessage>(payload);
            default: throw new FuzzOracleException($"MessageTypes knows {header.Type} but the fuzzer does not decode it");
        }
    }

    /// <summary>
    /// The engine's reader (FramePayload.TryRead, segmented) against the contiguous TryRead; an accepted
    /// message must re-encode to exactly the payload and decode to the same value.
    /// </summary>
    private string? Generic<T>(in ReadOnlySequence<byte> payload, Action<T>? accepted = null) where T : struct, IPeerMessage<T>
    {
        bool segmented = FramePayload.TryRead(payload, out T message, out string? error);
        ReadOnlySpan<byte> contiguous = Contiguous(payload);
        bool whole = T.TryRead(contiguous, out T again, out string? wholeError);
        if (segmented != whole)
        {
            throw new FuzzOracleException(
                $"{T.Type}: FramePayload.TryRead says {Describe(segmented, error)} but TryRead of the {contiguous.Length} contiguous bytes says {Describe(whole, wholeError)}");
        }

        if (!segmented)
        {
            return error ?? throw new FuzzOracleException($"{T.Type} refused without a reason");
        }

        CheckRoundTrip(message, again, contiguous);
        accepted?.Invoke(message);
        return null;
    }

    private void CheckRoundTrip<T>(in T message, in T again, ReadOnlySpan<byte> payload) where T : struct, IPeerMessage<T>
    {
        if (!message.Equals(again))
        {
            throw new FuzzOracleException($"{T.Type}: segmented and contiguous decoding give different messages");
        }

        int written = message.Write(_encoded);
        if (written != message.EncodedLength || !_encoded.AsSpan(0, written).SequenceEqual(payload))
        {
            throw new FuzzOracleException($"{T.Type}: an accepted {payload.Length}-byte payload re-encodes to {written} different bytes");
        }

        if (!T.TryRead(_encoded.AsSpan(0, written), out T reread, out string? error) || !reread.Equals(message))
        {
            throw new FuzzOracleException($"{T.Type}: the re-encoded message does not decode to itself ({error})");
        }
    }

    private string? DecodeData(in ReadOnlySequence<byte> payload, StreamState state)
    {
        bool segmented = DataMessage.TryRead(payload, out DataMessage message, out ReadOnlySequence<byte> data, out string? error);
        ReadOnlySpan<byte> contiguous = Contiguous(payload);
        bool whole = DataMessage.TryRead(contiguous, out DataMessage again, out string? wholeError);
        if (segmented != whole || (segmented && !message.Equals(again)))
        {
            throw new FuzzOracleException($"Data: segmented {Describe(segmented, error)} vs contiguous {Describe(whole, wholeError)}");
        }

        if (!segmented)
        {
            return error ?? throw new FuzzOracleException("Data refused without a reason");
        }

        int head = message.Write(_encoded);
        if (head != message.EncodedLength || !_encoded.AsSpan(0, head).SequenceEqual(contiguous[..head]) || data.Length != payload.Length - head)
        {
            throw new FuzzOracleException("Data: the accepted fixed part and digest do not re-encode to the same bytes");
        }

        return (message.Flags & DataFlags.Compressed) != 0 ? Decompress(data, message.LengthBytes, state) : null;
    }

    private string? DecodeDataReply(in ReadOnlySequence<byte> payload)
    {
        bool segmented = DataReplyMessage.TryRead(payload, out DataReplyMessage message, out ReadOnlySequence<byte> data, out string? error);
        bool whole = DataReplyMessage.TryRead(Contiguous(payload), out DataReplyMessage again, out string? wholeError);
        if (segmented != whole || (segmented && (!message.Equals(again) || data.Length != message.LengthBytes)))
        {
            throw new FuzzOracleException($"DataReply: segmented {Describe(segmented, error)} vs contiguous {Describe(whole, wholeError)}");
        }

        return error;
    }

    private string? DecodeRsDataReply(in ReadOnlySequence<byte> payload, StreamState state)
    {
        bool segmented = RsDataReplyMessage.TryRead(payload, out RsDataReplyMessage message, out ReadOnlySequence<byte> data, out string? error);
        bool whole = RsDataReplyMessage.TryRead(Contiguous(payload), out RsDataReplyMessage again, out string? wholeError);
        if (segmented != whole || (segmented && !message.Equals(again)))
        {
            throw new FuzzOracleException($"RsDataReply: segmented {Describe(segmented, error)} vs contiguous {Describe(whole, wholeError)}");
        }

        return segmented && (message.Flags & RsDataFlags.Compressed) != 0 ? Decompress(data, message.LengthBytes, state) : error;
    }

    /// <summary>As the replica does for a compressed payload: bounded by the frame maximum, then LZ4.</summary>
    private static string? Decompress(in ReadOnlySequence<byte> data, uint lengthBytes, StreamState state)
    {
        using PooledBlock? block = PooledBlock.Decompress(data, lengthBytes, state.MaxPayloadBytes, out string? error);
        if ((block is null) == (error is null))
        {
            throw new FuzzOracleException($"PooledBlock.Decompress returned {(block is null ? "no block" : "a block")} with error '{error}'");
        }

        return error;
    }

    private string? DecodeBitmapChunk(in ReadOnlySequence<byte> payload, StreamState state)
    {
        bool segmented = BitmapChunkMessage.TryRead(payload, out BitmapChunkMessage chunk, out ReadOnlySequence<byte> body, out string? error);
        bool whole = BitmapChunkMessage.TryRead(Contiguous(payload), out BitmapChunkMessage again, out string? wholeError);
        if (segmented != whole || (segmented && (!chunk.Equals(again) || body.Length != payload.Length - BitmapChunkMessage.Size)))
        {
            throw new FuzzOracleException($"BitmapChunk: segmented {Describe(segmented, error)} vs contiguous {Describe(whole, wholeError)}");
        }

        state.BitmapTarget ??= new QuickSyncBitmap(BitmapUsableBytes);
        state.Bitmap ??= new BitmapReceiver(state.BitmapTarget);
        long setBefore = state.BitmapTarget.SetBitCount;
        bool applied = state.Bitmap.TryApply(payload, out string? applyError);
        if (applied && !segmented)
        {
            throw new FuzzOracleException($"BitmapReceiver applied a chunk the message reader refuses ({error})");
        }

        if (!applied && state.BitmapTarget.SetBitCount != setBefore)
        {
            throw new FuzzOracleException("a refused bitmap chunk changed the bitmap");
        }

        if (state.BitmapTarget.SetBitCount != state.BitmapTarget.CountSetBits())
        {
            throw new FuzzOracleException("the bitmap's running set-bit count is wrong after merging a chunk");
        }

        return applied ? null : applyError;
    }

    private ReadOnlySpan<byte> Contiguous(in ReadOnlySequence<byte> payload)
    {
        if (payload.IsSingleSegment)
        {
            return payload.FirstSpan;
        }

        payload.CopyTo(_contiguous);
        return _contiguous.AsSpan(0, (int)payload.Length);
    }

    private static string Describe(bool ok, string? error) => ok ? "accepted" : $"refused ({error})";

    public IReadOnlyList<(string Name, Func<string?> Check)> Checks() =>
    [
        ("frame claiming 2 GiB refused from its header without allocation", () => HugeFrameCheck(MessageType.Data, FrameFlags.None)),
        ("optional unknown frame claiming 2 GiB refused without allocation", () => HugeFrameCheck((MessageType)0x7777, FrameFlags.Optional)),
        ("compressed Data declaring 64 MiB from 16 bytes refused without allocation", CompressionBombCheck),
    ];

    private static string? HugeFrameCheck(MessageType type, FrameFlags flags)
    {
        var bytes = new byte[FrameHeader.Size + 64];
        new FrameHeader(type, 0, 0x80000000u, flags).Write(bytes);
        var buffer = new ReadOnlySequence<byte>(bytes);
        FrameReader.TryReadFrame(ref buffer, (int)FeaturesMessage.MaxFramePayloadLimitBytes, out _, out _, out _); // warm up
        buffer = new ReadOnlySequence<byte>(bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        bool read = FrameReader.TryReadFrame(ref buffer, (int)FeaturesMessage.MaxFramePayloadLimitBytes, out _, out _, out string? error);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        return read || error is null ? "the frame was not refused"
            : allocated > 1024 ? $"refusing it allocated {allocated} bytes ({error})"
            : null;
    }

    private static string? CompressionBombCheck()
    {
        var data = new byte[16];
        var sequence = new ReadOnlySequence<byte>(data);
        PooledBlock.Decompress(sequence, 4096, 64 << 20, out _)?.Dispose(); // warm up the pool's code paths
        long before = GC.GetAllocatedBytesForCurrentThread();
        using PooledBlock? block = PooledBlock.Decompress(sequence, 64u << 20, 64 << 20, out string? error);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        return block is not null ? "16 zero bytes decompressed to 64 MiB"
            : allocated > 1 << 20 ? $"refusing it allocated {allocated} bytes ({error})"
            : null;
    }

    private static byte[][] BuildDictionary()
    {
        var tokens = new List<byte[]>();
        foreach (MessageType type in Enum.GetValues<MessageType>())
        {
            var header = new byte[FrameHeader.Size];
            new FrameHeader(type, 0, 0).Write(header);
            tokens.Add(header);
            tokens.Add([(byte)((ushort)type >> 8), (byte)type]);
        }

        return [.. tokens];
    }
}

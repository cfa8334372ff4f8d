using System.Buffers;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Peers.Protocol;
using static Redundancy.Block.Engine.Tests.Peers.Protocol.WireTestHelpers;

namespace Redundancy.Block.Engine.Tests.Peers.Protocol;

public class BitmapCodecTests
{
    private const int BytesPerBit = QuickSyncBitmap.BytesPerBit;

    private static QuickSyncBitmap Make(long bits, Func<long, bool> isSet)
    {
        var bitmap = new QuickSyncBitmap(bits * BytesPerBit);
        for (long i = 0; i < bits; i++)
        {
            if (isSet(i))
            {
                bitmap.SetBits(i, 1);
            }
        }

        return bitmap;
    }

    /// <summary>Sends <paramref name="source"/> through frames into a fresh bitmap; returns it and the total body bytes.</summary>
    private static (QuickSyncBitmap Received, long BodyBytes, int Chunks) Transfer(QuickSyncBitmap source, int maxBodyBytes, int segmentBytes = 4096)
    {
        var sender = new BitmapSender(source, maxBodyBytes: maxBodyBytes);
        var target = new QuickSyncBitmap(source.UsableSizeBytes);
        var receiver = new BitmapReceiver(target);
        byte[] frame = new byte[sender.MaxFrameBytes];
        long bodyBytes = 0;
        int chunks = 0;
        while (!sender.IsComplete)
        {
            int length = sender.WriteNextFrame(frame, volume: 1);
            var buffer = Segmented(frame[..length], segmentBytes);
            Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out var header, out var payload, out string? error), error);
            Assert.Equal(MessageType.BitmapChunk, header.Type);
            Assert.True(receiver.TryApply(payload, out error), error);
            bodyBytes += payload.Length - BitmapChunkMessage.Size;
            chunks++;
        }

        Assert.True(receiver.IsComplete);
        Assert.Equal(source.BitCount, receiver.NextBit);
        return (target, bodyBytes, chunks);
    }

    private static void AssertSame(QuickSyncBitmap expected, QuickSyncBitmap actual)
    {
        Assert.Equal(expected.Words.ToArray(), actual.Words.ToArray());
        Assert.Equal(expected.SetBitCount, actual.SetBitCount);
    }

    public static TheoryData<string, long> Shapes => new()
    {
        { "zero", 100_000 }, { "ones", 100_000 }, { "alternating", 100_003 }, { "sparse", 1_000_037 },
        { "clustered", 262_144 }, { "random", 50_001 }, { "tiny", 1 }, { "empty", 0 },
    };

    private static Func<long, bool> Pattern(string shape)
    {
        var random = new Random(7);
        var set = new HashSet<long>(Enumerable.Range(0, 200).Select(_ => random.NextInt64(1_000_037)));
        return shape switch
        {
            "zero" or "empty" => _ => false,
            "ones" or "tiny" => _ => true,
            "alternating" => i => (i & 1) == 0,
            "sparse" => set.Contains,
            "clustered" => i => i % 4096 < 300 || (i > 100_000 && i < 150_000),
            "random" => _ => random.Next(2) == 1,
            _ => throw new ArgumentException(shape),
        };
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Round_trips_and_never_exceeds_raw_size_plus_one_byte_per_chunk(string shape, long bits)
    {
        var source = Make(bits, Pattern(shape));
        foreach (int maxBody in new[] { 16, 100, BitmapChunkMessage.MaxBodyBytes })
        {
            var (received, bodyBytes, chunks) = Transfer(source, maxBody, segmentBytes: 33);
            AssertSame(source, received);
            Assert.True(bodyBytes <= ((bits + 7) / 8) + chunks, $"{shape}: {bodyBytes} bytes in {chunks} chunks for {bits} bits");
        }
    }

    [Fact]
    public void Structured_bitmaps_compress_to_a_few_bytes()
    {
        long bits = 1L << 28; // 1 TiB of data, 32 MiB raw
        var zero = new QuickSyncBitmap(bits * BytesPerBit);
        var (received, bodyBytes, chunks) = Transfer(zero, BitmapChunkMessage.MaxBodyBytes);
        Assert.Equal((1, 4L), (chunks, bodyBytes)); // one run: varint of 2^28-1
        Assert.Equal(0, received.SetBitCount);

        zero.SetBits(1000, 5000);
        zero.SetBits(bits - 10, 10);
        (received, bodyBytes, chunks) = Transfer(zero, BitmapChunkMessage.MaxBodyBytes);
        AssertSame(zero, received);
        Assert.True(bodyBytes <= 12, $"{bodyBytes} bytes");
    }

    [Fact]
    public void Merge_is_an_or_into_the_existing_bitmap()
    {
        var source = Make(1000, i => i < 10);
        var target = Make(1000, i => i >= 990);
        var receiver = new BitmapReceiver(target);
        byte[] frame = new byte[new BitmapSender(source).MaxFrameBytes];
        int length = new BitmapSender(source).WriteNextFrame(frame, 0);
        Assert.True(receiver.TryApply(new ReadOnlySequence<byte>(frame, FrameHeader.Size, length - FrameHeader.Size), out string? error), error);
        Assert.Equal(20, target.SetBitCount);
        Assert.True(target.IsSet(0) && target.IsSet(999) && !target.IsSet(500));
    }

    [Theory]
    [InlineData("sparse")]
    [InlineData("ones")]
    [InlineData("random")]
    public void A_bigger_bitmap_is_sent_only_up_to_the_agreed_size(string shape)
    {
        // The bigger disk's bitmap (1_000_037 bits) is exchanged with a smaller one (600_001 bits).
        var big = Make(1_000_037, Pattern(shape));
        const long agreed = 600_001;
        foreach (int maxBody in new[] { 16, BitmapChunkMessage.MaxBodyBytes })
        {
            var sender = new BitmapSender(big, agreed, maxBody);
            var target = new QuickSyncBitmap(agreed * BytesPerBit);
            var receiver = new BitmapReceiver(target);
            byte[] frame = new byte[sender.MaxFrameBytes];
            while (!sender.IsComplete)
            {
                int length = sender.WriteNextFrame(frame, volume: 0);
                Assert.True(receiver.TryApply(new ReadOnlySequence<byte>(frame, FrameHeader.Size, length - FrameHeader.Size), out string? error), error);
            }

            Assert.True(receiver.IsComplete);
            Assert.Equal(agreed, sender.NextBit);
            for (long bit = 0; bit < agreed; bit++)
            {
                Assert.True(big.IsSet(bit) == target.IsSet(bit), $"{shape}: bit {bit}");
            }
        }

        // Sent whole, the bigger bitmap ends past the smaller one: refused, as before sizes were agreed.
        var wrong = new BitmapReceiver(new QuickSyncBitmap(agreed * BytesPerBit));
        var whole = new BitmapSender(big);
        byte[] buffer = new byte[whole.MaxFrameBytes];
        string? refusal = null;
        while (!whole.IsComplete && refusal is null)
        {
            int length = whole.WriteNextFrame(buffer, volume: 0);
            wrong.TryApply(new ReadOnlySequence<byte>(buffer, FrameHeader.Size, length - FrameHeader.Size), out refusal);
        }

        Assert.NotNull(refusal);
    }

    private static bool Apply(BitmapChunkMessage chunk, byte[] body, QuickSyncBitmap bitmap, out string? error) =>
        BitmapRunLengthCodec.TryApply(chunk, body, bitmap, out error);

    [Fact]
    public void Bad_bodies_are_refused_and_leave_the_bitmap_unchanged()
    {
        var bitmap = new QuickSyncBitmap(100 * BytesPerBit);
        var rle = new BitmapChunkMessage(0, 100, BitmapEncoding.RunLength, BitmapChunkFlags.StartsWithSet | BitmapChunkFlags.LastChunk);
        Assert.False(Apply(rle, [9, 50], bitmap, out string? error)); // 10 + 51 = 61 of 100
        Assert.Contains("cover 61 of its 100 bits", error);
        Assert.False(Apply(rle, [49, 49, 0], bitmap, out error)); // 50 + 50 + 1 > 100
        Assert.Contains("exceed its 100 bits", error);
        Assert.False(Apply(rle, [0x80], bitmap, out error));
        Assert.Contains("truncated or overlong varint", error);
        Assert.False(Apply(rle, [0x80, 0x00], bitmap, out error)); // overlong zero
        Assert.Contains("overlong", error);
        Assert.False(Apply(rle, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], bitmap, out error)); // > 64 bits
        Assert.Contains("overlong", error);
        Assert.False(Apply(rle with { BitCount = 200 }, [199], bitmap, out error));
        Assert.Contains("beyond our bitmap of 100 bits", error);
        var raw = new BitmapChunkMessage(0, 12, BitmapEncoding.Raw, 0);
        Assert.False(Apply(raw, [0xFF, 0x1F], bitmap, out error));
        Assert.Contains("padding bits set", error);
        Assert.False(Apply(raw, [0xFF], bitmap, out error));
        Assert.Contains("needs 2 bytes", error);
        Assert.Equal(0, bitmap.SetBitCount);
        Assert.True(Apply(raw, [0xFF, 0x0F], bitmap, out error), error);
        Assert.Equal(12, bitmap.SetBitCount);
    }

    [Fact]
    public void Receiver_checks_the_chunk_sequence()
    {
        var receiver = new BitmapReceiver(new QuickSyncBitmap(100 * BytesPerBit));
        var first = new BitmapChunkMessage(0, 50, BitmapEncoding.RunLength, 0);
        Assert.False(receiver.TryApply(first with { FirstBit = 1 }, [48], out string? error));
        Assert.Equal("bitmap chunk starts at bit 1, expected 0", error);
        Assert.False(receiver.TryApply(first with { Flags = BitmapChunkFlags.LastChunk }, [49], out error));
        Assert.Contains("is marked last but our bitmap has 100 bits", error);
        Assert.True(receiver.TryApply(first, [49], out error), error);
        var second = new BitmapChunkMessage(50, 50, BitmapEncoding.RunLength, 0);
        Assert.False(receiver.TryApply(second, [49], out error));
        Assert.Contains("is not marked last", error);
        Assert.True(receiver.TryApply(second with { Flags = BitmapChunkFlags.LastChunk }, [49], out error), error);
        Assert.True(receiver.IsComplete);
        Assert.False(receiver.TryApply(second, [49], out error));
        Assert.Equal("bitmap chunk after the last chunk", error);
    }
}

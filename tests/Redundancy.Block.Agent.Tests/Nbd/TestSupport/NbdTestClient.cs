// A raw-socket NBD client for tests: it sends exactly the bytes a test wants (including malformed
// ones) and decodes what the server answers, so tests see the wire, not a library's view of it.
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Tests.Nbd.TestSupport;

public sealed class NbdTestClient : IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;

    private NbdTestClient(Socket socket)
    {
        _socket = socket;
        _socket.ReceiveTimeout = 10_000;
        _stream = new NetworkStream(socket, ownsSocket: true);
    }

    public record OptionReply(uint Option, NbdOptionReplyType Type, byte[] Data)
    {
        public string Text => Encoding.UTF8.GetString(Data);
    }

    public record SimpleReply(NbdError Error, ulong Cookie);

    public record Chunk(NbdChunkFlags Flags, NbdChunkType Type, ulong Cookie, byte[] Payload);

    public ulong ExportSizeBytes { get; private set; }

    public NbdTransmissionFlags TransmissionFlags { get; private set; }

    /// <summary>Connects and reads the greeting; sends client flags unless told not to.</summary>
    public static NbdTestClient Connect(EndPoint endPoint, uint clientFlags = (uint)NbdClientFlags.Known)
    {
        var socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Connect(endPoint);
        var client = new NbdTestClient(socket);
        byte[] greeting = client.ReadExact(18);
        Assert.Equal(NbdMagic.InitPassword, BinaryPrimitives.ReadUInt64BigEndian(greeting));
        Assert.Equal(NbdMagic.IHaveOpt, BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)));
        Assert.Equal((ushort)3, BinaryPrimitives.ReadUInt16BigEndian(greeting.AsSpan(16)));
        client.WriteU32(clientFlags);
        return client;
    }

    public void SendOption(uint option, ReadOnlySpan<byte> data)
    {
        var message = new byte[NbdOptionHeader.SizeBytes + data.Length];
        new NbdOptionHeader(option, (uint)data.Length).Write(message);
        data.CopyTo(message.AsSpan(NbdOptionHeader.SizeBytes));
        Send(message);
    }

    public void SendOption(NbdOption option, ReadOnlySpan<byte> data) => SendOption((uint)option, data);

    public OptionReply ReadOptionReply()
    {
        byte[] header = ReadExact(20);
        Assert.Equal(NbdMagic.OptionReply, BinaryPrimitives.ReadUInt64BigEndian(header));
        uint option = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8));
        var type = (NbdOptionReplyType)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
        int length = (int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16));
        return new OptionReply(option, type, ReadExact(length));
    }

    /// <summary>Reads replies up to and including the ACK or the first error.</summary>
    public List<OptionReply> ReadOptionReplies()
    {
        List<OptionReply> replies = [];
        while (true)
        {
            OptionReply reply = ReadOptionReply();
            replies.Add(reply);
            if (reply.Type == NbdOptionReplyType.Ack || ((uint)reply.Type & 0x80000000U) != 0)
            {
                return replies;
            }
        }
    }

    public static byte[] InfoRequest(string name, params NbdInfoType[] infos)
    {
        byte[] nameBytes = Encoding.UTF8.GetBytes(name);
        var data = new byte[4 + nameBytes.Length + 2 + (2 * infos.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)nameBytes.Length);
        nameBytes.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + nameBytes.Length), (ushort)infos.Length);
        for (int i = 0; i < infos.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(6 + nameBytes.Length + (2 * i)), (ushort)infos[i]);
        }

        return data;
    }

    public static byte[] MetaContextRequest(string name, params string[] queries)
    {
        var bytes = new List<byte>();
        void AddString(string text)
        {
            byte[] encoded = Encoding.UTF8.GetBytes(text);
            var length = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(length, (uint)encoded.Length);
            bytes.AddRange(length);
            bytes.AddRange(encoded);
        }

        AddString(name);
        var count = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(count, (uint)queries.Length);
        bytes.AddRange(count);
        foreach (string query in queries)
        {
            AddString(query);
        }

        return [.. bytes];
    }

    /// <summary>Negotiates optionally SR and base:allocation, then GO; asserts success.</summary>
    public List<OptionReply> Go(string name, bool structured = false, bool baseAllocation = false)
    {
        if (structured || baseAllocation)
        {
            SendOption(NbdOption.StructuredReply, []);
            Assert.Equal(NbdOptionReplyType.Ack, ReadOptionReply().Type);
        }

        if (baseAllocation)
        {
            SendOption(NbdOption.SetMetaContext, MetaContextRequest(name, NbdLimits.BaseAllocation));
            List<OptionReply> meta = ReadOptionReplies();
            Assert.Equal([NbdOptionReplyType.MetaContext, NbdOptionReplyType.Ack], meta.Select(reply => reply.Type));
        }

        SendOption(NbdOption.Go, InfoRequest(name, NbdInfoType.BlockSize));
        List<OptionReply> replies = ReadOptionReplies();
        Assert.Equal(NbdOptionReplyType.Ack, replies[^1].Type);
        OptionReply export = replies.Single(reply => reply.Type == NbdOptionReplyType.Info && reply.Data[1] == (byte)NbdInfoType.Export);
        ExportSizeBytes = BinaryPrimitives.ReadUInt64BigEndian(export.Data.AsSpan(2));
        TransmissionFlags = (NbdTransmissionFlags)BinaryPrimitives.ReadUInt16BigEndian(export.Data.AsSpan(10));
        return replies;
    }

    public void SendRequest(NbdCommand command, ulong cookie, ulong offsetBytes, uint lengthBytes, NbdCommandFlags flags = NbdCommandFlags.None, ReadOnlySpan<byte> payload = default)
    {
        var message = new byte[NbdRequestHeader.SizeBytes + payload.Length];
        new NbdRequestHeader(flags, command, cookie, offsetBytes, lengthBytes).Write(message);
        payload.CopyTo(message.AsSpan(NbdRequestHeader.SizeBytes));
        Send(message);
    }

    /// <summary>Reads one reply header: simple (returns it) or a chunk (returns null, chunk set).</summary>
    public SimpleReply ReadSimpleReply()
    {
        byte[] header = ReadExact(16);
        Assert.Equal(NbdMagic.SimpleReply, BinaryPrimitives.ReadUInt32BigEndian(header));
        return new SimpleReply((NbdError)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)), BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)));
    }

    public Chunk ReadChunk()
    {
        byte[] header = ReadExact(20);
        Assert.Equal(NbdMagic.StructuredReply, BinaryPrimitives.ReadUInt32BigEndian(header));
        return new Chunk(
            (NbdChunkFlags)BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4)),
            (NbdChunkType)BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6)),
            BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)),
            ReadExact((int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16))));
    }

    /// <summary>Reads a reply that may be simple or structured; returns cookie, error and data.</summary>
    public (ulong Cookie, NbdError Error, byte[] Data) ReadAnyReply(Func<ulong, int> readLengthOfCookie)
    {
        byte[] magic = ReadExact(4);
        uint value = BinaryPrimitives.ReadUInt32BigEndian(magic);
        if (value == NbdMagic.SimpleReply)
        {
            byte[] rest = ReadExact(12);
            var error = (NbdError)BinaryPrimitives.ReadUInt32BigEndian(rest);
            ulong cookie = BinaryPrimitives.ReadUInt64BigEndian(rest.AsSpan(4));
            return (cookie, error, error == NbdError.None ? ReadExact(readLengthOfCookie(cookie)) : []);
        }

        Assert.Equal(NbdMagic.StructuredReply, value);
        byte[] chunkRest = ReadExact(16);
        var type = (NbdChunkType)BinaryPrimitives.ReadUInt16BigEndian(chunkRest.AsSpan(2));
        ulong chunkCookie = BinaryPrimitives.ReadUInt64BigEndian(chunkRest.AsSpan(4));
        byte[] payload = ReadExact((int)BinaryPrimitives.ReadUInt32BigEndian(chunkRest.AsSpan(12)));
        return type switch
        {
            NbdChunkType.OffsetData => (chunkCookie, NbdError.None, payload[8..]),
            NbdChunkType.Error => (chunkCookie, (NbdError)BinaryPrimitives.ReadUInt32BigEndian(payload), []),
            _ => (chunkCookie, NbdError.None, []),
        };
    }

    public byte[] ReadExact(int count)
    {
        var buffer = new byte[count];
        _stream.ReadExactly(buffer);
        return buffer;
    }

    /// <summary>True if the server closed the connection (EOF or reset) within the timeout.</summary>
    public bool IsClosedByServer()
    {
        try
        {
            return _stream.Read(new byte[1]) == 0;
        }
        catch (IOException exception) when (exception.InnerException is not SocketException { SocketErrorCode: SocketError.TimedOut })
        {
            return true;
        }
    }

    /// <summary>Whether any byte from the server is waiting, or arrives within <paramref name="wait"/> (nothing is consumed).</summary>
    public bool HasBytesWithin(TimeSpan wait) => _socket.Poll(wait, SelectMode.SelectRead);

    public void Send(ReadOnlySpan<byte> bytes) => _stream.Write(bytes);

    public void WriteU32(uint value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        Send(bytes);
    }

    public void Dispose() => _stream.Dispose();
}

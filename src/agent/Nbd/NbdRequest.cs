// One transmission request in flight, pooled per session. The session thread fills it (header, WRITE
// payload) and executes it itself or queues it to the thread pool; Execute runs the device operation and builds the reply
// in place (a READ's data is read behind room for its reply header, so header and data go out
// together); the session's reply sender writes it and hands it back to the pool. Continuations use a
// cached delegate, so a request costs no allocation in the steady state.
using System.Buffers;
using System.Runtime.CompilerServices;
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Nbd;

internal sealed class NbdRequest : IThreadPoolWorkItem
{
    /// <summary>Room kept in front of READ data for its reply header (simple 16 or OFFSET_DATA 28 bytes).</summary>
    public const int HeaderRoomBytes = 32;

    /// <summary>Buffers up to this size stay with the request for reuse; larger ones go back to the pool.</summary>
    private const int RetainedBufferBytes = 256 * 1024;

    /// <summary>Most descriptors one BLOCK_STATUS chunk carries (the spec's ceiling is 2^20).</summary>
    private const int MaxBlockDescriptors = 64 * 1024;

    private readonly NbdSession _session;
    private readonly Action _onDeviceCompleted;
    private readonly byte[] _small = new byte[NbdReplyWriter.ErrorChunkSizeBytes];
    private readonly List<AllocationExtent> _extents = [];
    private byte[]? _buffer;
    private ValueTask _pending;

    public NbdRequest(NbdSession session)
    {
        _session = session;
        _onDeviceCompleted = OnDeviceCompleted;
    }

    public NbdRequestHeader Header { get; private set; }

    /// <summary>The encoded reply, valid once the request is handed to the reply sender.</summary>
    public ReadOnlyMemory<byte> Reply { get; private set; }

    public void Reset(in NbdRequestHeader header)
    {
        Header = header;
        Reply = default;
    }

    /// <summary>Buffer the WRITE payload must be read into.</summary>
    public Memory<byte> PrepareWritePayload()
    {
        EnsureBuffer((int)Header.LengthBytes);
        return _buffer.AsMemory(0, (int)Header.LengthBytes);
    }

    /// <summary>Encodes a failure reply: an ERROR chunk where structured replies are required, else simple.</summary>
    public void SetError(NbdError error)
    {
        Invariant.Assert(error != NbdError.None, "SetError needs an error");
        bool structured = _session.StructuredReplies && Header.Command is NbdCommand.Read or NbdCommand.BlockStatus;
        int length = structured
            ? NbdReplyWriter.WriteErrorChunk(_small, error, Header.Cookie)
            : NbdReplyWriter.WriteSimpleReply(_small, error, Header.Cookie);
        Reply = _small.AsMemory(0, length);
    }

    /// <summary>Runs on the session thread or the thread pool: starts the device operation and finishes now or when it completes.</summary>
    public void Execute()
    {
        ValueTask operation;
        try
        {
            operation = StartDeviceOperation();
        }
        catch (Exception exception)
        {
            Finish(exception);
            return;
        }

        if (operation.IsCompleted)
        {
            Finish(GetFailure(operation));
            return;
        }

        _pending = operation;
        operation.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_onDeviceCompleted);
    }

    /// <summary>Called by the reply sender once the reply is written (or can no longer be).</summary>
    public void Release()
    {
        if (_buffer is { Length: > RetainedBufferBytes } large)
        {
            _buffer = null;
            ArrayPool<byte>.Shared.Return(large);
        }

        Reply = default;
        _session.ReturnRequest(this);
    }

    private ValueTask StartDeviceOperation()
    {
        IBlockDevice device = _session.Device;
        CancellationToken revoked = _session.RevokedToken;
        long offsetBytes = (long)Header.OffsetBytes;
        int lengthBytes = (int)Math.Min(Header.LengthBytes, int.MaxValue);
        bool fua = (Header.Flags & NbdCommandFlags.Fua) != 0;
        switch (Header.Command)
        {
            case NbdCommand.Read:
                EnsureBuffer(HeaderRoomBytes + lengthBytes);
                return lengthBytes == 0
                    ? ValueTask.CompletedTask
                    : device.ReadAsync(offsetBytes, _buffer.AsMemory(HeaderRoomBytes, lengthBytes), revoked);
            case NbdCommand.Write:
                return lengthBytes == 0
                    ? ValueTask.CompletedTask
                    : device.WriteAsync(offsetBytes, _buffer.AsMemory(0, lengthBytes), fua, revoked);
            case NbdCommand.Flush:
                return device.FlushAsync(revoked);
            case NbdCommand.Trim:
                return Header.LengthBytes == 0 ? ValueTask.CompletedTask
                    : fua ? DiscardDurablyAsync(device, offsetBytes, Header.LengthBytes, revoked)
                    : device.DiscardAsync(offsetBytes, Header.LengthBytes, revoked);
            case NbdCommand.WriteZeroes:
                bool mayUnmap = (Header.Flags & NbdCommandFlags.NoHole) == 0;
                return Header.LengthBytes == 0 ? ValueTask.CompletedTask
                    : fua ? ZeroDurablyAsync(device, offsetBytes, Header.LengthBytes, mayUnmap, revoked)
                    : device.WriteZeroesAsync(offsetBytes, Header.LengthBytes, mayUnmap, revoked);
            case NbdCommand.Cache:
                return ValueTask.CompletedTask;
            case NbdCommand.BlockStatus:
                _extents.Clear();
                return device.GetAllocationAsync(offsetBytes, Header.LengthBytes, _extents, revoked);
            default:
                throw new InvariantViolationException($"command {Header.Command} reached the device unvalidated");
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask DiscardDurablyAsync(IBlockDevice device, long offsetBytes, long lengthBytes, CancellationToken revoked)
    {
        await device.DiscardAsync(offsetBytes, lengthBytes, revoked).ConfigureAwait(false);
        await device.FlushAsync(revoked).ConfigureAwait(false);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask ZeroDurablyAsync(IBlockDevice device, long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken revoked)
    {
        await device.WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap, revoked).ConfigureAwait(false);
        await device.FlushAsync(revoked).ConfigureAwait(false);
    }

    private void OnDeviceCompleted()
    {
        ValueTask operation = _pending;
        _pending = default;
        Finish(GetFailure(operation));
    }

    private static Exception? GetFailure(ValueTask operation)
    {
        try
        {
            operation.GetAwaiter().GetResult();
            return null;
        }
        catch (Exception exception)
        {
            return exception;
        }
    }

    /// <summary>Turns the outcome into a reply and queues it. Revocation overrides: ESHUTDOWN.</summary>
    private void Finish(Exception? failure)
    {
        NbdError error = _session.IsRevoked ? NbdError.Shutdown
            : failure is null ? NbdError.None
            : _session.ClassifyFailure(failure, Header);
        if (error == NbdError.None && !TryEncodeSuccess())
        {
            error = NbdError.Io;
        }

        if (error != NbdError.None)
        {
            SetError(error);
        }

        _session.EnqueueReply(this);
    }

    private bool TryEncodeSuccess()
    {
        if (Header.Command == NbdCommand.BlockStatus)
        {
            return TryEncodeBlockStatus();
        }

        if (Header.Command != NbdCommand.Read || Header.LengthBytes == 0)
        {
            int length = Header.Command == NbdCommand.Read && _session.StructuredReplies
                ? NbdReplyWriter.WriteDoneChunk(_small, Header.Cookie)
                : NbdReplyWriter.WriteSimpleReply(_small, NbdError.None, Header.Cookie);
            Reply = _small.AsMemory(0, length);
            return true;
        }

        int headerBytes = _session.StructuredReplies
            ? NbdReplyWriter.OffsetDataHeaderSizeBytes
            : NbdReplyWriter.SimpleReplySizeBytes;
        Span<byte> header = _buffer.AsSpan(HeaderRoomBytes - headerBytes, headerBytes);
        if (_session.StructuredReplies)
        {
            NbdReplyWriter.WriteOffsetDataHeader(header, NbdChunkFlags.Done, Header.Cookie, Header.OffsetBytes, Header.LengthBytes);
        }
        else
        {
            NbdReplyWriter.WriteSimpleReply(header, NbdError.None, Header.Cookie);
        }

        Reply = _buffer.AsMemory(HeaderRoomBytes - headerBytes, headerBytes + (int)Header.LengthBytes);
        return true;
    }

    /// <summary>
    /// One BLOCK_STATUS chunk for base:allocation: the device's extents clipped to the request, merged
    /// where equal, never empty; with REQ_ONE exactly one. False if the device broke its contract.
    /// </summary>
    private bool TryEncodeBlockStatus()
    {
        bool reqOne = (Header.Flags & NbdCommandFlags.ReqOne) != 0;
        int maxDescriptors = reqOne ? 1 : MaxBlockDescriptors;
        EnsureBuffer(NbdReplyWriter.BlockStatusHeaderSizeBytes + (Math.Min(_extents.Count, maxDescriptors) * NbdReplyWriter.BlockDescriptorSizeBytes));
        Span<byte> descriptors = _buffer.AsSpan(NbdReplyWriter.BlockStatusHeaderSizeBytes);
        long remaining = Header.LengthBytes;
        long pendingLength = 0;
        uint pendingFlags = 0;
        int count = 0;
        foreach (AllocationExtent extent in _extents)
        {
            long length = Math.Min(extent.LengthBytes, remaining);
            if (length <= 0)
            {
                continue;
            }

            if (pendingLength > 0 && (uint)extent.Flags != pendingFlags)
            {
                if (count + 1 == maxDescriptors)
                {
                    break;
                }

                NbdReplyWriter.WriteBlockDescriptor(descriptors[(count * NbdReplyWriter.BlockDescriptorSizeBytes)..], (uint)pendingLength, pendingFlags);
                count++;
                pendingLength = 0;
            }

            pendingFlags = (uint)extent.Flags;
            pendingLength += length;
            remaining -= length;
        }

        if (pendingLength == 0)
        {
            return false;
        }

        NbdReplyWriter.WriteBlockDescriptor(descriptors[(count * NbdReplyWriter.BlockDescriptorSizeBytes)..], (uint)pendingLength, pendingFlags);
        count++;
        NbdReplyWriter.WriteBlockStatusHeader(_buffer, NbdChunkFlags.Done, Header.Cookie, NbdSession.BaseAllocationContextId, count);
        Reply = _buffer.AsMemory(0, NbdReplyWriter.BlockStatusHeaderSizeBytes + (count * NbdReplyWriter.BlockDescriptorSizeBytes));
        return true;
    }

    private void EnsureBuffer(int bytes)
    {
        if (_buffer is not null && _buffer.Length >= bytes)
        {
            return;
        }

        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }

        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(bytes, 4096 + HeaderRoomBytes));
    }
}

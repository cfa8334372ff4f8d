// The callback a PeerConnection hands each received frame to, on its receive loop.
using System.Buffers;
using Redundancy.Block.Engine.Peers.Protocol;

namespace Redundancy.Block.Agent.Peers;

/// <summary>
/// Called synchronously for each complete frame, in arrival order, never concurrently and never
/// after Closed has fired. <paramref name="payload"/> is only valid during the call: copy what you keep.
/// </summary>
public delegate void PeerFrameHandler(in FrameHeader header, in ReadOnlySequence<byte> payload);

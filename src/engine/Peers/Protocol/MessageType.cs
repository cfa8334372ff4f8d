// Message types of the peer protocol, DRBD's packet set in spirit (enum drbd_packet) with our own
// numbers, grouped by family in the high nibble of the low byte. Values are on the wire: never renumber.
namespace Redundancy.Block.Engine.Peers.Protocol;

public enum MessageType : ushort
{
    // Handshake (connection-wide, before the connection is established).
    /// <summary>Protocol version range, feature flags, largest frame payload (P_CONNECTION_FEATURES).</summary>
    Features = 0x0001,
    /// <summary>Who is speaking: node-id, node and resource name.</summary>
    Hello = 0x0002,
    /// <summary>64 random bytes to be answered with an HMAC (P_AUTH_CHALLENGE).</summary>
    AuthChallenge = 0x0003,
    /// <summary>HMAC(shared-secret, challenge ‖ node-id) (P_AUTH_RESPONSE).</summary>
    AuthResponse = 0x0004,
    /// <summary>Settings both sides must agree on (P_PROTOCOL).</summary>
    ProtocolSettings = 0x0005,
    /// <summary>
    /// New settings from an `adjust` on an established connection, adopted without comparing
    /// (P_PROTOCOL_UPDATE); same payload as ProtocolSettings. Protocol version 2 and later.
    /// </summary>
    ProtocolUpdate = 0x0006,

    // Per-volume state.
    /// <summary>Backing, usable, requested size and largest request (P_SIZES).</summary>
    Sizes = 0x0010,
    /// <summary>Generation identifiers (P_UUIDS110).</summary>
    Uuids = 0x0011,
    /// <summary>Role and disk states (P_STATE).</summary>
    State = 0x0012,
    /// <summary>Ask the peer to agree to a state change (P_STATE_CHG_REQ / P_TWOPC_PREPARE).</summary>
    StateChangeRequest = 0x0013,
    /// <summary>Answer to a state change request (P_STATE_CHG_REPLY).</summary>
    StateChangeReply = 0x0014,
    /// <summary>The UUID a sync target adopts as its bitmap UUID when resync starts (P_SYNC_UUID).</summary>
    SyncUuid = 0x0015,
    /// <summary>The requester gives up a state change the receiver granted (P_TWOPC_ABORT).</summary>
    StateChangeAbort = 0x0016,

    // Data path.
    /// <summary>An application write (or trim, zeroes, flush) (P_DATA).</summary>
    Data = 0x0020,
    /// <summary>Receive/write/negative acknowledgement of a Data (P_RECV_ACK, P_WRITE_ACK, P_NEG_ACK, P_SUPERSEDED).</summary>
    Ack = 0x0021,
    /// <summary>End of a write epoch (P_BARRIER).</summary>
    Barrier = 0x0022,
    /// <summary>The epoch is on the peer's stable storage (P_BARRIER_ACK).</summary>
    BarrierAck = 0x0023,
    /// <summary>A range changed but is not sent (Ahead mode) (P_OUT_OF_SYNC).</summary>
    OutOfSync = 0x0024,
    /// <summary>A Primary without an UpToDate disk reads from the peer (P_DATA_REQUEST).</summary>
    DataRequest = 0x0025,
    /// <summary>The data a DataRequest asked for (P_DATA_REPLY).</summary>
    DataReply = 0x0026,
    /// <summary>The peer cannot serve a DataRequest (P_NEG_DREPLY).</summary>
    NegDReply = 0x0027,

    // Liveness (meta socket in DRBD).
    Ping = 0x0030,
    PingAck = 0x0031,

    // Bitmap exchange.
    /// <summary>A run-length or raw chunk of the quick-sync bitmap (P_BITMAP / P_COMPRESSED_BITMAP).</summary>
    BitmapChunk = 0x0040,

    // Resync.
    RsDataRequest = 0x0050,
    RsDataReply = 0x0051,
    RsWriteAck = 0x0052,
    CsumRsRequest = 0x0053,
    RsIsInSync = 0x0054,
    NegRsDReply = 0x0055,
    RsCancel = 0x0056,

    // Online verify.
    OvRequest = 0x0060,
    OvReply = 0x0061,
    OvResult = 0x0062,

    // Control.
    /// <summary>The sender is closing the connection and says why.</summary>
    Disconnect = 0x0070,
}

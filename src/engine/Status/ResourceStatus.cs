using System.Text.Json.Serialization;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Status;

// The status model, shaped and named exactly as drbdsetup's `status --json` so that monitoring
// written for DRBD reads it unchanged. Sizes are KiB, as drbdsetup prints them.

/// <summary>One resource as `drbdsetup status --json` shows it.</summary>
public sealed record ResourceStatus
{
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("node-id")] public int NodeId { get; init; }
    [JsonPropertyName("role")] public Role Role { get; init; }
    [JsonPropertyName("suspended")] public bool Suspended { get; init; }
    [JsonPropertyName("suspended-user")] public bool SuspendedUser { get; init; }
    [JsonPropertyName("suspended-no-data")] public bool SuspendedNoData { get; init; }
    [JsonPropertyName("suspended-fencing")] public bool SuspendedFencing { get; init; }
    [JsonPropertyName("suspended-quorum")] public bool SuspendedQuorum { get; init; }
    [JsonPropertyName("force-io-failures")] public bool ForceIoFailures { get; init; }
    [JsonPropertyName("write-ordering")] public string WriteOrdering { get; init; } = "flush";
    [JsonPropertyName("devices")] public IReadOnlyList<DeviceStatus> Devices { get; init; } = [];
    [JsonPropertyName("connections")] public IReadOnlyList<ConnectionStatus> Connections { get; init; } = [];
}

/// <summary>A local volume (DRBD "device").</summary>
public sealed record DeviceStatus
{
    [JsonPropertyName("volume")] public int Volume { get; init; }
    [JsonPropertyName("minor")] public int Minor { get; init; }
    [JsonPropertyName("disk-state")] public DiskState DiskState { get; init; }
    [JsonPropertyName("client")] public bool Client { get; init; }
    [JsonPropertyName("open")] public bool Open { get; init; }
    [JsonPropertyName("quorum")] public bool Quorum { get; init; } = true;
    /// <summary>Usable size in KiB.</summary>
    [JsonPropertyName("size")] public long SizeKib { get; init; }
    /// <summary>KiB read from the local disk.</summary>
    [JsonPropertyName("read")] public long ReadKib { get; init; }
    /// <summary>KiB written to the local disk.</summary>
    [JsonPropertyName("written")] public long WrittenKib { get; init; }
    [JsonPropertyName("al-writes")] public long AlWrites { get; init; }
    [JsonPropertyName("bm-writes")] public long BmWrites { get; init; }
    [JsonPropertyName("upper-pending")] public long UpperPending { get; init; }
    [JsonPropertyName("lower-pending")] public long LowerPending { get; init; }
    /// <summary>Export name and NBD address (our extension: where to reach the device).</summary>
    [JsonPropertyName("nbd-export")] public string? NbdExport { get; init; }
    [JsonPropertyName("nbd-address")] public string? NbdAddress { get; init; }
    /// <summary>Number of NBD client connections holding the device open (our extension).</summary>
    [JsonPropertyName("nbd-clients")] public int NbdClients { get; init; }
}

/// <summary>The connection to one peer.</summary>
public sealed record ConnectionStatus
{
    [JsonPropertyName("peer-node-id")] public int PeerNodeId { get; init; }
    [JsonPropertyName("name")] public required string Name { get; init; }
    [JsonPropertyName("connection-state")] public ConnectionState ConnectionState { get; init; }
    [JsonPropertyName("congested")] public bool Congested { get; init; }
    [JsonPropertyName("peer-role")] public Role PeerRole { get; init; }
    [JsonPropertyName("tls")] public bool Tls { get; init; }
    [JsonPropertyName("ap-in-flight")] public long ApInFlight { get; init; }
    [JsonPropertyName("rs-in-flight")] public long RsInFlight { get; init; }
    [JsonPropertyName("peer_devices")] public IReadOnlyList<PeerDeviceStatus> PeerDevices { get; init; } = [];
}

/// <summary>A volume as seen on one connection (DRBD "peer device").</summary>
public sealed record PeerDeviceStatus
{
    [JsonPropertyName("volume")] public int Volume { get; init; }
    [JsonPropertyName("replication-state")] public ReplicationState ReplicationState { get; init; }
    [JsonPropertyName("peer-disk-state")] public DiskState PeerDiskState { get; init; } = DiskState.DUnknown;
    [JsonPropertyName("peer-client")] public bool PeerClient { get; init; }
    [JsonPropertyName("resync-suspended")] public string ResyncSuspended { get; init; } = "no";
    [JsonPropertyName("received")] public long ReceivedKib { get; init; }
    [JsonPropertyName("sent")] public long SentKib { get; init; }
    /// <summary>Out-of-sync data in KiB.</summary>
    [JsonPropertyName("out-of-sync")] public long OutOfSyncKib { get; init; }
    [JsonPropertyName("pending")] public long Pending { get; init; }
    [JsonPropertyName("unacked")] public long Unacked { get; init; }
    [JsonPropertyName("has-sync-details")] public bool HasSyncDetails { get; init; }
    [JsonPropertyName("has-online-verify-details")] public bool HasOnlineVerifyDetails { get; init; }
    [JsonPropertyName("percent-in-sync")] public double PercentInSync { get; init; } = 100.0;
}

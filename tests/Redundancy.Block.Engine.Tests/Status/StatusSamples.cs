// Status models shared by the text, events2 and JSON tests: the situations drbdadm's documentation
// shows (a lone Primary, a StandAlone peer, an established peer, a resync at 37.50%).
using Redundancy.Block.Engine.States;
using Redundancy.Block.Engine.Status;

namespace Redundancy.Block.Engine.Tests.Status;

internal static class StatusSamples
{
    public static DeviceStatus Device(int volume, DiskState disk, bool open = false) =>
        new() { Volume = volume, Minor = volume, DiskState = disk, Open = open, SizeKib = 65_536 };

    public static PeerDeviceStatus PeerDevice(int volume, ReplicationState replication, DiskState peerDisk, double percentInSync = 100.0, long outOfSyncKib = 0) =>
        new() { Volume = volume, ReplicationState = replication, PeerDiskState = peerDisk, PercentInSync = percentInSync, OutOfSyncKib = outOfSyncKib };

    public static ConnectionStatus Connection(string name, int nodeId, ConnectionState state, Role peerRole, params PeerDeviceStatus[] peerDevices) =>
        new() { Name = name, PeerNodeId = nodeId, ConnectionState = state, PeerRole = peerRole, PeerDevices = peerDevices };

    public static ResourceStatus LonePrimary() => new()
    {
        Name = "r0",
        NodeId = 0,
        Role = Role.Primary,
        Devices = [Device(0, DiskState.UpToDate)],
    };

    public static ResourceStatus WithStandAlonePeer() => new()
    {
        Name = "r0",
        Role = Role.Secondary,
        Devices = [Device(0, DiskState.UpToDate)],
        Connections = [Connection("beta", 1, ConnectionState.StandAlone, Role.Unknown, PeerDevice(0, ReplicationState.Off, DiskState.DUnknown))],
    };

    public static ResourceStatus Established() => new()
    {
        Name = "r0",
        Role = Role.Primary,
        Devices = [Device(0, DiskState.UpToDate)],
        Connections = [Connection("beta", 1, ConnectionState.Connected, Role.Secondary, PeerDevice(0, ReplicationState.Established, DiskState.UpToDate))],
    };

    public static ResourceStatus Syncing() => new()
    {
        Name = "r0",
        Role = Role.Primary,
        Devices = [Device(0, DiskState.UpToDate)],
        Connections = [Connection("beta", 1, ConnectionState.Connected, Role.Secondary,
            PeerDevice(0, ReplicationState.SyncSource, DiskState.Inconsistent, percentInSync: 37.5, outOfSyncKib: 40_960))],
    };
}

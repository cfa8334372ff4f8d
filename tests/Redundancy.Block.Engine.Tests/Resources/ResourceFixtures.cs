// Builders shared by the state-machine tests: real fresh superblocks (made the way create-md makes
// them) and a scripted IRandom so generated UUIDs are known in advance.
using Redundancy.Block.Engine.Io;
using Redundancy.Block.Engine.Metadata;
using Redundancy.Block.Engine.Resources;
using Redundancy.Block.Engine.States;

namespace Redundancy.Block.Engine.Tests.Resources;

/// <summary>An IRandom returning scripted values in order; counts calls so tests can see none were made.</summary>
internal sealed class ScriptedRandom(params ulong[] values) : IRandom
{
    public int Calls { get; private set; }

    public ulong NextUInt64()
    {
        Assert.True(Calls < values.Length, "the test scripted too few random values");
        return values[Calls++];
    }
}

internal static class ResourceFixtures
{
    public const ulong FirstRandom = 0x1122_3344_5566_7788;
    public const ulong SecondRandom = 0x99AA_BBCC_DDEE_FF00;
    public const ulong UpToDateUuid = 0x0ABC_DEF0_1234_5670;

    /// <summary>Fresh (create-md) metadata for node 0 on a 64 MiB disk; <paramref name="peerNodeIds"/> get slots in order.</summary>
    public static Superblock Fresh(int peerSlots, params int[] peerNodeIds)
    {
        Assert.True(MetadataLayout.TryCreateInternal(64L << 20, peerSlots, out var layout, out string error), error);
        var options = new MetadataFormatOptions { NodeId = 0, PeerNodeIds = [.. peerNodeIds], DeviceUuid = 0xD0D0, CreationTime = 1_700_000_000 };
        Assert.True(Superblock.TryCreateFresh(layout, options, out var superblock, out error), error);
        return superblock;
    }

    /// <summary>Metadata of a disk that was UpToDate and cleanly demoted: Consistent|WasUpToDate, a real current UUID.</summary>
    public static Superblock WasUpToDate(int peerSlots, params int[] peerNodeIds) =>
        Fresh(peerSlots, peerNodeIds) with
        {
            Flags = MetadataFlags.Consistent | MetadataFlags.WasUpToDate | MetadataFlags.AlClean,
            CurrentUuid = UpToDateUuid,
        };

    public static ResourceStateMachine Machine(IRandom random, params PeerState[] peers) =>
        new("r0", 0, [0], peers, random);

    public static PeerState Beta() => new("beta", 1);

    public static PeerState ConnectedPeer(string name, int nodeId, Role role, DiskState disk) =>
        new(name, nodeId) { Connection = ConnectionState.Connected, PeerRole = role, PeerDisk = disk };

    /// <summary>Attaches and forgets the attach transitions and dirtiness, as a host would after writing.</summary>
    public static void AttachPersisted(ResourceStateMachine machine, int volume, Superblock metadata)
    {
        Assert.Equal(StateChangeResult.Success, machine.Attach(volume, metadata));
        machine.Volume(volume).MarkMetadataPersisted();
        machine.TakeTransitions();
    }

    public static string[] Lines(IEnumerable<StateTransition> transitions) => [.. transitions.Select(t => t.ToString())];
}

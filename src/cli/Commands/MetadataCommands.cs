using System.CommandLine;
using Redundancy.Block.Agent.Storage;
using Redundancy.Block.Engine.Config;
using Redundancy.Block.Engine.Control;
using Redundancy.Block.Engine.Metadata;

namespace Redundancy.Block.Cli.Commands;

/// <summary>
/// create-md and dump-md: work on the backing disk directly, with no agent, as drbdmeta does.
/// create-md refuses to overwrite metadata or a filesystem without --force.
/// </summary>
internal static class MetadataCommands
{
    private const int HeadProbeBytes = 128 * 1024;

    public static Command CreateMd()
    {
        var force = new Option<bool>("--force") { Description = "Overwrite existing metadata or a filesystem" };
        var maxPeers = new Option<int?>("--max-peers") { Description = "Bitmap slots to reserve (default: the peers in the config, at least 1)" };
        var command = new Command("create-md", "Initialise the metadata of a resource's disk(s)") { CommandRunner.ResourceArgument, force, maxPeers };
        CommandRunner.SetHandler(command, async (parse, context, cancellationToken) =>
        {
            var config = CommandRunner.LoadConfig(context);
            foreach (var (definition, volumeNumber) in CommandRunner.Select(config, context, parse.GetValue(CommandRunner.ResourceArgument)!))
            {
                var node = definition.FindNode(context.NodeName)!;
                int peers = Math.Max(1, Math.Max(definition.Nodes.Count - 1, parse.GetValue(maxPeers) ?? 0));
                foreach (var volume in node.Volumes.Where(v => volumeNumber is null || v.Number == volumeNumber))
                {
                    await CreateAsync(definition, node, volume, peers, parse.GetValue(force), cancellationToken).ConfigureAwait(false);
                }
            }
            return ExitCodes.Success;
        });
        return command;
    }

    public static Command DumpMd()
    {
        var command = new Command("dump-md", "Print a disk's metadata in readable text") { CommandRunner.ResourceArgument };
        CommandRunner.SetHandler(command, async (parse, context, cancellationToken) =>
        {
            var config = CommandRunner.LoadConfig(context);
            foreach (var (definition, volumeNumber) in CommandRunner.Select(config, context, parse.GetValue(CommandRunner.ResourceArgument)!))
            {
                foreach (var volume in definition.FindNode(context.NodeName)!.Volumes.Where(v => volumeNumber is null || v.Number == volumeNumber))
                {
                    Console.Out.Write(await DumpAsync(definition, volume, cancellationToken).ConfigureAwait(false));
                }
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static async Task CreateAsync(ResourceDefinition definition, NodeDefinition node, VolumeDefinition volume, int peerSlots, bool force, CancellationToken cancellationToken)
    {
        string subject = $"{definition.Name}/{volume.Number}";
        using var backing = OpenDisk(subject, volume.Disk, readOnly: false);
        using var metaDisk = volume.IsInternalMetadata ? null : OpenDisk(subject, volume.MetaDisk, readOnly: false);
        var metaDevice = metaDisk ?? backing;
        await RefuseToOverwriteAsync(subject, backing, metaDevice, volume.IsInternalMetadata, force, cancellationToken).ConfigureAwait(false);

        bool laid = volume.IsInternalMetadata
            ? MetadataLayout.TryCreateInternal(backing.SizeBytes, peerSlots, out var layout, out string error)
            : MetadataLayout.TryCreateExternal(backing.SizeBytes, metaDevice.SizeBytes, peerSlots, out layout, out error);
        if (!laid)
        {
            throw new CliException($"{subject}: {error}", ExitCodes.DiskError);
        }
        var options = new MetadataFormatOptions
        {
            NodeId = node.NodeId,
            PeerNodeIds = [.. definition.Nodes.Where(n => n.Name != node.Name).Select(n => n.NodeId)],
            AlExtents = definition.AlExtents(volume),
            DeviceUuid = NewUuid(),
            CreationTime = (ulong)DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
        };
        if (!Superblock.TryCreateFresh(layout, options, out var fresh, out error))
        {
            throw new CliException($"{subject}: {error}", ExitCodes.DiskError);
        }
        Console.Out.WriteLine($"{subject}: initializing activity log ({layout.ActivityLogSizeBytes / 1024} KiB)");
        Console.Out.WriteLine($"{subject}: initializing bitmap ({layout.BitmapSizeBytes / 1024} KiB, {peerSlots} peer slot(s)) to all zero");
        await new MetadataStore(metaDevice, layout).FormatAsync(fresh, cancellationToken).ConfigureAwait(false);
        Console.Out.WriteLine($"{subject}: new meta data block successfully created on {metaDevice.Path} ({layout.UsableSizeBytes / 1024} KiB usable).");
    }

    /// <summary>Refuses to overwrite existing metadata or a filesystem unless forced; the message says what is there.</summary>
    private static async Task RefuseToOverwriteAsync(string subject, FileBlockDevice backing, FileBlockDevice metaDevice, bool isInternal, bool force, CancellationToken cancellationToken)
    {
        if (force)
        {
            return;
        }
        var existing = await MetadataStore.ProbeAsync(metaDevice, isInternal, cancellationToken).ConfigureAwait(false);
        if (existing.Success)
        {
            throw new CliException($"{subject}: {metaDevice.Path} already holds metadata (node-id {existing.Superblock!.NodeId}); use --force to overwrite it", ExitCodes.DiskError);
        }
        foreach (var device in new[] { backing, metaDevice }.Distinct())
        {
            byte[] head = new byte[(int)Math.Min(HeadProbeBytes, device.SizeBytes)];
            await device.ReadAsync(0, head, cancellationToken).ConfigureAwait(false);
            if (FilesystemSignature.Detect(head) is { } found)
            {
                throw new CliException($"{subject}: {device.Path} holds {found}; creating metadata would damage it. Use --force to overwrite", ExitCodes.DiskError);
            }
        }
    }

    private static async Task<string> DumpAsync(ResourceDefinition definition, VolumeDefinition volume, CancellationToken cancellationToken)
    {
        string subject = $"{definition.Name}/{volume.Number}";
        using var backing = OpenDisk(subject, volume.Disk, readOnly: true);
        using var metaDisk = volume.IsInternalMetadata ? null : OpenDisk(subject, volume.MetaDisk, readOnly: true);
        var metaDevice = metaDisk ?? backing;
        var opened = await MetadataStore.OpenAsync(metaDevice, volume.IsInternalMetadata, backing.SizeBytes, cancellationToken).ConfigureAwait(false);
        if (opened.Error is not null)
        {
            throw new CliException($"{subject}: metadata on {metaDevice.Path}: {opened.Error}", ExitCodes.DiskError);
        }
        var store = opened.Store!;
        var superblock = opened.Superblock!;
        var layout = store.Layout;
        var bitmaps = new List<QuickSyncBitmap>();
        for (int slot = 0; slot < layout.PeerSlots; slot++)
        {
            bitmaps.Add(await store.ReadBitmapAsync(slot, cancellationToken).ConfigureAwait(false));
        }
        var activityLog = await store.ReadActivityLogAsync(superblock, cancellationToken).ConfigureAwait(false);
        return $"# {subject} on {metaDevice.Path}\n" + MetadataDump.Format(superblock, layout, bitmaps, activityLog);
    }

    private static FileBlockDevice OpenDisk(string subject, string? path, bool readOnly)
    {
        if (path is null)
        {
            throw new CliException($"{subject}: the volume is diskless (`disk none`): no metadata to work on", ExitCodes.Usage);
        }
        try
        {
            return FileBlockDevice.Open(path, new FileBlockDeviceOptions { ReadOnly = readOnly, Exclusive = !readOnly });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"{subject}: {e.Message}", ExitCodes.DiskError);
        }
    }

    private static ulong NewUuid() => BitConverter.ToUInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
}

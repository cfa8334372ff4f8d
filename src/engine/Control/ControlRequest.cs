using Redundancy.Block.Engine.Config;

namespace Redundancy.Block.Engine.Control;

/// <summary>
/// One request from rbadm to rbagent over the control socket: a single JSON line. The CLI resolves
/// the configuration and sends the resource definition along, as drbdadm hands resolved settings
/// to the kernel; the agent never reads config files.
/// </summary>
public sealed record ControlRequest
{
    /// <summary>The drbdadm command name, e.g. "up", "primary", "status".</summary>
    public required string Command { get; init; }

    /// <summary>Resource name, or null for commands over all resources the agent has (status, events).</summary>
    public string? Resource { get; init; }

    /// <summary>Volume number when the command named RESOURCE/VOLUME, else null (all volumes).</summary>
    public int? Volume { get; init; }

    /// <summary>Resolved definition, sent with commands that (re)configure: up, attach, adjust.</summary>
    public ResourceDefinition? Definition { get; init; }

    /// <summary>`--force` (also `--overwrite-data-of-peer` for primary).</summary>
    public bool Force { get; init; }

    /// <summary>`--now` for events.</summary>
    public bool Now { get; init; }

    /// <summary>`connect --discard-my-data`: this node gives up its changes if the handshake finds a split brain.</summary>
    public bool DiscardMyData { get; init; }

    /// <summary>`new-current-uuid --clear-bitmap`: skip the initial sync of a freshly created pair.</summary>
    public bool ClearBitmap { get; init; }

    /// <summary>`invalidate` / `invalidate-remote` `--reset-bitmap=no`: resync only the blocks the bitmaps already mark out-of-sync.</summary>
    public bool KeepBitmap { get; init; }

    /// <summary>`resize --assume-clean`: the area the device grows by is not resynced (it is known to be equal, e.g. zeroes).</summary>
    public bool AssumeClean { get; init; }

    /// <summary>`verify --start`: where online verify starts, in bytes; null resumes where an interrupted verify stopped (else 0).</summary>
    public long? VerifyStartOffsetBytes { get; init; }
}

/// <summary>
/// The agent's answer: one JSON line. Streaming commands (events) send any number of lines with
/// <see cref="Line"/> set first, then a final response with <see cref="Done"/>.
/// </summary>
public sealed record ControlResponse
{
    public bool Ok { get; init; }

    /// <summary>One-line reason for a failure, in DRBD's terms.</summary>
    public string? Error { get; init; }

    /// <summary>Exit status rbadm should use on failure (DRBD uses 10 for a refused state change).</summary>
    public int ExitCode { get; init; }

    /// <summary>Status of the requested resources (status, role, dstate, cstate).</summary>
    public IReadOnlyList<Status.ResourceStatus>? Status { get; init; }

    /// <summary>get-timeout-type: which startup timeout wait-connect and wait-sync use.</summary>
    public Resources.WaitTimeoutType? TimeoutType { get; init; }

    /// <summary>One output line of a streaming command.</summary>
    public string? Line { get; init; }

    /// <summary>True on the last message of a response.</summary>
    public bool Done { get; init; } = true;

    public static ControlResponse Success() => new() { Ok = true };

    public static ControlResponse Failure(string error, int exitCode = ExitCodes.StateChangeFailed) =>
        new() { Ok = false, Error = error, ExitCode = exitCode };
}

/// <summary>Exit codes shared by rbadm and the agent's responses (drbdadm's conventions where it has them).</summary>
public static class ExitCodes
{
    public const int Success = 0;
    /// <summary>Bad usage or unknown resource (drbdadm exits 1 or 3 for these; we use one code).</summary>
    public const int Usage = 1;
    /// <summary>Config file could not be parsed.</summary>
    public const int ConfigError = 3;
    /// <summary>The agent could not be reached.</summary>
    public const int NoAgent = 5;
    /// <summary>A state change was refused (drbdsetup's exit code for SS_* failures).</summary>
    public const int StateChangeFailed = 11;
    /// <summary>Metadata or disk operation failed.</summary>
    public const int DiskError = 20;
}

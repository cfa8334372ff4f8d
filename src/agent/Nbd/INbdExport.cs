using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Nbd;

/// <summary>
/// One export opened by one NBD client connection. The NBD server sees only this: the size, whether
/// it is read-only, the data path, and a token that fires when the agent takes the export away
/// (`secondary --force`, `down`, shutdown). Disposing it tells the agent the client has gone.
/// </summary>
public interface INbdExport : IDisposable
{
    /// <summary>Export name as the client asked for it.</summary>
    string Name { get; }

    /// <summary>Size the client sees, in bytes.</summary>
    long SizeBytes { get; }

    bool IsReadOnly { get; }

    /// <summary>The data path: reads, writes, flushes, trims go here.</summary>
    IBlockDevice Device { get; }

    /// <summary>
    /// Fires when the agent revokes the export. The session must then fail in-flight and new requests
    /// with ESHUTDOWN and close the connection.
    /// </summary>
    CancellationToken Revoked { get; }
}

/// <summary>What the NBD server may serve: the agent's resources, seen as named exports.</summary>
public interface INbdExportCatalog
{
    /// <summary>Exports to show for NBD_OPT_LIST (name, description).</summary>
    IReadOnlyList<NbdExportInfo> ListExports();

    /// <summary>
    /// Opens <paramref name="name"/> for a client. On refusal returns false and a one-line reason the
    /// server sends in its NBD_REP_ERR_* message, e.g. "r0 is Secondary; NBD clients are refused
    /// until it is promoted".
    /// </summary>
    bool TryOpen(string name, out INbdExport? export, out string refusal);
}

/// <summary>An export as listed by NBD_OPT_LIST and described by NBD_OPT_INFO.</summary>
public readonly record struct NbdExportInfo(string Name, string Description);

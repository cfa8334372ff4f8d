// The exports the fuzzed NBD server offers: "r0" (1 MiB, writable, fast zero), "ro" (64 KiB,
// read-only) and "r1" (listed but refused, as a Secondary is). Opens and disposes are counted: every
// export a session opened must be released when it ends.
using Redundancy.Block.Agent.Nbd;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Fuzz.Support;

public sealed class FuzzCatalog : INbdExportCatalog
{
    private readonly ArrayDevice _r0 = new(1 << 20, canFastZero: true);
    private readonly ArrayDevice _ro = new(64 * 1024, canFastZero: false);
    private int _open;

    /// <summary>Exports opened and not yet disposed.</summary>
    public int OpenExports => Volatile.Read(ref _open);

    public IReadOnlyList<NbdExportInfo> ListExports() =>
        [new("r0", "fuzz export"), new("ro", "read-only"), new("r1", "")];

    public bool TryOpen(string name, out INbdExport? export, out string refusal)
    {
        export = null;
        refusal = "";
        ArrayDevice? device = name switch { "r0" => _r0, "ro" => _ro, _ => null };
        if (device is null)
        {
            refusal = name == "r1" ? "r1 is Secondary; NBD clients are refused until it is promoted" : "";
            return false;
        }

        Interlocked.Increment(ref _open);
        export = new Export(this, name, device, name == "ro");
        return true;
    }

    private sealed class Export(FuzzCatalog catalog, string name, IBlockDevice device, bool readOnly) : INbdExport
    {
        private int _disposed;

        public string Name => name;

        public long SizeBytes => device.SizeBytes;

        public bool IsReadOnly => readOnly;

        public IBlockDevice Device => device;

        public CancellationToken Revoked => CancellationToken.None;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref catalog._open);
            }
        }
    }
}

// A test INbdExportCatalog: named exports over MemoryBlockDevices, refusals, opens and revocation.
using Redundancy.Block.Agent.Nbd;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Tests.Nbd.TestSupport;

public sealed class TestCatalog : INbdExportCatalog
{
    private readonly Dictionary<string, Entry> _entries = [];

    public int OpenCount;

    public int DisposeCount;

    public sealed class Entry(MemoryBlockDevice device, bool readOnly, string? refusal, string description)
    {
        public MemoryBlockDevice Device { get; } = device;

        public bool ReadOnly { get; } = readOnly;

        public string? Refusal { get; } = refusal;

        public string Description { get; } = description;

        public CancellationTokenSource Revocation { get; } = new();
    }

    public MemoryBlockDevice Add(string name, long sizeBytes, bool readOnly = false, string? refusal = null, bool canFastZero = false, string description = "")
    {
        var device = new MemoryBlockDevice(sizeBytes, canFastZero);
        _entries[name] = new Entry(device, readOnly, refusal, description);
        return device;
    }

    public void Revoke(string name) => _entries[name].Revocation.Cancel();

    public IReadOnlyList<NbdExportInfo> ListExports() =>
        [.. _entries.Select(entry => new NbdExportInfo(entry.Key, entry.Value.Description))];

    public bool TryOpen(string name, out INbdExport? export, out string refusal)
    {
        export = null;
        if (!_entries.TryGetValue(name, out Entry? entry))
        {
            refusal = $"no resource named '{name}'";
            return false;
        }

        if (entry.Refusal is { } reason)
        {
            refusal = reason;
            return false;
        }

        refusal = "";
        Interlocked.Increment(ref OpenCount);
        export = new Export(this, name, entry);
        return true;
    }

    private sealed class Export(TestCatalog catalog, string name, Entry entry) : INbdExport
    {
        public string Name => name;

        public long SizeBytes => entry.Device.SizeBytes;

        public bool IsReadOnly => entry.ReadOnly;

        public IBlockDevice Device => entry.Device;

        public CancellationToken Revoked => entry.Revocation.Token;

        public void Dispose() => Interlocked.Increment(ref catalog.DisposeCount);
    }
}

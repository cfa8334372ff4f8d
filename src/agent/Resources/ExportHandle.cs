using Redundancy.Block.Agent.Nbd;
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// One NBD client's hold on a volume: counted by the resource so `secondary` and `down` can refuse
/// while the device is held open, and revocable so `secondary --force` can take it away.
/// </summary>
internal sealed class ExportHandle(string name, IBlockDevice device, CancellationToken revoked, Action<ExportHandle> release) : INbdExport
{
    private int disposed;

    public string Name { get; } = name;

    public long SizeBytes => Device.SizeBytes;

    public bool IsReadOnly => false;

    public IBlockDevice Device { get; } = device;

    public CancellationToken Revoked { get; } = revoked;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) == 0)
        {
            release(this);
        }
    }
}

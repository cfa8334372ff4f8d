// Power-loss model for the metadata crash tests: a device that passes every write on and records it
// with its flush epoch, and the list of every state the disk can be left in when power fails during
// the recorded writes. Writes of earlier epochs (a flush came between) are durable; of the epoch being
// written, any subset of the other writes landed too (the disk may reorder unflushed writes), and one
// write is torn after any number of bytes. A FUA write is durable when it completes; after unflushed
// writes it would not order them, a case the model refuses rather than get wrong.
using Redundancy.Block.Engine.Io;

namespace Redundancy.Block.Agent.Tests.Storage;

/// <summary>One recorded write (WriteZeroes and Discard count as writes of zeroes).</summary>
internal sealed record RecordedWrite(long OffsetBytes, byte[] Data, int Epoch);

/// <summary>A disk state after a power loss: <see cref="WholeWrites"/> landed, write <see cref="TornWrite"/> only its first <see cref="TornBytes"/> bytes.</summary>
internal sealed record CrashPoint(int TornWrite, int TornBytes, IReadOnlyList<int> WholeWrites)
{
    public override string ToString() =>
        $"write {TornWrite} torn after {TornBytes} bytes, whole: [{string.Join(',', WholeWrites)}]";
}

internal sealed class CrashRecordingDevice(IBlockDevice inner) : IBlockDevice
{
    private const int MaxReorderedWrites = 4;
    private readonly List<RecordedWrite> writes = [];
    private int epoch;
    private bool epochHasWrites;

    public IReadOnlyList<RecordedWrite> Writes => writes;

    public long SizeBytes => inner.SizeBytes;

    public bool CanFastZero => inner.CanFastZero;

    /// <summary>Forgets the writes so far (they are the base state of the next crash points).</summary>
    public void Clear()
    {
        writes.Clear();
        epoch = 0;
        epochHasWrites = false;
    }

    public ValueTask ReadAsync(long offsetBytes, Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(offsetBytes, buffer, cancellationToken);

    public ValueTask WriteAsync(long offsetBytes, ReadOnlyMemory<byte> data, bool fua, CancellationToken cancellationToken = default)
    {
        if (fua && epochHasWrites)
        {
            throw new InvalidOperationException("a FUA write after unflushed writes: the crash model does not cover it");
        }
        writes.Add(new RecordedWrite(offsetBytes, data.ToArray(), epoch));
        epochHasWrites = !fua;
        epoch += fua ? 1 : 0;
        return inner.WriteAsync(offsetBytes, data, fua, cancellationToken);
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (epochHasWrites)
        {
            epoch++;
            epochHasWrites = false;
        }
        return inner.FlushAsync(cancellationToken);
    }

    public ValueTask DiscardAsync(long offsetBytes, long lengthBytes, CancellationToken cancellationToken = default) =>
        WriteZeroesAsync(offsetBytes, lengthBytes, mayUnmap: true, cancellationToken);

    public async ValueTask WriteZeroesAsync(long offsetBytes, long lengthBytes, bool mayUnmap, CancellationToken cancellationToken = default) =>
        await WriteAsync(offsetBytes, new byte[lengthBytes], fua: false, cancellationToken).ConfigureAwait(false);

    public ValueTask GetAllocationAsync(long offsetBytes, long lengthBytes, List<AllocationExtent> extents, CancellationToken cancellationToken = default) =>
        inner.GetAllocationAsync(offsetBytes, lengthBytes, extents, cancellationToken);

    public void Dispose() => inner.Dispose();

    /// <summary>
    /// Every crash point of <paramref name="recorded"/>: each write torn after 0..length bytes
    /// (every <paramref name="tornStepBytes"/>-th, and the whole write), with each subset of the
    /// other writes of its epoch.
    /// </summary>
    public static IEnumerable<CrashPoint> CrashPoints(IReadOnlyList<RecordedWrite> recorded, int tornStepBytes = 1)
    {
        for (int torn = 0; torn < recorded.Count; torn++)
        {
            int epoch = recorded[torn].Epoch;
            int[] earlier = [.. Enumerable.Range(0, recorded.Count).Where(i => recorded[i].Epoch < epoch)];
            int[] sameEpoch = [.. Enumerable.Range(0, recorded.Count).Where(i => i != torn && recorded[i].Epoch == epoch)];
            if (sameEpoch.Length > MaxReorderedWrites)
            {
                throw new InvalidOperationException($"{sameEpoch.Length + 1} writes between two flushes: too many orders to list");
            }
            for (int subset = 0; subset < 1 << sameEpoch.Length; subset++)
            {
                int[] whole = [.. earlier, .. sameEpoch.Where((_, k) => (subset & (1 << k)) != 0)];
                int length = recorded[torn].Data.Length;
                for (int bytes = 0; bytes < length; bytes += tornStepBytes)
                {
                    yield return new CrashPoint(torn, bytes, whole);
                }
                yield return new CrashPoint(torn, length, whole);
            }
        }
    }

    /// <summary>
    /// Puts the file at <paramref name="path"/> in the state of <paramref name="point"/>: the bytes of
    /// <paramref name="baseImage"/> at <paramref name="baseOffsetBytes"/> (the state before the recorded
    /// writes), then the whole writes in order, then the torn prefix.
    /// </summary>
    public static void Apply(string path, long baseOffsetBytes, byte[] baseImage, IReadOnlyList<RecordedWrite> recorded, CrashPoint point)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        RandomAccess.Write(handle, baseImage, baseOffsetBytes);
        foreach (int index in point.WholeWrites.Order())
        {
            RandomAccess.Write(handle, recorded[index].Data, recorded[index].OffsetBytes);
        }
        var torn = recorded[point.TornWrite];
        RandomAccess.Write(handle, torn.Data.AsSpan(0, point.TornBytes), torn.OffsetBytes);
    }

    /// <summary>True when the torn write's range holds all of its data (the torn bytes changed nothing).</summary>
    public static bool TornWriteLanded(string path, IReadOnlyList<RecordedWrite> recorded, CrashPoint point)
    {
        var torn = recorded[point.TornWrite];
        byte[] now = new byte[torn.Data.Length];
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        RandomAccess.Read(handle, now, torn.OffsetBytes);
        return now.AsSpan().SequenceEqual(torn.Data);
    }
}

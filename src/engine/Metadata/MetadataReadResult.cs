// What reading the two superblock copies found: the winning superblock, or why there is none.
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;

namespace Redundancy.Block.Engine.Metadata;

public sealed record MetadataReadResult
{
    /// <summary>The valid copy with the higher sequence number; null when none is usable.</summary>
    public Superblock? Superblock { get; init; }
    /// <summary>Which copy won (0 or 1), or -1.</summary>
    public int Copy { get; init; } = -1;
    /// <summary>Why the metadata is unusable (both copies invalid, or not matching the layout); null on success.</summary>
    public string? Error { get; init; }
    /// <summary>Per copy: null when valid, else why not (one bad copy alone is normal after a torn write).</summary>
    public required ImmutableArray<string?> CopyErrors { get; init; }

    [MemberNotNullWhen(true, nameof(Superblock))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool Success => Superblock is not null && Error is null;
}

/// <summary>The outcome of <see cref="MetadataStore.OpenAsync"/>: a store and its superblock, or why not.</summary>
public sealed record MetadataOpenResult(MetadataStore? Store, Superblock? Superblock, string? Error, bool NoMetadata);

// The small enums ProtocolSettings carries on the wire (one byte each), with parsers from the config
// values drbd.conf uses. `discard-node-NAME` becomes DiscardLocal or DiscardRemote as seen from the
// node that parses it, as drbdadm does, so the two peers' values are mirror images of each other.
namespace Redundancy.Block.Engine.Peers.Protocol;

/// <summary>Replication protocol (net { protocol A|B|C; }).</summary>
public enum ReplicationProtocol : byte
{
    /// <summary>Asynchronous: complete when on the local disk and handed to the send path.</summary>
    A = 1,
    /// <summary>Semi-synchronous: complete when the peer has received it (RecvAck).</summary>
    B = 2,
    /// <summary>Synchronous: complete when on the peer's disk (WriteAck).</summary>
    C = 3,
}

/// <summary>after-sb-0pri: split brain with no Primary.</summary>
public enum AfterSb0Pri : byte
{
    Disconnect = 0,
    DiscardYoungerPrimary = 1,
    DiscardOlderPrimary = 2,
    DiscardZeroChanges = 3,
    DiscardLeastChanges = 4,
    /// <summary>discard-local, or discard-node-NAME naming this node.</summary>
    DiscardLocal = 5,
    /// <summary>discard-remote, or discard-node-NAME naming the peer.</summary>
    DiscardRemote = 6,
}

/// <summary>after-sb-1pri: split brain with one Primary.</summary>
public enum AfterSb1Pri : byte
{
    Disconnect = 0,
    Consensus = 1,
    ViolentlyAs0p = 2,
    DiscardSecondary = 3,
    CallPriLostAfterSb = 4,
}

/// <summary>after-sb-2pri: split brain with two Primaries.</summary>
public enum AfterSb2Pri : byte
{
    Disconnect = 0,
    ViolentlyAs0p = 1,
    CallPriLostAfterSb = 2,
}

/// <summary>Data compression (net { compression lz4; }, our extension).</summary>
public enum CompressionAlgorithm : byte
{
    None = 0,
    Lz4 = 1,
}

public static class ProtocolSettingsValues
{
    public static bool TryParseProtocol(string value, out ReplicationProtocol protocol)
    {
        protocol = value.Trim() switch { "A" or "a" => ReplicationProtocol.A, "B" or "b" => ReplicationProtocol.B, "C" or "c" => ReplicationProtocol.C, _ => 0 };
        return protocol != 0;
    }

    /// <summary>Parses after-sb-0pri; <paramref name="localNodeName"/> resolves discard-node-NAME.</summary>
    public static bool TryParseAfterSb0Pri(string value, string localNodeName, out AfterSb0Pri policy)
    {
        const string DiscardNode = "discard-node-";
        if (value.StartsWith(DiscardNode, StringComparison.Ordinal) && value.Length > DiscardNode.Length)
        {
            policy = value[DiscardNode.Length..] == localNodeName ? AfterSb0Pri.DiscardLocal : AfterSb0Pri.DiscardRemote;
            return true;
        }

        policy = value switch
        {
            "disconnect" => AfterSb0Pri.Disconnect,
            "discard-younger-primary" => AfterSb0Pri.DiscardYoungerPrimary,
            "discard-older-primary" => AfterSb0Pri.DiscardOlderPrimary,
            "discard-zero-changes" => AfterSb0Pri.DiscardZeroChanges,
            "discard-least-changes" => AfterSb0Pri.DiscardLeastChanges,
            "discard-local" => AfterSb0Pri.DiscardLocal,
            "discard-remote" => AfterSb0Pri.DiscardRemote,
            _ => (AfterSb0Pri)0xFF,
        };
        return policy <= AfterSb0Pri.DiscardRemote;
    }

    public static bool TryParseAfterSb1Pri(string value, out AfterSb1Pri policy)
    {
        policy = value switch
        {
            "disconnect" => AfterSb1Pri.Disconnect,
            "consensus" => AfterSb1Pri.Consensus,
            "violently-as0p" => AfterSb1Pri.ViolentlyAs0p,
            "discard-secondary" => AfterSb1Pri.DiscardSecondary,
            "call-pri-lost-after-sb" => AfterSb1Pri.CallPriLostAfterSb,
            _ => (AfterSb1Pri)0xFF,
        };
        return policy <= AfterSb1Pri.CallPriLostAfterSb;
    }

    public static bool TryParseAfterSb2Pri(string value, out AfterSb2Pri policy)
    {
        policy = value switch
        {
            "disconnect" => AfterSb2Pri.Disconnect,
            "violently-as0p" => AfterSb2Pri.ViolentlyAs0p,
            "call-pri-lost-after-sb" => AfterSb2Pri.CallPriLostAfterSb,
            _ => (AfterSb2Pri)0xFF,
        };
        return policy <= AfterSb2Pri.CallPriLostAfterSb;
    }

    public static bool TryParseCompression(string? value, out CompressionAlgorithm compression)
    {
        compression = value switch { null or "" or "none" or "no" => CompressionAlgorithm.None, "lz4" => CompressionAlgorithm.Lz4, _ => (CompressionAlgorithm)0xFF };
        return compression <= CompressionAlgorithm.Lz4;
    }

    /// <summary>The drbd.conf spelling, for logs ("discard-zero-changes").</summary>
    public static string Name(AfterSb0Pri policy) => Kebab(policy.ToString());

    public static string Name(AfterSb1Pri policy) => policy == AfterSb1Pri.ViolentlyAs0p ? "violently-as0p" : Kebab(policy.ToString());

    public static string Name(AfterSb2Pri policy) => policy == AfterSb2Pri.ViolentlyAs0p ? "violently-as0p" : Kebab(policy.ToString());

    private static string Kebab(string pascal)
    {
        var chars = new System.Text.StringBuilder(pascal.Length + 4);
        foreach (char c in pascal)
        {
            if (char.IsUpper(c) && chars.Length > 0)
            {
                chars.Append('-');
            }

            chars.Append(char.ToLowerInvariant(c));
        }

        return chars.ToString();
    }
}

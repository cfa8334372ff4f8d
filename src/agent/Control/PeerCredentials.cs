using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Redundancy.Block.Agent.Control;

/// <summary>
/// Who is on the other end of a control connection (SO_PEERCRED). Only root or the agent's own
/// user may drive the agent; the socket's 0600 mode says the same, this checks it per connection.
/// </summary>
internal static partial class PeerCredentials
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>The peer's uid, or null when the kernel did not say.</summary>
    public static uint? PeerUid(Socket socket)
    {
        Span<byte> ucred = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        int length = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
        return length >= 8 ? BinaryPrimitives.ReadUInt32LittleEndian(ucred[4..8]) : null;
    }

    public static bool IsAllowed(Socket socket)
    {
        uint? uid = PeerUid(socket);
        return uid is not null && (uid == 0 || uid == GetEffectiveUid());
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUid();
}

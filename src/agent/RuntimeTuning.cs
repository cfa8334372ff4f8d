// Runtime settings the agent needs before its first socket exists. Socket completions run on the
// socket engine's thread instead of hopping to the thread pool: a replicated write crosses several
// sockets (client, peer, acknowledgement), and each hop was a context switch that cost more than the
// work it handed over (the handlers only take the replica lock briefly and queue disk I/O that lands
// in the page cache; fdatasync and other slow work go to the thread pool). An operator's own
// setting of the variable wins.
namespace Redundancy.Block.Agent;

internal static class RuntimeTuning
{
    private const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Applies the settings; must run before anything opens a socket.</summary>
    public static void Apply()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletions, "1");
        }
    }
}

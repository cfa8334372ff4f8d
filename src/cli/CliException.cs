using Redundancy.Block.Engine.Control;

namespace Redundancy.Block.Cli;

/// <summary>An expected failure: rbadm prints the one-line reason on stderr and exits with the code.</summary>
internal sealed class CliException(string message, int exitCode = ExitCodes.Usage) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

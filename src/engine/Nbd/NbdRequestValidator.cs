// Decides whether a transmission request may run, following the spec's "malformed requests" rules:
// unknown commands and flags get EINVAL, writes on a read-only export EPERM, ranges past the end
// EINVAL (ENOSPC for WRITE and WRITE_ZEROES), oversized payloads EINVAL (EOVERFLOW for a structured
// READ), FAST_ZERO without fast zeroing ENOTSUP. Pure: the session acts on the answer.
namespace Redundancy.Block.Engine.Nbd;

/// <summary>What the validator needs to know about the negotiated export.</summary>
/// <param name="SizeBytes">Export size.</param>
/// <param name="IsReadOnly">Export is read-only (READ_ONLY advertised).</param>
/// <param name="StructuredReplies">NBD_OPT_STRUCTURED_REPLY was negotiated.</param>
/// <param name="CanFastZero">SEND_FAST_ZERO was advertised.</param>
/// <param name="HasMetaContext">A metadata context (base:allocation) is selected for this export.</param>
/// <param name="MaxPayloadBytes">Largest READ/WRITE payload, as advertised in NBD_INFO_BLOCK_SIZE.</param>
public readonly record struct NbdExportLimits(
    ulong SizeBytes, bool IsReadOnly, bool StructuredReplies, bool CanFastZero, bool HasMetaContext, uint MaxPayloadBytes);

/// <summary>Validates transmission requests against an export.</summary>
public static class NbdRequestValidator
{
    /// <summary>Returns <see cref="NbdError.None"/> if the request may run, else the error to reply with.</summary>
    public static NbdError Validate(in NbdRequestHeader request, in NbdExportLimits limits)
    {
        NbdError error = ValidateCommandAndFlags(request, limits);
        if (error != NbdError.None)
        {
            return error;
        }

        bool writes = request.Command is NbdCommand.Write or NbdCommand.Trim or NbdCommand.WriteZeroes;
        if (writes && limits.IsReadOnly)
        {
            return NbdError.Perm;
        }

        error = ValidateRange(request, limits);
        if (error != NbdError.None)
        {
            return error;
        }

        return request.Command switch
        {
            NbdCommand.Read when request.LengthBytes > limits.MaxPayloadBytes =>
                limits.StructuredReplies ? NbdError.Overflow : NbdError.Invalid,
            NbdCommand.Write when request.LengthBytes > limits.MaxPayloadBytes => NbdError.Invalid,
            NbdCommand.BlockStatus when request.LengthBytes == 0 => NbdError.Invalid,
            NbdCommand.WriteZeroes when (request.Flags & NbdCommandFlags.FastZero) != 0 && !limits.CanFastZero =>
                NbdError.NotSupported,
            _ => NbdError.None,
        };
    }

    /// <summary>Unknown commands, unknown flags and flags that do not belong to the command.</summary>
    private static NbdError ValidateCommandAndFlags(in NbdRequestHeader request, in NbdExportLimits limits)
    {
        NbdCommandFlags allowed = request.Command switch
        {
            NbdCommand.Read => limits.StructuredReplies ? NbdCommandFlags.Fua | NbdCommandFlags.DontFragment : NbdCommandFlags.Fua,
            NbdCommand.Write or NbdCommand.Flush or NbdCommand.Trim or NbdCommand.Cache or NbdCommand.Disconnect =>
                NbdCommandFlags.Fua,
            NbdCommand.WriteZeroes => NbdCommandFlags.Fua | NbdCommandFlags.NoHole | NbdCommandFlags.FastZero,
            NbdCommand.BlockStatus => NbdCommandFlags.Fua | NbdCommandFlags.ReqOne,
            _ => NbdCommandFlags.None,
        };

        bool known = request.Command <= NbdCommand.BlockStatus;
        if (!known || (request.Flags & ~allowed) != 0)
        {
            return NbdError.Invalid;
        }

        return request.Command == NbdCommand.BlockStatus && !(limits.StructuredReplies && limits.HasMetaContext)
            ? NbdError.Invalid
            : NbdError.None;
    }

    /// <summary>offset + length must not wrap 2^64 and must stay inside the export (FLUSH has no range).</summary>
    private static NbdError ValidateRange(in NbdRequestHeader request, in NbdExportLimits limits)
    {
        if (request.Command is NbdCommand.Flush or NbdCommand.Disconnect)
        {
            return NbdError.None;
        }

        ulong end = request.OffsetBytes + request.LengthBytes;
        if (end < request.OffsetBytes)
        {
            return NbdError.Invalid;
        }

        if (request.OffsetBytes > limits.SizeBytes || end > limits.SizeBytes)
        {
            return request.Command is NbdCommand.Write or NbdCommand.WriteZeroes ? NbdError.NoSpace : NbdError.Invalid;
        }

        return NbdError.None;
    }
}

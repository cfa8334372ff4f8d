// Handlers of the negotiation options that describe exports: LIST, INFO/GO, STRUCTURED_REPLY and
// LIST/SET_META_CONTEXT. INFO and GO share one path, so they always give identical answers.
using Redundancy.Block.Engine;
using Redundancy.Block.Engine.Nbd;

namespace Redundancy.Block.Agent.Nbd;

internal sealed partial class NbdSession
{
    /// <summary>Preferred block size advertised in NBD_INFO_BLOCK_SIZE.</summary>
    private const uint PreferredBlockBytes = 4096;

    private List<byte[]> HandleList(byte[] data)
    {
        uint option = (uint)NbdOption.List;
        if (data.Length != 0)
        {
            return [Invalid(option, "NBD_OPT_LIST takes no data")];
        }

        List<byte[]> replies = [.. _catalog.ListExports().Select(export => NbdHandshakeWriter.Server(export.Name, export.Description))];
        replies.Add(NbdHandshakeWriter.Ack(option));
        return replies;
    }

    private List<byte[]> HandleStructuredReply(byte[] data)
    {
        uint option = (uint)NbdOption.StructuredReply;
        if (data.Length != 0)
        {
            return [Invalid(option, "NBD_OPT_STRUCTURED_REPLY takes no data")];
        }

        StructuredReplies = true;
        return [NbdHandshakeWriter.Ack(option)];
    }

    /// <summary>INFO describes an export and forgets it; GO describes it and enters transmission with it.</summary>
    private async Task<OptionOutcome> HandleInfoOrGoAsync(NbdOption option, byte[] data, CancellationToken cancellationToken)
    {
        if (!NbdOptionParser.TryParseInfoRequest(data, out NbdInfoRequest? request, out string parseError))
        {
            await SendAsync(Invalid((uint)option, parseError), cancellationToken).ConfigureAwait(false);
            return OptionOutcome.Continue;
        }

        INbdExport? export = TryOpenExport(request!.ExportName, out NbdOptionReplyType refusalType, out string refusal);
        if (export is null)
        {
            await SendAsync(NbdHandshakeWriter.Error((uint)option, refusalType, refusal), cancellationToken).ConfigureAwait(false);
            return OptionOutcome.Continue;
        }

        bool entering = false;
        try
        {
            List<byte[]> replies = DescribeExport((uint)option, export, request.InfoTypes);
            await ReplyAsync((uint)option, replies, cancellationToken).ConfigureAwait(false);
            entering = option == NbdOption.Go;
            return entering ? new OptionOutcome(false, export) : OptionOutcome.Continue;
        }
        finally
        {
            if (!entering)
            {
                export.Dispose();
            }
        }
    }

    /// <summary>INFO_EXPORT and BLOCK_SIZE always, NAME and DESCRIPTION when asked; unknown types ignored.</summary>
    private List<byte[]> DescribeExport(uint option, INbdExport export, IReadOnlyList<ushort> infoTypes)
    {
        List<byte[]> replies = [NbdHandshakeWriter.InfoExport(option, (ulong)export.SizeBytes, TransmissionFlags(export))];
        foreach (ushort type in infoTypes.Distinct())
        {
            if (type == (ushort)NbdInfoType.Name)
            {
                replies.Add(NbdHandshakeWriter.InfoText(option, NbdInfoType.Name, export.Name));
            }
            else if (type == (ushort)NbdInfoType.Description
                && _catalog.ListExports().FirstOrDefault(listed => listed.Name == export.Name).Description is { Length: > 0 } description)
            {
                replies.Add(NbdHandshakeWriter.InfoText(option, NbdInfoType.Description, description));
            }
        }

        replies.Add(NbdHandshakeWriter.InfoBlockSize(option, 1, PreferredBlockBytes, (uint)_options.MaxPayloadBytes));
        replies.Add(NbdHandshakeWriter.Ack(option));
        return replies;
    }

    /// <summary>
    /// LIST_META_CONTEXT shows base:allocation for an empty query list, "base:" or "base:allocation";
    /// SET_META_CONTEXT (structured replies first) selects it for one export. Other namespaces are ignored.
    /// </summary>
    private List<byte[]> HandleMetaContext(NbdOption option, byte[] data)
    {
        bool set = option == NbdOption.SetMetaContext;
        if (set)
        {
            _baseAllocationSelected = false;    // SET replaces the selection, even when it fails
            _metaContextExport = null;
            if (!StructuredReplies)
            {
                return [Invalid((uint)option, "NBD_OPT_SET_META_CONTEXT needs NBD_OPT_STRUCTURED_REPLY first")];
            }
        }

        if (!NbdOptionParser.TryParseMetaContextRequest(data, out NbdMetaContextRequest? request, out string parseError))
        {
            return [Invalid((uint)option, parseError)];
        }

        if (!_catalog.ListExports().Any(listed => listed.Name == request!.ExportName))
        {
            return [NbdHandshakeWriter.Error((uint)option, NbdOptionReplyType.ErrUnknown, $"no export named '{request!.ExportName}'")];
        }

        bool selected = set
            ? request!.Queries.Contains(NbdLimits.BaseAllocation)
            : request!.Queries.Count == 0 || request.Queries.Any(query => query is "base:" or NbdLimits.BaseAllocation);
        List<byte[]> replies = [];
        if (selected)
        {
            replies.Add(NbdHandshakeWriter.MetaContext((uint)option, set ? BaseAllocationContextId : 0, NbdLimits.BaseAllocation));
        }

        if (set)
        {
            _baseAllocationSelected = selected;
            _metaContextExport = request.ExportName;
        }

        replies.Add(NbdHandshakeWriter.Ack((uint)option));
        return replies;
    }

    /// <summary>
    /// Opens an export through the catalog. On refusal returns null with the catalog's message and the
    /// reply type: ERR_UNKNOWN when no such export is listed, ERR_POLICY when it exists but may not be
    /// opened now (e.g. the resource is Secondary).
    /// </summary>
    private INbdExport? TryOpenExport(string name, out NbdOptionReplyType refusalType, out string refusal)
    {
        if (_catalog.TryOpen(name, out INbdExport? export, out refusal))
        {
            Invariant.Assert(export is not null, "catalog accepted an export but returned none");
            refusalType = default;
            _logger.ExportOpened(_client, name, export.SizeBytes, TransmissionFlags(export).ToString());
            return export;
        }

        bool listed = _catalog.ListExports().Any(listedExport => listedExport.Name == name);
        refusalType = listed ? NbdOptionReplyType.ErrPolicy : NbdOptionReplyType.ErrUnknown;
        if (string.IsNullOrEmpty(refusal))
        {
            refusal = listed ? $"export '{name}' is not available" : $"no export named '{name}'";
        }

        _logger.ExportRefused(_client, name, refusal);
        return null;
    }

    private NbdTransmissionFlags TransmissionFlags(INbdExport export)
    {
        NbdTransmissionFlags flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua
            | NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.CanMultiConn
            | NbdTransmissionFlags.SendCache;
        if (export.Device.CanFastZero)
        {
            flags |= NbdTransmissionFlags.SendFastZero;
        }

        if (StructuredReplies)
        {
            flags |= NbdTransmissionFlags.SendDf;
        }

        if (export.IsReadOnly)
        {
            flags |= NbdTransmissionFlags.ReadOnly;
        }

        return flags;
    }
}

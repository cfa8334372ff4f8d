using System.Text.Json;
using System.Text.Json.Serialization;
using Redundancy.Block.Engine.Status;

namespace Redundancy.Block.Engine.Control;

/// <summary>
/// Source-generated JSON for the control protocol and `status --json`: no reflection at start-up,
/// enums as DRBD's names.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
[JsonSerializable(typeof(List<ResourceStatus>))]
internal sealed partial class ControlJsonContext : JsonSerializerContext;

/// <summary>Serialisation entry points for the control protocol and drbdsetup-style JSON.</summary>
public static class ControlJson
{
    private static readonly ControlJsonContext Indented = new(new JsonSerializerOptions
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter() },
    });

    public static string Serialize(ControlRequest request) =>
        JsonSerializer.Serialize(request, ControlJsonContext.Default.ControlRequest);

    public static string Serialize(ControlResponse response) =>
        JsonSerializer.Serialize(response, ControlJsonContext.Default.ControlResponse);

    /// <summary>Parses an untrusted request line; returns null with a reason when it is not one.</summary>
    public static ControlRequest? ParseRequest(string line, out string error)
    {
        error = string.Empty;
        try
        {
            var request = JsonSerializer.Deserialize(line, ControlJsonContext.Default.ControlRequest);
            if (request is null)
            {
                error = "empty request";
            }
            return request;
        }
        catch (JsonException e)
        {
            error = "malformed request: " + e.Message;
            return null;
        }
    }

    /// <summary>Parses a response line; null when it is not one (a version mismatch, or not an agent).</summary>
    public static ControlResponse? ParseResponse(string line)
    {
        try
        {
            return JsonSerializer.Deserialize(line, ControlJsonContext.Default.ControlResponse);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>drbdsetup `status --json` output: an indented array of resources.</summary>
    public static string FormatStatus(IReadOnlyList<ResourceStatus> resources) =>
        JsonSerializer.Serialize(resources.ToList(), Indented.ListResourceStatus);
}

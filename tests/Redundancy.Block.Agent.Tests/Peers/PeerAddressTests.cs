// The replication address forms the agent accepts, and the ones it refuses with a clear message.
using System.Net;
using Redundancy.Block.Agent.Peers;

namespace Redundancy.Block.Agent.Tests.Peers;

public sealed class PeerAddressTests
{
    [Theory]
    [InlineData("127.0.0.1:7789", "127.0.0.1:7789")]
    [InlineData("ipv4 127.0.0.2:7790", "127.0.0.2:7790")]
    [InlineData("[::1]:7789", "[::1]:7789")]
    [InlineData("ipv6 [fd00::1]:7000", "[fd00::1]:7000")]
    public void Accepted_forms_parse_to_their_endpoint(string text, string expected) =>
        Assert.Equal(IPEndPoint.Parse(expected), PeerAddress.Parse(text));

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.1:70000")]
    [InlineData("localhost:7789")]
    [InlineData("::1:7789")]
    [InlineData("ipv6 127.0.0.1:7789")]
    [InlineData("sdp 127.0.0.1:7789")]
    public void Other_forms_are_refused_with_the_address_in_the_message(string text)
    {
        var error = Assert.Throws<FormatException>(() => PeerAddress.Parse(text));
        Assert.Contains($"'{text}'", error.Message, StringComparison.Ordinal);
    }
}

using Redundancy.Block.Engine.Replication;

namespace Redundancy.Block.Engine.Tests.Replication;

/// <summary>`done:` of an online verify, as status shows it.</summary>
public class VerifyProgressTests
{
    [Theory]
    [InlineData(4096, 0, 0.0)]
    [InlineData(4096, 1024, 25.0)]
    [InlineData(4096, 4096, 100.0)]
    [InlineData(0, 0, 100.0)]
    public void Done_percent_is_the_share_of_blocks_compared(long totalBits, long doneBits, double percent) =>
        Assert.Equal(percent, new VerifyProgress(Source: true, 0, totalBits, doneBits, FoundBits: 0).DonePercent);
}

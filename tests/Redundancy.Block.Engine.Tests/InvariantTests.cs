namespace Redundancy.Block.Engine.Tests;

public class InvariantTests
{
    [Fact]
    public void Fails_fast_when_the_condition_is_false()
    {
        Assert.Throws<InvariantViolationException>(() => Invariant.Assert(false, "x"));
        Invariant.Assert(true, "never thrown");
    }
}

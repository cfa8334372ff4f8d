using System.Threading.Channels;

namespace Redundancy.Block.Agent.Resources;

/// <summary>
/// Fans events2 lines out to every `rbadm events` subscriber. A subscriber that cannot keep up
/// loses its oldest lines rather than stalling state changes (the agent never blocks on a reader).
/// </summary>
public sealed class EventHub
{
    private const int SubscriberBacklog = 4096;
    private readonly Lock gate = new();
    private readonly List<Channel<string>> subscribers = [];

    /// <summary>Registers a subscriber; dispose the result to unsubscribe.</summary>
    public Subscription Subscribe()
    {
        var channel = Channel.CreateBounded<string>(new BoundedChannelOptions(SubscriberBacklog)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        lock (gate)
        {
            subscribers.Add(channel);
        }
        return new Subscription(this, channel);
    }

    public void Publish(IEnumerable<string> lines)
    {
        lock (gate)
        {
            foreach (string line in lines)
            {
                foreach (var subscriber in subscribers)
                {
                    subscriber.Writer.TryWrite(line);
                }
            }
        }
    }

    /// <summary>Ends every subscription (agent shutdown).</summary>
    public void CompleteAll()
    {
        lock (gate)
        {
            foreach (var subscriber in subscribers)
            {
                subscriber.Writer.TryComplete();
            }
        }
    }

    private void Remove(Channel<string> channel)
    {
        lock (gate)
        {
            subscribers.Remove(channel);
        }
        channel.Writer.TryComplete();
    }

    /// <summary>One subscriber's stream of lines.</summary>
    public sealed class Subscription(EventHub hub, Channel<string> channel) : IDisposable
    {
        public ChannelReader<string> Reader => channel.Reader;

        public void Dispose() => hub.Remove(channel);
    }
}

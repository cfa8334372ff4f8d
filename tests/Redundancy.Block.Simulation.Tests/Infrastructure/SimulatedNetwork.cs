namespace Redundancy.Block.Simulation.Infrastructure;

/// <summary>Knobs of the simulated network; delays in milliseconds.</summary>
public sealed record NetworkOptions
{
    public long MinDelayMs { get; init; } = 0;
    public long MaxDelayMs { get; init; } = 2;
    /// <summary>Chance that a message is "lost" and retransmitted: it arrives after <see cref="RetransmitDelayMs"/> more.</summary>
    public double LossProbability { get; init; }
    public long RetransmitDelayMs { get; init; } = 200;
    /// <summary>Chance per message that the connection is reset (both ends see it closed).</summary>
    public double ResetProbability { get; init; }
    /// <summary>How long a dial takes to fail when the peer is unreachable.</summary>
    public long DialTimeoutMs { get; init; } = 1000;
    /// <summary>
    /// Link speed per direction of a connection (0: unlimited). A message leaves only after the ones
    /// queued before it, taking its length ÷ this long on the wire, then travels the seeded delay: a
    /// slow link builds a send queue as TCP's does. Unset, timings and random draws are as before.
    /// </summary>
    public long BandwidthBytesPerSecond { get; init; }
    /// <summary>
    /// Chance that a segment is duplicated on the wire: the copy arrives later and the receiving
    /// end discards it by its sequence number, as TCP does (the application never sees it twice).
    /// </summary>
    public double DuplicationProbability { get; init; }
    /// <summary>
    /// Chance that a segment takes a slower path (up to <see cref="ReorderDelayMs"/> more) and
    /// arrives after later ones: the receiving end holds those back until the gap is filled, as
    /// TCP's reassembly does, so the application still reads in order.
    /// </summary>
    public double ReorderProbability { get; init; }
    public long ReorderDelayMs { get; init; } = 20;
}

/// <summary>
/// A network of named nodes joined by TCP-like connections: in order and without loss or
/// duplication within one connection while it lives (what TCP gives DRBD), with seeded delays,
/// retransmission stalls, resets and partitions (symmetric or one-way). A partition holds traffic
/// back rather than dropping it, as TCP keeps retransmitting; the endpoints' own timeouts decide
/// when to give up, as DRBD's ping-timeout does. Messages on different connections may overtake
/// each other.
/// </summary>
public sealed class SimulatedNetwork(EventScheduler scheduler, SimRandom random, NetworkOptions options)
{
    private readonly HashSet<(string From, string To)> blocked = [];
    private readonly Dictionary<string, Action<SimConnection>> listeners = new(StringComparer.Ordinal);

    public NetworkOptions Options { get; set; } = options;

    public long MessagesSent { get; private set; }

    /// <summary>Segments lost and retransmitted, duplicated (the copy discarded), and overtaken by later ones.</summary>
    public long MessagesLost { get; private set; }

    public long MessagesDuplicated { get; private set; }

    public long MessagesReordered { get; private set; }

    internal EventScheduler Scheduler => scheduler;

    internal SimRandom Random => random;

    /// <summary>Accepts connections to <paramref name="node"/>; <paramref name="onAccept"/> gets the accepting end.</summary>
    public void Listen(string node, Action<SimConnection> onAccept) => listeners[node] = onAccept;

    public void StopListening(string node) => listeners.Remove(node);

    /// <summary>Cuts traffic from <paramref name="from"/> to <paramref name="to"/> (and back unless one-way).</summary>
    public void Partition(string from, string to, bool oneWay = false)
    {
        blocked.Add((from, to));
        if (!oneWay)
        {
            blocked.Add((to, from));
        }
    }

    public void Heal(string a, string b)
    {
        blocked.Remove((a, b));
        blocked.Remove((b, a));
    }

    public void HealAll() => blocked.Clear();

    public bool CanReach(string from, string to) => !blocked.Contains((from, to));

    /// <summary>
    /// Opens a connection from <paramref name="from"/> to <paramref name="to"/>. <paramref name="onConnected"/>
    /// gets the dialling end once the peer accepted; <paramref name="onFailed"/> runs when nobody
    /// listens or the path is cut (after the dial timeout).
    /// </summary>
    public void Dial(string from, string to, Action<SimConnection> onConnected, Action onFailed)
    {
        long delay = Delay();
        scheduler.After(delay, () =>
        {
            if (!CanReach(from, to) || !CanReach(to, from) || !listeners.TryGetValue(to, out var accept))
            {
                scheduler.After(Math.Max(0, Options.DialTimeoutMs - delay), onFailed);
                return;
            }
            var pair = SimConnection.CreatePair(this, from, to);
            accept(pair.Accepting);
            onConnected(pair.Dialling);
        });
    }

    internal long Delay() => random.NextInt64(Options.MinDelayMs, Options.MaxDelayMs + 1);

    internal void CountMessage() => MessagesSent++;

    internal void CountLoss() => MessagesLost++;

    internal void CountDuplicate() => MessagesDuplicated++;

    internal void CountReorder() => MessagesReordered++;
}

/// <summary>
/// One end of a simulated TCP connection. Set <see cref="OnReceive"/> and <see cref="OnClosed"/>
/// before traffic flows; <see cref="Send"/> delivers to the other end in order.
/// </summary>
public sealed class SimConnection
{
    private readonly SimulatedNetwork network;
    private SimConnection other = null!;
    private long lastDeliveryMs;
    /// <summary>When the bytes queued so far have left this end (only with a bandwidth limit).</summary>
    private double wireFreeAtMs;
    private readonly Queue<byte[]> inbox = new();
    /// <summary>Segments that arrived ahead of a gap (TCP reassembly), by sequence number.</summary>
    private readonly SortedDictionary<long, byte[]> outOfOrder = [];
    private long nextSendSequence;
    private long nextExpectedSequence;
    private bool pumpScheduled;
    private bool dropIncoming;

    private SimConnection(SimulatedNetwork network, string local, string remote)
    {
        this.network = network;
        Local = local;
        Remote = remote;
    }

    public string Local { get; }

    public string Remote { get; }

    public bool IsOpen { get; private set; } = true;

    /// <summary>Called with each message from the other end, in order.</summary>
    public Action<byte[]>? OnReceive { get; set; }

    /// <summary>Called once when the connection is gone (closed by either end, or reset).</summary>
    public Action? OnClosed { get; set; }

    internal static (SimConnection Dialling, SimConnection Accepting) CreatePair(SimulatedNetwork network, string from, string to)
    {
        var dialling = new SimConnection(network, from, to);
        var accepting = new SimConnection(network, to, from);
        dialling.other = accepting;
        accepting.other = dialling;
        return (dialling, accepting);
    }

    public void Send(byte[] message)
    {
        if (!IsOpen)
        {
            return;
        }
        network.CountMessage();
        if (network.Random.Chance(network.Options.ResetProbability))
        {
            Reset();
            return;
        }
        long delay = network.Delay();
        if (network.Random.Chance(network.Options.LossProbability))
        {
            network.CountLoss();
            delay += network.Options.RetransmitDelayMs;
        }
        long departureMs = network.Scheduler.NowMs;
        if (network.Options.BandwidthBytesPerSecond > 0)
        {
            wireFreeAtMs = Math.Max(wireFreeAtMs, network.Scheduler.NowMs) + message.Length * 1000.0 / network.Options.BandwidthBytesPerSecond;
            departureMs = (long)Math.Ceiling(wireFreeAtMs);
        }
        long sequence = nextSendSequence++;
        var target = other;
        if (network.Random.Chance(network.Options.ReorderProbability))
        {
            // A slower path: later segments may arrive first; the receiver reassembles.
            network.CountReorder();
            long slow = departureMs + delay + network.Random.NextInt64(1, network.Options.ReorderDelayMs + 1);
            network.Scheduler.After(slow - network.Scheduler.NowMs, () => target.Deliver(sequence, message));
            lastDeliveryMs = Math.Max(lastDeliveryMs, departureMs + delay);
        }
        else
        {
            // In-order delivery: never before the previous message on this direction.
            long at = Math.Max(departureMs + delay, lastDeliveryMs);
            lastDeliveryMs = at;
            network.Scheduler.After(at - network.Scheduler.NowMs, () => target.Deliver(sequence, message));
        }
        if (network.Random.Chance(network.Options.DuplicationProbability))
        {
            network.CountDuplicate();
            long copyAt = departureMs + delay + network.Random.NextInt64(0, network.Options.ReorderDelayMs + 1);
            network.Scheduler.After(Math.Max(0, copyAt - network.Scheduler.NowMs), () => target.Deliver(sequence, message));
        }
    }

    /// <summary>Closes this end; the other end learns of it after a network delay (if it can hear us).</summary>
    public void Close()
    {
        if (!IsOpen)
        {
            return;
        }
        IsOpen = false;
        var target = other;
        long at = Math.Max(network.Scheduler.NowMs + network.Delay(), lastDeliveryMs);
        network.Scheduler.After(at - network.Scheduler.NowMs, () => target.PeerClosed());
        OnClosed?.Invoke();
    }

    /// <summary>
    /// The node behind this end vanished (power loss): nothing it sent that is still in flight
    /// arrives, and the other end notices only later (when its own timeout fires, or after a delay).
    /// </summary>
    public void Abort()
    {
        if (!IsOpen)
        {
            return;
        }
        IsOpen = false;
        var target = other;
        target.inbox.Clear();
        target.dropIncoming = true;
        network.Scheduler.After(network.Options.DialTimeoutMs, target.PeerClosed);
    }

    /// <summary>
    /// Both ends see the connection reset. The ends learn it from the scheduler, never from inside
    /// the <see cref="Send"/> that hit the reset: a host is not re-entered from its own call.
    /// </summary>
    private void Reset()
    {
        IsOpen = false;
        other.IsOpen = false;
        var (near, far) = (this, other);
        network.Scheduler.After(0, () => near.OnClosed?.Invoke());
        network.Scheduler.After(0, () => far.OnClosed?.Invoke());
    }

    /// <summary>TCP's receive side: a duplicate (already delivered or held) is dropped; a segment after a gap waits for it.</summary>
    private void Deliver(long sequence, byte[] message)
    {
        if (dropIncoming || sequence < nextExpectedSequence || outOfOrder.ContainsKey(sequence))
        {
            return;
        }
        outOfOrder[sequence] = message;
        while (outOfOrder.Remove(nextExpectedSequence, out var next))
        {
            inbox.Enqueue(next);
            nextExpectedSequence++;
        }
        Pump();
    }

    /// <summary>
    /// Hands arrived messages to the receiver in order. While a partition cuts the path they wait
    /// (TCP retransmits) and later ones queue behind them, so order holds across the heal.
    /// </summary>
    private void Pump()
    {
        while (inbox.Count > 0 && IsOpen)
        {
            if (!network.CanReach(Remote, Local))
            {
                if (!pumpScheduled)
                {
                    pumpScheduled = true;
                    network.Scheduler.After(network.Options.RetransmitDelayMs, () =>
                    {
                        pumpScheduled = false;
                        Pump();
                    });
                }
                return;
            }
            OnReceive?.Invoke(inbox.Dequeue());
        }
    }

    private void PeerClosed()
    {
        if (!IsOpen)
        {
            return;
        }
        if (!network.CanReach(Remote, Local))
        {
            network.Scheduler.After(network.Options.RetransmitDelayMs, PeerClosed);
            return;
        }
        IsOpen = false;
        OnClosed?.Invoke();
    }
}

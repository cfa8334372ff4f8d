using System.Buffers;
using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Replication;
using Redundancy.Block.Simulation.Infrastructure;

namespace Redundancy.Block.Simulation.Replication;

/// <summary>
/// Two nodes' peer links joined by the simulated network: dials, accepts, frames, closes and
/// ticks are carried out the way the agent's transport does, in simulated time.
/// </summary>
public sealed class LinkedPair
{
    public const long TickMs = 100;

    public LinkedPair(int seed, PeerLinkSettings alpha, FakeHost alphaHost, PeerLinkSettings beta, FakeHost betaHost, NetworkOptions? options = null)
    {
        Random = new SimRandom(seed);
        Network = new SimulatedNetwork(Scheduler, Random.Fork(), options ?? new NetworkOptions());
        Alpha = new Node(this, new PeerLink(alpha, alphaHost, Random.Fork()));
        Beta = new Node(this, new PeerLink(beta, betaHost, Random.Fork()));
        Alpha.Other = Beta;
        Beta.Other = Alpha;
        Network.Listen(Alpha.Name, Alpha.Accept);
        Network.Listen(Beta.Name, Beta.Accept);
        Scheduler.After(TickMs, TickAll);
    }

    public EventScheduler Scheduler { get; } = new();

    public SimRandom Random { get; }

    public SimulatedNetwork Network { get; }

    public Node Alpha { get; }

    public Node Beta { get; }

    public void ConnectBoth()
    {
        Alpha.Link.Connect(Scheduler.NowMs);
        Beta.Link.Connect(Scheduler.NowMs);
        Alpha.Pump();
        Beta.Pump();
    }

    public bool RunUntil(Func<bool> condition, long maxMs) => Scheduler.RunUntil(condition, maxMs);

    private void TickAll()
    {
        foreach (var node in new[] { Alpha, Beta })
        {
            node.Link.Tick(Scheduler.NowMs);
            node.Pump();
        }
        Scheduler.After(TickMs, TickAll);
    }

    /// <summary>One node: its link, its current connection, and every decision and log line it produced.</summary>
    public sealed class Node(LinkedPair pair, PeerLink link)
    {
        private SimConnection? connection;

        public PeerLink Link { get; } = link;

        public string Name => Link.Settings.LocalNodeName;

        public Node Other { get; set; } = null!;

        public List<string> Log { get; } = [];

        public List<IReadOnlyList<VolumeDecision>> Decisions { get; } = [];

        public int FramesReceived { get; private set; }

        public void Accept(SimConnection accepted)
        {
            Attach(accepted);
            Link.TransportConnected(pair.Scheduler.NowMs);
            Pump();
        }

        public void Pump()
        {
            var output = Link.TakeOutput();
            Log.AddRange(output.Log);
            Log.AddRange(output.Transitions.Select(t => t.ToString()));
            if (output.Decisions is { } decisions)
            {
                Decisions.Add(decisions);
            }
            foreach (var frame in output.Frames)
            {
                connection?.Send(frame);
            }
            if (output.CloseReason is not null && connection is not null)
            {
                var closing = connection;
                connection = null;
                closing.Close();
            }
            if (output.Dial)
            {
                pair.Network.Dial(Name, Other.Name, dialled =>
                {
                    Attach(dialled);
                    Link.TransportConnected(pair.Scheduler.NowMs);
                    Pump();
                }, () => { });
            }
        }

        private void Attach(SimConnection c)
        {
            if (connection is not null && connection.IsOpen)
            {
                c.Close(); // one connection at a time, as the agent's transport keeps it
                return;
            }
            connection = c;
            c.OnReceive = bytes => OnFrame(c, bytes);
            c.OnClosed = () =>
            {
                if (connection == c)
                {
                    connection = null;
                    Link.TransportClosed("connection closed", pair.Scheduler.NowMs);
                    Pump();
                }
            };
        }

        private void OnFrame(SimConnection c, byte[] bytes)
        {
            if (connection != c)
            {
                return;
            }
            var buffer = new ReadOnlySequence<byte>(bytes);
            Engine.Invariant.Assert(
                FrameReader.TryReadFrame(ref buffer, 1 << 20, out var header, out var payload, out string? error) && buffer.IsEmpty,
                $"a whole frame per simulated message ({error})");
            FramesReceived++;
            Link.Receive(header, payload, pair.Scheduler.NowMs);
            Pump();
        }
    }
}

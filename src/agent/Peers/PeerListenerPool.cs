// The agent's peer listeners, one per distinct replication address, shared by the resources and
// peers that name it and stopped when the last one lets go — as NbdEndpoints does for NBD.
using Microsoft.Extensions.Logging;

namespace Redundancy.Block.Agent.Peers;

/// <summary>Reference-counted <see cref="PeerListener"/>s keyed by address.</summary>
public sealed class PeerListenerPool : IAsyncDisposable
{
    private readonly PeerConnectionOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Dictionary<string, (PeerListener Listener, int Users)> _listeners = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    public PeerListenerPool(PeerConnectionOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        options.Validate();
        _options = options;
        _loggerFactory = loggerFactory;
    }

    /// <summary>
    /// The listener on <paramref name="address"/>, started on first use. Each call must be paired with
    /// <see cref="ReleaseAsync"/>. Throws <see cref="FormatException"/> for a bad address and
    /// <see cref="IOException"/> when it cannot be bound.
    /// </summary>
    public PeerListener Acquire(string address)
    {
        string key = Key(address);
        lock (_lock)
        {
            if (_listeners.TryGetValue(key, out var entry))
            {
                _listeners[key] = (entry.Listener, entry.Users + 1);
                return entry.Listener;
            }

            var listener = new PeerListener(key, _options, _loggerFactory);
            listener.Start();
            _listeners[key] = (listener, 1);
            return listener;
        }
    }

    /// <summary>Drops one user of <paramref name="address"/>; the last one stops its listener.</summary>
    public async Task ReleaseAsync(string address)
    {
        string key = Key(address);
        PeerListener listener;
        lock (_lock)
        {
            if (!_listeners.TryGetValue(key, out var entry))
            {
                return;
            }

            if (entry.Users > 1)
            {
                _listeners[key] = (entry.Listener, entry.Users - 1);
                return;
            }

            _listeners.Remove(key);
            listener = entry.Listener;
        }

        await listener.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Users of the listener on <paramref name="address"/> (0 when none is running).</summary>
    public int UserCount(string address)
    {
        string key = Key(address);
        lock (_lock)
        {
            return _listeners.TryGetValue(key, out var entry) ? entry.Users : 0;
        }
    }

    /// <summary>Stops every listener (agent shutdown).</summary>
    public async ValueTask DisposeAsync()
    {
        PeerListener[] listeners;
        lock (_lock)
        {
            listeners = [.. _listeners.Values.Select(entry => entry.Listener)];
            _listeners.Clear();
        }

        foreach (PeerListener listener in listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>One spelling per endpoint, so "ipv4 127.0.0.1:7789" and "127.0.0.1:7789" share a listener.</summary>
    private static string Key(string address) => PeerAddress.Parse(address).ToString();
}

using Redundancy.Block.Engine.Peers.Protocol;
using Redundancy.Block.Engine.Replication;

namespace Redundancy.Block.Engine.Tests.Replication;

public class WriteTrackerTests
{
    private const int Beta = 1;
    private const int Gamma = 2;

    [Fact]
    public void Protocol_C_completes_after_the_local_write_and_the_peers_WriteAck_not_before()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var request = tracker.Begin(0, 4096, 4096, ReplicatedRequestKind.Write);
        Assert.Equal([Beta], request.SendTo);
        tracker.LocalDone(request.RequestId, succeeded: true);
        tracker.Sent(Beta, request.RequestId);
        Assert.True(tracker.Ack(Beta, request.RequestId, AckKind.RecvAck));
        Assert.Empty(tracker.TakeCompleted());
        tracker.Ack(Beta, request.RequestId, AckKind.WriteAck);
        Assert.Equal([new CompletedRequest(request.RequestId, true)], tracker.TakeCompleted());
    }

    [Fact]
    public void Dual_primary_Superseded_completes_the_request_and_RetryWrite_postpones_it()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var superseded = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        var retried = tracker.Begin(0, 8192, 4096, ReplicatedRequestKind.Write);
        Assert.True(tracker.AwaitsAck(Beta, superseded.RequestId));
        tracker.LocalDone(superseded.RequestId, succeeded: true);
        tracker.LocalDone(retried.RequestId, succeeded: true);
        Assert.True(tracker.Ack(Beta, superseded.RequestId, AckKind.Superseded));
        Assert.True(tracker.Ack(Beta, retried.RequestId, AckKind.RetryWrite));
        Assert.False(tracker.AwaitsAck(Beta, superseded.RequestId), "answered");
        Assert.Equal([new CompletedRequest(superseded.RequestId, true), new CompletedRequest(retried.RequestId, true, Postponed: true)], tracker.TakeCompleted());
    }

    [Fact]
    public void Protocol_C_waits_for_the_local_disk_even_when_the_peer_was_faster()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var request = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        tracker.Ack(Beta, request.RequestId, AckKind.WriteAck);
        Assert.Empty(tracker.TakeCompleted());
        tracker.LocalDone(request.RequestId, succeeded: true);
        Assert.Single(tracker.TakeCompleted());
    }

    [Fact]
    public void A_protocol_change_applies_to_new_requests_and_those_in_flight_keep_theirs()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var underC = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        tracker.SwitchProtocol(ReplicationProtocol.A);
        Assert.True(tracker.PeerMayLackWrites(Beta), "unacknowledged");
        var underA = tracker.Begin(0, 8192, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(underC.RequestId, true);
        tracker.LocalDone(underA.RequestId, true);
        tracker.Sent(Beta, underC.RequestId);
        tracker.Sent(Beta, underA.RequestId);
        Assert.Equal([new CompletedRequest(underA.RequestId, true)], tracker.TakeCompleted()); // the C write still waits for its WriteAck
        tracker.Ack(Beta, underC.RequestId, AckKind.WriteAck);
        Assert.Equal([new CompletedRequest(underC.RequestId, true)], tracker.TakeCompleted());
        Assert.True(tracker.PeerMayLackWrites(Beta), "the write sent under A is only sent until its BarrierAck");

        // And back: a request sent under A is still only sent; one sent under C waits for its WriteAck.
        tracker.SwitchProtocol(ReplicationProtocol.C);
        var againC = tracker.Begin(0, 16384, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(againC.RequestId, true);
        tracker.Sent(Beta, againC.RequestId);
        Assert.Empty(tracker.TakeCompleted());
        tracker.Ack(Beta, againC.RequestId, AckKind.WriteAck);
        Assert.Single(tracker.TakeCompleted());
        Assert.True(tracker.BarrierAck(Beta, tracker.CloseEpoch()!.Value));
        Assert.False(tracker.PeerMayLackWrites(Beta), "everything BarrierAcked");
    }

    [Fact]
    public void Protocol_B_completes_on_RecvAck()
    {
        var tracker = Tracker(ReplicationProtocol.B, Beta);
        var request = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(request.RequestId, true);
        tracker.Sent(Beta, request.RequestId);
        Assert.Empty(tracker.TakeCompleted());
        tracker.Ack(Beta, request.RequestId, AckKind.RecvAck);
        Assert.Single(tracker.TakeCompleted());
    }

    [Fact]
    public void Protocol_A_completes_once_handed_to_the_send_path_but_a_FLUSH_waits_for_the_peer()
    {
        var tracker = Tracker(ReplicationProtocol.A, Beta);
        var write = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(write.RequestId, true);
        Assert.Empty(tracker.TakeCompleted());
        tracker.Sent(Beta, write.RequestId);
        Assert.Single(tracker.TakeCompleted());

        var flush = tracker.Begin(0, 0, 0, ReplicatedRequestKind.Flush);
        tracker.LocalDone(flush.RequestId, true);
        tracker.Sent(Beta, flush.RequestId);
        Assert.Empty(tracker.TakeCompleted());
        tracker.Ack(Beta, flush.RequestId, AckKind.WriteAck);
        Assert.Single(tracker.TakeCompleted());
    }

    [Fact]
    public void Every_peer_must_acknowledge()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta, Gamma);
        var request = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        Assert.Equal([Beta, Gamma], request.SendTo);
        tracker.LocalDone(request.RequestId, true);
        tracker.Ack(Beta, request.RequestId, AckKind.WriteAck);
        Assert.Empty(tracker.TakeCompleted());
        tracker.Ack(Gamma, request.RequestId, AckKind.WriteAck);
        Assert.Single(tracker.TakeCompleted());
    }

    [Fact]
    public void Without_peers_a_request_completes_with_the_local_disk()
    {
        var tracker = new WriteTracker(ReplicationProtocol.C);
        var request = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        Assert.Empty(request.SendTo);
        tracker.LocalDone(request.RequestId, false);
        Assert.Equal([new CompletedRequest(request.RequestId, false)], tracker.TakeCompleted());
    }

    [Fact]
    public void A_failed_local_write_that_a_peer_has_succeeds_and_is_out_of_sync_for_that_peer()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var request = tracker.Begin(0, 8192, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(request.RequestId, false);
        Assert.Empty(tracker.TakeCompleted());
        tracker.Ack(Beta, request.RequestId, AckKind.WriteAck);
        Assert.Equal([new CompletedRequest(request.RequestId, true)], tracker.TakeCompleted());
        Assert.Equal([new OutOfSyncRange(Beta, 0, 8192, 4096)], tracker.TakeOutOfSync());

        var lost = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(lost.RequestId, false);
        tracker.Ack(Beta, lost.RequestId, AckKind.NegAck);
        Assert.Equal([new CompletedRequest(lost.RequestId, false)], tracker.TakeCompleted());
    }

    [Fact]
    public void A_lost_peer_gets_every_range_of_its_transfer_log_marked_out_of_sync_acked_or_not()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var acked = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(acked.RequestId, true);
        tracker.Ack(Beta, acked.RequestId, AckKind.WriteAck);
        var pending = tracker.Begin(1, 8192, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(pending.RequestId, true);
        Assert.Single(tracker.TakeCompleted());

        tracker.PeerLost(Beta);

        Assert.Equal([new CompletedRequest(pending.RequestId, true)], tracker.TakeCompleted());
        Assert.Equal(
            [new OutOfSyncRange(Beta, 0, 0, 4096), new OutOfSyncRange(Beta, 1, 8192, 4096)],
            tracker.TakeOutOfSync().OrderBy(r => r.OffsetBytes));
        Assert.Equal(0, tracker.PendingRequests);
    }

    [Fact]
    public void A_BarrierAck_releases_its_epoch_so_a_later_loss_marks_only_newer_requests()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var first = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(first.RequestId, true);
        tracker.Ack(Beta, first.RequestId, AckKind.WriteAck);
        var second = tracker.Begin(0, 65536, 4096, ReplicatedRequestKind.Write);
        Assert.Equal(first.Epoch, second.BarrierBefore);
        Assert.Equal(first.Epoch + 1, second.Epoch);
        Assert.Equal(2, tracker.InTransferLog(Beta));

        Assert.True(tracker.BarrierAck(Beta, first.Epoch));
        Assert.Equal(1, tracker.InTransferLog(Beta));
        tracker.PeerLost(Beta);
        Assert.Equal([new OutOfSyncRange(Beta, 0, 65536, 4096)], tracker.TakeOutOfSync());
    }

    [Fact]
    public void Epochs_close_after_a_completion_or_after_max_epoch_size_requests()
    {
        var tracker = new WriteTracker(ReplicationProtocol.C, maxEpochSize: 3);
        tracker.AddPeer(Beta);
        var requests = Enumerable.Range(0, 4).Select(i => tracker.Begin(0, i * 4096L, 4096, ReplicatedRequestKind.Write)).ToList();
        Assert.Equal([null, null, null, 1u], requests.Select(r => r.BarrierBefore));
        Assert.Equal([1u, 1u, 1u, 2u], requests.Select(r => r.Epoch));
    }

    [Fact]
    public void Acks_the_peer_could_not_have_are_refused()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var request = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        Assert.False(tracker.Ack(Beta, request.RequestId + 100, AckKind.WriteAck));
        Assert.False(tracker.Ack(Gamma, request.RequestId, AckKind.WriteAck));
        Assert.False(tracker.BarrierAck(Beta, request.Epoch));
        Assert.Equal(1, tracker.InFlight(Beta));
    }

    [Fact]
    public void A_NegAck_marks_the_range_out_of_sync_and_the_request_still_completes_from_the_local_disk()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var request = tracker.Begin(0, 4096, 8192, ReplicatedRequestKind.Write);
        tracker.LocalDone(request.RequestId, true);
        tracker.Ack(Beta, request.RequestId, AckKind.NegAck);
        Assert.Equal([new CompletedRequest(request.RequestId, true)], tracker.TakeCompleted());
        Assert.Equal([new OutOfSyncRange(Beta, 0, 4096, 8192)], tracker.TakeOutOfSync());
    }

    [Fact]
    public void A_diskless_primary_succeeds_through_its_peer()
    {
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var request = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write, localDisk: false);
        tracker.Ack(Beta, request.RequestId, AckKind.WriteAck);
        Assert.Equal([new CompletedRequest(request.RequestId, true)], tracker.TakeCompleted());
    }

    [Fact]
    public void A_write_only_an_Inconsistent_disk_holds_fails_when_the_peer_is_lost()
    {
        // A SyncTarget Primary: its disk is overwritten from the sync source at the next resync, so a
        // write the peer never confirmed is not the application's to keep.
        var tracker = Tracker(ReplicationProtocol.C, Beta);
        var unconfirmed = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        var confirmed = tracker.Begin(0, 8192, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(unconfirmed.RequestId, succeeded: true, upToDate: false);
        tracker.LocalDone(confirmed.RequestId, succeeded: true, upToDate: false);
        tracker.Ack(Beta, confirmed.RequestId, AckKind.WriteAck);
        tracker.PeerLost(Beta);
        Assert.Equal([new CompletedRequest(confirmed.RequestId, true), new CompletedRequest(unconfirmed.RequestId, false)], tracker.TakeCompleted());
        Assert.Contains(new OutOfSyncRange(Beta, 0, 0, 4096), tracker.TakeOutOfSync());
    }

    [Fact]
    public void Write_payload_stays_in_flight_until_its_BarrierAck_under_protocol_A()
    {
        var tracker = Tracker(ReplicationProtocol.A, Beta);
        var write = tracker.Begin(0, 0, 65536, ReplicatedRequestKind.Write);
        tracker.Sent(Beta, write.RequestId);
        tracker.LocalDone(write.RequestId, true);
        var trim = tracker.Begin(0, 1 << 20, 1 << 20, ReplicatedRequestKind.Trim); // no payload on the wire
        Assert.Equal(65536, tracker.InTransferLogBytes(Beta));
        Assert.Equal(1, tracker.InFlight(Beta)); // the trim, not yet handed over; the write was acked by sending it
        tracker.Sent(Beta, trim.RequestId);
        Assert.Equal(write.Epoch, trim.BarrierBefore);
        Assert.True(tracker.BarrierAck(Beta, write.Epoch));
        Assert.Equal(0, tracker.InTransferLogBytes(Beta));
        Assert.Equal(1, tracker.InTransferLog(Beta));
    }

    [Fact]
    public void A_peer_pulled_ahead_of_gets_no_new_requests_and_drains_after_the_closed_epochs_BarrierAck()
    {
        var tracker = Tracker(ReplicationProtocol.A, Beta, Gamma);
        var before = tracker.Begin(0, 0, 4096, ReplicatedRequestKind.Write);
        tracker.PullAhead(Beta);
        Assert.True(tracker.IsPulledAhead(Beta));
        Assert.Equal(before.Epoch, tracker.CloseEpoch());
        Assert.Null(tracker.CloseEpoch()); // nothing in the new epoch yet

        var after = tracker.Begin(0, 8192, 4096, ReplicatedRequestKind.Write);
        Assert.Equal([Gamma], after.SendTo);
        Assert.Null(after.BarrierBefore); // the closed epoch's barrier was the caller's to send
        Assert.Equal(4096, tracker.InTransferLogBytes(Beta));
        Assert.True(tracker.BarrierAck(Beta, before.Epoch));
        Assert.Equal(0, tracker.InTransferLog(Beta));

        tracker.Resume(Beta);
        Assert.Equal([Beta, Gamma], tracker.Begin(0, 16384, 4096, ReplicatedRequestKind.Write).SendTo);
        tracker.PullAhead(Gamma);
        tracker.PeerLost(Gamma);
        Assert.False(tracker.IsPulledAhead(Gamma));
    }

    [Fact]
    public void Protocol_A_holds_acknowledgements_beyond_the_send_bound_until_BarrierAcks_make_room()
    {
        var tracker = new WriteTracker(ReplicationProtocol.A);
        tracker.AddPeer(Beta, sendBoundBytes: 8192);
        // Epoch 1: three writes complete (nothing older is in flight), so each later one opens a new epoch.
        var first = WriteAndSend(tracker, 0);
        Assert.Equal([first], Completed(tracker));
        var second = WriteAndSend(tracker, 4096); // epoch 2; epoch 1 holds 4 KiB
        var third = WriteAndSend(tracker, 8192);  // epoch 3; epochs 1-2 hold 8 KiB: still within the bound
        Assert.Equal([second, third], Completed(tracker));
        var fourth = WriteAndSend(tracker, 12288); // epoch 4; 12 KiB older than it: held
        var fifth = WriteAndSend(tracker, 16384);  // same epoch (nothing completed), held behind the fourth
        Assert.Empty(tracker.TakeCompleted());
        Assert.Equal(2, tracker.HeldBySendBound(Beta));
        Assert.True(tracker.BarrierAck(Beta, 1)); // 8 KiB left in epochs 2-3: both go, in order
        Assert.Equal([fourth, fifth], Completed(tracker));
        Assert.Equal(0, tracker.HeldBySendBound(Beta));
    }

    [Fact]
    public void Protocol_A_never_holds_a_write_for_its_own_epoch_and_a_lost_peer_releases_held_writes()
    {
        var tracker = new WriteTracker(ReplicationProtocol.A);
        tracker.AddPeer(Beta, sendBoundBytes: 4096);
        // One epoch far over the bound: nothing older is in flight, so every write completes.
        var ids = Enumerable.Range(0, 8).Select(i => tracker.Begin(0, i * 65536L, 65536, ReplicatedRequestKind.Write)).ToList();
        foreach (var r in ids)
        {
            tracker.LocalDone(r.RequestId, true);
            tracker.Sent(Beta, r.RequestId);
        }
        Assert.Equal(8, tracker.TakeCompleted().Count);
        var held = WriteAndSend(tracker, 1 << 20); // a new epoch behind 512 KiB: held
        Assert.Empty(tracker.TakeCompleted());
        tracker.PeerLost(Beta);
        Assert.Equal([held], Completed(tracker));
        Assert.Contains(tracker.TakeOutOfSync(), r => r.OffsetBytes == 1 << 20);
    }

    private static ulong WriteAndSend(WriteTracker tracker, long offsetBytes)
    {
        var request = tracker.Begin(0, offsetBytes, 4096, ReplicatedRequestKind.Write);
        tracker.LocalDone(request.RequestId, true);
        foreach (int peer in request.SendTo)
        {
            tracker.Sent(peer, request.RequestId);
        }
        return request.RequestId;
    }

    private static List<ulong> Completed(WriteTracker tracker) => [.. tracker.TakeCompleted().Select(c => c.RequestId)];

    private static WriteTracker Tracker(ReplicationProtocol protocol, params int[] peerNodeIds)
    {
        var tracker = new WriteTracker(protocol);
        foreach (int peer in peerNodeIds)
        {
            tracker.AddPeer(peer);
        }
        return tracker;
    }
}

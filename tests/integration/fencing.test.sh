# shellcheck shell=bash
# fencing.test.sh — DRBD's fencing and Outdated disks (drbd.md §8 items 10-12) with two agents on
# loopback, using the two-node helpers of replication.test.sh: `outdate` and its refusals, an
# Outdated disk refused promotion and brought back to UpToDate by a resync; a `disconnect`
# outdating the Secondary; fence-peer's exit codes (4, 7, broken) when a Primary loses its peer
# and when a Secondary is promoted without it; resource-and-stonith freezing writes until the peer
# is fenced, the connection is back, or `resume-io`. A peer is lost by SIGKILL of its agent.
# Every case checks data through NBD with nbdtool.py patterns.

if ! declare -F rp_synced > /dev/null; then
    # shellcheck source=tests/integration/replication.test.sh
    source "$IT_DIR/replication.test.sh"
fi

setup_fencing_suite() { require_built; }

# fc_options FENCING — the fast two-node options, `fencing FENCING`, and a fence-peer handler that
# dumps its environment into $TEST_DIR/fence-peer.env, then runs $TEST_DIR/fence-peer.sh (fc_exit).
fc_options() {
    RB_RESOURCE_EXTRA="$RB_TWO_NODE_OPTIONS net { fencing $1; } handlers { fence-peer \"env > $TEST_DIR/fence-peer.env; sh $TEST_DIR/fence-peer.sh\"; }"
}

# fc_exit CODE [DELAY_S] — what fence-peer does from now on: wait DELAY_S, exit CODE.
fc_exit() { printf 'sleep %s\nexit %s\n' "${2:-0}" "$1" > "$TEST_DIR/fence-peer.sh"; }

# fc_peer_disk NODE — the peer's disk state as NODE's status --json has it (also while disconnected).
fc_peer_disk() { json_field "$1" '.[0].connections[0]["peer_devices"][0]["peer-disk-state"]'; }

# fc_kill_beta — SIGKILL beta's agent; alpha notices at once (the connection is reset).
fc_kill_beta() {
    kill -KILL "${AGENT_PID[beta]}"
    wait_for "[[ \$(rbadm alpha cstate r0) != Connected ]]" 20 || fail "alpha did not notice beta's death"
}

# fc_restart_beta — beta's agent again, up, and the resync both ways finished.
fc_restart_beta() {
    start_agent beta
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/UpToDate" "beta after coming back"
}

# fc_log NODE ERE WHAT — NODE's agent log matches ERE (waits up to 20 s).
fc_log() {
    wait_for "grep -Eq -- '$2' '$TEST_DIR/agent-$1.log'" 20 \
        || fail "$1's log does not say $3 (/$2/): $(grep -E 'fence|susp|r0 (alpha|beta):' "$TEST_DIR/agent-$1.log" | tail -n 3 | tr '\n' ' ')"
}

# fc_background_write URI OFFSET LENGTH SEED — nbdtool write in the background; sets WRITER_PID.
fc_background_write() {
    "$PYTHON" "$NBDTOOL" write "$@" > "$TEST_DIR/writer.log" 2>&1 &
    WRITER_PID=$!
    track_pid "$WRITER_PID"
}

# fc_writer_done TIMEOUT_S — the background write finished, successfully.
fc_writer_done() {
    wait_for "! pid_alive $WRITER_PID" "$1" || fail "the write did not complete within $1 s"
    local rc=0
    wait "$WRITER_PID" || rc=$?
    [[ $rc -eq 0 ]] || fail "the write failed (exit $rc): $(tail -n 2 "$TEST_DIR/writer.log" | tr '\n' ' ')"
}

# --- cases ---------------------------------------------------------------------------------------

fc_outdate_refuses_promotion_until_a_resync() {
    rp_synced
    write_on "$URI_A" 0 4M out-1
    expect_fail rbadm beta outdate r0
    assert_match "$OUTPUT" "Refusing to be Outdated while Connected" "outdate on a Secondary connected to its Primary"
    expect_fail rbadm alpha outdate r0
    assert_match "$OUTPUT" "Refusing to be Outdated while Connected" "outdate on the Primary"
    expect_ok rbadm beta disconnect r0
    wait_for "[[ \$(rbadm alpha cstate r0) != Connected ]]" 20 || fail "alpha did not notice the disconnect"
    write_on "$URI_A" 8M 2M out-apart
    expect_ok rbadm beta outdate r0
    assert_eq "$(rbadm beta dstate r0)" "Outdated/DUnknown" "beta after outdate"
    expect_fail rbadm beta primary r0
    assert_match "$OUTPUT" "Need access to UpToDate data" "promotion of an Outdated disk"
    assert_eq "$(rbadm beta role r0)" Secondary "beta after the refused promotion"
    # Outdated is on disk: MDF_CONSISTENT without MDF_WAS_UP_TO_DATE.
    expect_ok rbadm beta down r0
    expect_ok rbadm beta dump-md r0
    assert_match "$OUTPUT" "flags 0x[0-9A-F]+; # Consistent" "beta's metadata flags"
    printf '%s' "$OUTPUT" | grep -q "WasUpToDate" && fail "beta's metadata still says WasUpToDate: $(printf '%s' "$OUTPUT" | grep flags | head -n 1)"
    # Back up: Outdated at attach, a bitmap resync from the Primary, UpToDate.
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/UpToDate" "beta after the resync"
    grep -q "bitmap resync" "$TEST_DIR/agent-beta.log" || fail "beta was not brought up to date by a bitmap resync"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 4M out-1
    verify_on "$URI_B" 8M 2M out-apart
}

fc_disconnect_outdates_the_secondary() {
    fc_options resource-only
    fc_exit 4
    rp_synced
    write_on "$URI_A" 0 2M gd-1
    expect_ok rbadm beta disconnect r0
    wait_for "[[ \$(rbadm beta dstate r0) == Outdated/DUnknown ]]" 20 || fail "beta is $(rbadm beta dstate r0) after disconnecting from its Primary"
    wait_for "[[ \$(rbadm alpha dstate r0) == UpToDate/Outdated ]]" 20 || fail "alpha is $(rbadm alpha dstate r0) after its Secondary disconnected"
    [[ -e $TEST_DIR/fence-peer.env ]] && fail "fence-peer ran for a graceful disconnect"
    expect_fail rbadm beta primary r0
    assert_match "$OUTPUT" "Need access to UpToDate data" "promotion of the outdated Secondary"
    write_on "$URI_A" 4M 1M gd-2
    expect_ok rbadm beta connect r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/UpToDate" "beta after reconnecting"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 2M gd-1
    verify_on "$URI_B" 4M 1M gd-2
}

fc_fence_peer_exit_4_then_broken() {
    fc_options resource-only
    fc_exit 4
    rp_synced
    write_on "$URI_A" 0 2M fx-1
    fc_kill_beta
    wait_for "[[ \$(fc_peer_disk alpha) == Outdated ]]" 20 || fail "alpha's peer disk is $(fc_peer_disk alpha) after fence-peer exit 4"
    grep -qx "DRBD_PEER_NODE_ID=1" "$TEST_DIR/fence-peer.env" || fail "fence-peer: DRBD_PEER_NODE_ID is not beta's"
    grep -qx "DRBD_RESOURCE=r0" "$TEST_DIR/fence-peer.env" || fail "fence-peer: DRBD_RESOURCE missing"
    fc_log alpha "fence-peer helper returned 4 \(peer was fenced\)" "how it read exit 4"
    assert_eq "$(rbadm alpha dstate r0)" "UpToDate/Outdated" "alpha's dstate with its peer fenced"
    # resource-only never freezes I/O.
    write_on "$URI_A" 4M 2M fx-2
    fc_restart_beta
    # A broken handler (exit 1): the peer stays unknown, I/O goes on.
    fc_exit 1
    rm -f "$TEST_DIR/fence-peer.env"
    fc_kill_beta
    fc_log alpha "fence-peer helper broken, returned 1" "that the handler is broken"
    assert_eq "$(fc_peer_disk alpha)" DUnknown "alpha's peer disk after a broken handler"
    write_on "$URI_A" 8M 1M fx-3
    fc_restart_beta
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 2M fx-1
    verify_on "$URI_B" 4M 2M fx-2
    verify_on "$URI_B" 8M 1M fx-3
}

fc_promotion_fences_the_lost_primary() {
    fc_options resource-only
    rp_synced
    write_on "$URI_A" 0 2M pf-1
    kill -KILL "${AGENT_PID[alpha]}"
    wait_for "[[ \$(rbadm beta cstate r0) != Connected ]]" 20 || fail "beta did not notice alpha's death"
    fc_exit 1
    expect_fail rbadm beta primary r0
    assert_match "$OUTPUT" "Refusing to be Primary while peer is not outdated" "promotion with a broken fence-peer"
    [[ -s $TEST_DIR/fence-peer.env ]] || fail "the promotion did not call fence-peer"
    assert_eq "$(rbadm beta role r0)" Secondary "beta after the refused promotion"
    fc_exit 4
    expect_ok rbadm beta primary r0
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/Outdated" "beta promoted with alpha fenced"
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after promotion"
    verify_on "$URI_B" 0 2M pf-1
    write_on "$URI_B" 6M 1M pf-2
    # The old Primary comes back as Secondary and catches up.
    start_agent alpha
    expect_ok rbadm alpha up r0
    expect_ok rbadm beta wait-sync r0 --timeout 60
    expect_ok rbadm alpha wait-sync r0 --timeout 20
    switch_to alpha beta
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after it came back"
    verify_on "$URI_A" 0 2M pf-1
    verify_on "$URI_A" 6M 1M pf-2
}

fc_stonith_holds_writes_until_the_peer_is_stonithed() {
    fc_options resource-and-stonith
    rp_synced
    write_on "$URI_A" 0 2M st-1
    # The handler takes its time: writes wait for it.
    fc_exit 7 4
    fc_kill_beta
    wait_for "rbadm alpha status r0 | grep -q 'suspended:fencing'" 10 || fail "alpha's I/O is not suspended: $(rbadm alpha status r0 | head -n 1)"
    fc_background_write "$URI_A" 4M 1M st-2
    sleep 1
    pid_alive "$WRITER_PID" || fail "a write completed while I/O was suspended for fencing"
    fc_writer_done 20
    fc_log alpha "fence-peer helper returned 7 \(peer was stonithed\)" "how it read exit 7"
    rbadm alpha status r0 | grep -q 'suspended:' && fail "still suspended after the peer was stonithed: $(rbadm alpha status r0 | head -n 1)"
    assert_eq "$(rbadm alpha dstate r0)" "UpToDate/Outdated" "alpha after fence-peer exit 7"
    fc_restart_beta
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 2M st-1
    verify_on "$URI_B" 4M 1M st-2
}

fc_stonith_broken_handler_freezes_until_resume_io() {
    fc_options resource-and-stonith
    fc_exit 1
    rp_synced
    write_on "$URI_A" 0 2M fr-1
    fc_kill_beta
    wait_for "rbadm alpha status r0 | grep -q 'suspended:fencing'" 10 || fail "alpha's I/O is not suspended: $(rbadm alpha status r0 | head -n 1)"
    assert_eq "$(json_field alpha '.[0]["suspended-fencing"]')" true "suspended-fencing in JSON"
    fc_log alpha "fence-peer helper broken, returned 1" "that the handler is broken"
    fc_background_write "$URI_A" 4M 1M fr-2
    sleep 3
    pid_alive "$WRITER_PID" || fail "a write completed while I/O was frozen by a broken fence-peer"
    expect_ok rbadm alpha resume-io r0
    fc_writer_done 20
    assert_eq "$(json_field alpha '.[0]["suspended-fencing"]')" false "suspended-fencing after resume-io"
    fc_restart_beta
    grep -q "bitmap resync" "$TEST_DIR/agent-alpha.log" || fail "resume-io made no new current UUID: no bitmap resync after beta came back"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 2M fr-1
    verify_on "$URI_B" 4M 1M fr-2
}

fc_stonith_reconnect_resumes_without_a_new_uuid() {
    fc_options resource-and-stonith
    fc_exit 1
    rp_synced
    write_on "$URI_A" 0 2M rc-1
    fc_kill_beta
    wait_for "rbadm alpha status r0 | grep -q 'suspended:fencing'" 10 || fail "alpha's I/O is not suspended: $(rbadm alpha status r0 | head -n 1)"
    fc_background_write "$URI_A" 4M 1M rc-2
    sleep 2
    pid_alive "$WRITER_PID" || fail "a write completed while I/O was frozen by a broken fence-peer"
    # drbd9-tests suspend-io: the frozen write made no new current UUID, so the reconnect needs no resync.
    start_agent beta
    expect_ok rbadm beta up r0
    fc_writer_done 30
    expect_ok rbadm alpha wait-sync r0 --timeout 20
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/UpToDate" "beta after coming back"
    grep -q "bitmap resync" "$TEST_DIR/agent-alpha.log" "$TEST_DIR/agent-beta.log" \
        && fail "the reconnect resynced: the frozen write made a new current UUID"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 2M rc-1
    verify_on "$URI_B" 4M 1M rc-2
}

it_suite fencing/two-node setup_fencing_suite 1200 \
    outdate-refuses-promotion-until-a-resync:fc_outdate_refuses_promotion_until_a_resync \
    disconnect-outdates-the-secondary:fc_disconnect_outdates_the_secondary \
    fence-peer-exit-4-then-broken:fc_fence_peer_exit_4_then_broken:180 \
    promotion-fences-the-lost-primary:fc_promotion_fences_the_lost_primary \
    stonith-holds-writes-until-the-peer-is-stonithed:fc_stonith_holds_writes_until_the_peer_is_stonithed \
    stonith-broken-handler-freezes-until-resume-io:fc_stonith_broken_handler_freezes_until_resume_io \
    stonith-reconnect-resumes-without-a-new-uuid:fc_stonith_reconnect_resumes_without_a_new_uuid

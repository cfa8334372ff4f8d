# shellcheck shell=bash
# replication.test.sh — two agents (alpha, node-id 0, and beta, node-id 1) on loopback running
# one resource, driven the way a DRBD admin's runbook does it: create-md and up on both,
# primary --force on one, initial sync, writes, switch-over, failover after SIGKILL, reconnect
# with bitmap resync, invalidate, split brain resolved with connect --discard-my-data. Every
# case checks data through NBD (patterns written on one node, verified on the other).

setup_replication_suite() { require_built; }

# Fast reconnects and a resync that does not crawl (the defaults are DRBD's: 10 s, 250 KiB/s start).
RB_TWO_NODE_OPTIONS='net { protocol C; connect-int 1; ping-int 1; } disk { c-plan-ahead 0; resync-rate 400M; }'

# rp_pair — disks, config and both agents; sets URI_A and URI_B. $RP_ALPHA_DISK (if set) is
# alpha's backing disk instead of a file (e.g. a loop device the case made, at least 64 MiB).
rp_pair() {
    local alpha_disk=${RP_ALPHA_DISK:-$TEST_DIR/alpha.img}
    [[ -n ${RP_ALPHA_DISK:-} ]] || make_disk "$alpha_disk" 64M
    make_disk "$TEST_DIR/beta.img" 64M
    local nbd_a nbd_b
    nbd_a=$(free_port)
    nbd_b=$(free_port)
    RB_RESOURCE_EXTRA=${RB_RESOURCE_EXTRA:-$RB_TWO_NODE_OPTIONS} write_config r0 \
        "alpha 0 $(free_port) $nbd_a $alpha_disk" \
        "beta 1 $(free_port) $nbd_b $TEST_DIR/beta.img"
    URI_A=$(nbd_uri "$nbd_a" r0)
    URI_B=$(nbd_uri "$nbd_b" r0)
    start_agent alpha
    start_agent beta
}

# rp_synced — rp_pair, create-md and up on both, primary --force on alpha, initial sync done.
rp_synced() {
    rp_pair
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm beta create-md r0
    expect_ok rbadm alpha up r0
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    expect_ok rbadm alpha primary r0 --force
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/UpToDate" "beta's dstate after the initial sync"
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after primary --force"
}

write_on()  { expect_ok "$PYTHON" "$NBDTOOL" write "$@"; }  # URI OFFSET LENGTH SEED
verify_on() { expect_ok "$PYTHON" "$NBDTOOL" verify "$@"; } # URI OFFSET LENGTH SEED

# switch_to NODE OTHER — planned switch-over: OTHER secondary, NODE primary (no --force).
switch_to() {
    expect_ok rbadm "$2" secondary r0
    expect_ok rbadm "$1" primary r0
}

# json_field NODE JQ — one value from `status --json`.
json_field() { rbadm "$1" status r0 --json | jq -r "$2"; }

# --- cases ---------------------------------------------------------------------------------------

rp_initial_sync_and_switchover() {
    rp_synced
    assert_eq "$(rbadm alpha role r0)" Primary "alpha's role"
    assert_eq "$(rbadm beta role r0)" Secondary "beta's role"
    assert_eq "$(rbadm alpha cstate r0)" Connected "alpha's cstate"
    write_on "$URI_A" 0 8M sw-1
    write_on "$URI_A" 40M 3M sw-2
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 0 8M sw-1
    verify_on "$URI_B" 40M 3M sw-2
    # And back: what beta wrote is on alpha.
    write_on "$URI_B" 16M 2M sw-3
    switch_to alpha beta
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after switching back"
    verify_on "$URI_A" 16M 2M sw-3
    verify_on "$URI_A" 0 8M sw-1
}

rp_status_shows_peer() {
    rp_synced
    expect_ok rbadm alpha status r0
    assert_match "$OUTPUT" "beta role:Secondary" "alpha's status names the Secondary peer"
    assert_match "$OUTPUT" "peer-disk:UpToDate" "alpha's status shows the peer disk"
    expect_ok rbadm beta status r0 --verbose
    assert_match "$OUTPUT" "alpha node-id:0 connection:Connected role:Primary" "beta's verbose status"
    assert_match "$OUTPUT" "out-of-sync:0" "nothing out of sync after the initial sync"
    assert_eq "$(json_field alpha '.[0].connections[0]["peer_devices"][0]["replication-state"]')" Established "replication state in JSON"
}

rp_reconnect_bitmap_resync() {
    rp_synced
    write_on "$URI_A" 0 4M before-1
    expect_ok rbadm beta disconnect r0
    wait_for "[[ \$(rbadm alpha cstate r0) != Connected ]]" 20 || fail "alpha did not notice the disconnect"
    assert_eq "$(rbadm beta cstate r0)" StandAlone "beta after disconnect"
    write_on "$URI_A" 8M 2M apart-1
    local oos
    oos=$(json_field alpha '.[0].connections[0]["peer_devices"][0]["out-of-sync"]')
    [[ $oos -ge 2048 ]] || fail "alpha's out-of-sync after 2 MiB written apart: $oos KiB, want >= 2048"
    expect_ok rbadm beta connect r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    grep -q "bitmap resync" "$TEST_DIR/agent-alpha.log" || fail "the reconnect did not resync by bitmap: $(grep -E 'resync' "$TEST_DIR/agent-alpha.log" | tail -n 3 | tr '\n' ' ')"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 4M before-1
    verify_on "$URI_B" 8M 2M apart-1
}

rp_failover_after_sigkill() {
    rp_synced
    write_on "$URI_A" 0 6M acked-1
    kill -KILL "${AGENT_PID[alpha]}"
    wait_for "[[ \$(rbadm beta cstate r0) != Connected ]]" 20 || fail "beta did not notice alpha's death"
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/DUnknown" "beta keeps UpToDate data when its Primary dies"
    expect_ok rbadm beta primary r0
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after failover"
    verify_on "$URI_B" 0 6M acked-1
    write_on "$URI_B" 10M 1M after-failover
    # The old Primary comes back as Secondary and catches up.
    start_agent alpha
    expect_ok rbadm alpha up r0
    expect_ok rbadm beta wait-sync r0 --timeout 60
    expect_ok rbadm alpha wait-sync r0 --timeout 20
    switch_to alpha beta
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after it came back"
    verify_on "$URI_A" 10M 1M after-failover
    verify_on "$URI_A" 0 6M acked-1
}

rp_invalidate() {
    rp_synced
    write_on "$URI_A" 0 4M inv-1
    expect_ok rbadm beta invalidate r0
    expect_ok rbadm beta wait-sync r0 --timeout 60
    grep -q "full resync" "$TEST_DIR/agent-beta.log" || fail "invalidate did not start a full resync"
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/UpToDate" "beta after invalidate"
    expect_ok rbadm alpha invalidate-remote r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 4M inv-1
}

rp_split_brain_discard_my_data() {
    rp_synced
    write_on "$URI_A" 0 2M common
    expect_ok rbadm alpha disconnect r0
    expect_ok rbadm beta disconnect r0
    # Both sides write while apart: alpha as the old Primary, beta promoted on its own.
    write_on "$URI_A" 4M 1M alpha-apart
    expect_ok rbadm beta primary r0
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    write_on "$URI_B" 8M 1M beta-apart
    expect_ok rbadm beta secondary r0
    expect_ok rbadm alpha connect r0
    expect_ok rbadm beta connect r0
    wait_for "grep -q 'Split-Brain detected' '$TEST_DIR/agent-alpha.log'" 20 || fail "alpha did not detect the split brain"
    wait_for "[[ \$(rbadm beta cstate r0) == StandAlone ]]" 20 || fail "beta is not StandAlone after the split brain"
    # Manual recovery: beta's changes are discarded.
    expect_ok rbadm beta connect r0 --discard-my-data
    expect_ok rbadm alpha connect r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    grep -q "bitmap resync" "$TEST_DIR/agent-beta.log" || fail "the split brain was not rolled back by bitmap resync"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 2M common
    verify_on "$URI_B" 4M 1M alpha-apart
    # beta's own write while apart is gone: alpha never wrote there, so it reads back as zeros.
    verify_on "$URI_B" 8M 1M zero
}

REPLICATION_CASES=(
    initial-sync-and-switchover:rp_initial_sync_and_switchover
    status-shows-peer:rp_status_shows_peer
    reconnect-bitmap-resync:rp_reconnect_bitmap_resync
    failover-after-sigkill:rp_failover_after_sigkill
    invalidate:rp_invalidate
    split-brain-discard-my-data:rp_split_brain_discard_my_data
)

it_suite replication/two-node setup_replication_suite 900 "${REPLICATION_CASES[@]}"

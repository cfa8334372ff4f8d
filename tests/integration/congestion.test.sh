# shellcheck shell=bash
# congestion.test.sh — on-congestion over a slow link (drbd.md §8 item 15, `ahead-behind`): two
# agents in network namespaces joined by a veth pair whose alpha → beta direction is limited to
# 10 Mbit/s by a tbf qdisc (netem is not available here; tbf is). Protocol A writes faster than
# the link carries them: with `pull-ahead` alpha goes Ahead and beta Behind (seen in `events`
# and `status`), then SyncSource/SyncTarget, then Established; with `disconnect` alpha drops the
# connection and a later `connect` resyncs. Data is checked on beta after a switch-over.

# shellcheck source=tests/integration/netns.test.sh
source "$IT_DIR/netns.test.sh"

setup_congestion_suite() {
    setup_netns_suite
    command -v tc > /dev/null || fail "tc (iproute2) is needed to slow the link down"
}

# 1 MiB in flight at most: the first 4 MiB write of nbdtool.py is over it at once. The resync is
# not rate-limited here: the 10 Mbit link is the limit.
CG_OPTIONS='net { protocol A; on-congestion pull-ahead; congestion-fill 1M; connect-int 1; } disk { c-plan-ahead 0; resync-rate 400M; }'

# cg_slow_link — 10 Mbit/s from alpha to beta (alpha's end of the veth pair).
cg_slow_link() {
    ip netns exec "$NS_A" tc qdisc add dev "$VETH_A" root tbf rate 10mbit burst 32kbit latency 400ms \
        || fail "tc qdisc add tbf failed: the link cannot be slowed down here"
}

cg_link_sent_bytes() { # bytes the tbf qdisc has sent
    ip netns exec "$NS_A" tc -s qdisc show dev "$VETH_A" | sed -nE 's/^ *Sent ([0-9]+) bytes.*/\1/p' | head -n 1
}

# cg_events NODE — `rbadm NODE events r0` in the background, into $TEST_DIR/events-NODE.log.
cg_events() {
    rbadm "$1" events r0 > "$TEST_DIR/events-$1.log" 2>&1 &
    track_pid $!
    wait_for "grep -qx 'exists -' '$TEST_DIR/events-$1.log'" 10 || fail "no initial events dump from $1"
}

# cg_wait_event NODE ERE TIMEOUT_S — an events line of NODE matching ERE.
cg_wait_event() {
    wait_for "grep -Eq '$2' '$TEST_DIR/events-$1.log'" "$3" \
        || fail "no events line /$2/ from $1 within $3 s: $(grep -E '^change (peer-device|device)' "$TEST_DIR/events-$1.log" | tail -n 4 | tr '\n' ' ')"
}

cg_line() { grep -nE "$2" "$TEST_DIR/events-$1.log" | head -n 1 | cut -d: -f1; } # NODE ERE -> first line number

# --- cases ---------------------------------------------------------------------------------------

cg_pull_ahead() {
    RB_RESOURCE_EXTRA=$CG_OPTIONS
    nn_synced
    cg_slow_link
    cg_events alpha
    cg_events beta
    local sent_before started elapsed
    sent_before=$(cg_link_sent_bytes)
    started=$(date +%s)
    # Protocol A: the writes complete at local disk speed, far faster than 10 Mbit/s.
    nn_write alpha "$URI_A" 0 16M cg-ahead
    cg_wait_event alpha '^change peer-device name:r0 .* replication:Ahead ' 10
    cg_wait_event beta '^change peer-device name:r0 .* replication:Behind ' 10
    cg_wait_event beta '^change device name:r0 volume:0 .* disk:Outdated ' 10
    cg_wait_event alpha '^change peer-device name:r0 .* replication:Ahead peer-disk:Outdated ' 10
    grep -q 'Congestion-fill threshold reached' "$TEST_DIR/agent-alpha.log" \
        || fail "alpha's log does not say why it went Ahead: $(grep -i congestion "$TEST_DIR/agent-alpha.log" | tail -n 2)"
    cg_wait_event alpha '^change peer-device name:r0 .* replication:SyncSource ' 30
    cg_wait_event beta '^change peer-device name:r0 .* replication:SyncTarget ' 10
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    elapsed=$(( $(date +%s) - started ))
    # In order: Ahead before the resync, Behind before SyncTarget.
    (( $(cg_line alpha 'replication:Ahead ') < $(cg_line alpha 'replication:SyncSource ') )) || fail "alpha: SyncSource came before Ahead"
    (( $(cg_line beta 'replication:Behind ') < $(cg_line beta 'replication:SyncTarget ') )) || fail "beta: SyncTarget came before Behind"
    assert_eq "$(nn_oos alpha)" 0 "alpha's out-of-sync after the resync"
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/UpToDate" "beta's dstate after the resync"
    # The data crossed the slow link: at least the resynced 12 MiB, at 10 Mbit/s.
    local carried=$(( $(cg_link_sent_bytes) - sent_before ))
    (( carried >= 12 << 20 )) || fail "the shaped link carried only $carried bytes"
    (( elapsed >= 8 )) || fail "16 MiB crossed a 10 Mbit/s link in $elapsed s: the link was not slow"
    same_disks "$(ip netns exec "$NS_A" nbdinfo --size "$URI_A")"
    switch_to beta alpha
    nn_wait_nbd beta "$URI_B"
    nn_verify beta "$URI_B" 0 16M cg-ahead
}

cg_status_shows_ahead_behind() {
    RB_RESOURCE_EXTRA=$CG_OPTIONS
    nn_synced
    cg_slow_link
    nn_write alpha "$URI_A" 0 8M cg-status
    # Ahead lasts while the 4 MiB already sent drain (over 3 s at 10 Mbit/s) and one second more;
    # beta hears of it only behind those 4 MiB, so it is Behind for about that second.
    wait_for "rbadm alpha status r0 | grep -q 'replication:Ahead peer-disk:'" 5 \
        || fail "alpha's status does not show Ahead: $(rbadm alpha status r0 | tr '\n' ' ')"
    assert_eq "$(nn_repl alpha)" Ahead "alpha's replication-state in status --json"
    (( $(nn_oos alpha) >= 4096 )) || fail "alpha's out-of-sync while Ahead: $(nn_oos alpha) KiB, want the 4 MiB not sent"
    local snapshot=$TEST_DIR/beta-status.txt
    wait_for "rbadm beta status r0 > '$snapshot' && grep -q 'replication:Behind' '$snapshot'" 10 \
        || fail "beta's status never showed Behind: $(tr '\n' ' ' < "$snapshot")"
    assert_match "$(cat "$snapshot")" 'disk:Outdated' "beta's disk while Behind"
    assert_match "$(cat "$snapshot")" 'replication:Behind peer-disk:UpToDate' "beta's peer-device line while Behind"
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    switch_to beta alpha
    nn_wait_nbd beta "$URI_B"
    nn_verify beta "$URI_B" 0 8M cg-status
}

cg_disconnect() {
    RB_RESOURCE_EXTRA=${CG_OPTIONS/pull-ahead/disconnect}
    nn_synced
    cg_slow_link
    nn_write alpha "$URI_A" 0 16M cg-disconnect
    # DRBD's C_DISCONNECTING: alpha stands alone; beta keeps trying.
    wait_for "[[ \$(rbadm alpha cstate r0) == StandAlone ]]" 10 || fail "alpha did not drop the congested link: cstate $(rbadm alpha cstate r0)"
    grep -q 'on-congestion disconnect: Congestion-fill threshold reached' "$TEST_DIR/agent-alpha.log" \
        || fail "alpha's log does not say why it disconnected"
    wait_for "[[ \$(rbadm beta cstate r0) == Connecting ]]" 15 || fail "beta did not notice: cstate $(rbadm beta cstate r0)"
    (( $(nn_oos alpha) >= 8192 )) || fail "alpha's bitmap does not hold what beta missed: $(nn_oos alpha) KiB"
    assert_eq "$(rbadm alpha role r0)" Primary "alpha's role after the congestion disconnect"
    expect_ok rbadm alpha connect r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(nn_oos alpha)" 0 "alpha's out-of-sync after the resync"
    switch_to beta alpha
    nn_wait_nbd beta "$URI_B"
    nn_verify beta "$URI_B" 0 16M cg-disconnect
}

CONGESTION_CASES=(
    pull-ahead-ahead-behind-resync:cg_pull_ahead:120
    status-shows-ahead-behind:cg_status_shows_ahead_behind:120
    on-congestion-disconnect:cg_disconnect:120
)

it_suite congestion/two-node setup_congestion_suite 450 "${CONGESTION_CASES[@]}"

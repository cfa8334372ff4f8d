# shellcheck shell=bash
# netns.test.sh — two agents in their own network namespaces joined by a veth pair, so the
# replication link can be cut and restored (`ip link set ... down/up`) as a network would fail:
# writes on the Primary go on while the link is down and are resynced by bitmap when it is back;
# a resync cut in the middle resumes where it stopped (drbd.md §8 item 20); writes during a
# resync leave both disks equal (item 19). Data is checked on the Secondary after a switch-over.
#
# Each agent serves NBD on 127.0.0.1 inside its namespace, so clients run with `ip netns exec`;
# rbadm reaches the agents through their control sockets (files, not network).

# shellcheck source=tests/integration/ackwriter.test.sh
source "$IT_DIR/ackwriter.test.sh"

setup_netns_suite() {
    require_built
    command -v ip > /dev/null || fail "ip (iproute2) is needed for network namespaces"
}

# nn_links — the two namespaces and the veth pair (lib.sh's netns_pair), tagged with the case's
# PID: unique among concurrent runs.
nn_links() { netns_pair $$; }

nn_cut()     { netns_link a down; } # the replication link goes down (alpha's end)
nn_restore() { netns_link a up; }

nn_ns() { if [[ $1 == alpha ]]; then echo "$NS_A"; else echo "$NS_B"; fi; } # NODE -> namespace

# nn_pair — links, 32 MiB disks, config (replication over the veth pair) and both agents in
# their namespaces; sets URI_A and URI_B (valid inside the node's namespace).
nn_pair() {
    nn_links
    make_disk "$TEST_DIR/alpha.img" 32M
    make_disk "$TEST_DIR/beta.img" 32M
    local nbd_a nbd_b
    nbd_a=$(free_port)
    nbd_b=$(free_port)
    RB_RESOURCE_EXTRA=${RB_RESOURCE_EXTRA:-$RB_TWO_NODE_OPTIONS} write_config r0 \
        "alpha 0 $NN_ADDR_A:7788 $nbd_a $TEST_DIR/alpha.img" \
        "beta 1 $NN_ADDR_B:7788 $nbd_b $TEST_DIR/beta.img"
    URI_A=$(nbd_uri "$nbd_a" r0)
    URI_B=$(nbd_uri "$nbd_b" r0)
    start_agent alpha "$NS_A"
    start_agent beta "$NS_B"
}

# nn_synced — nn_pair, create-md and up on both, primary --force on alpha, initial sync done.
nn_synced() {
    nn_pair
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm beta create-md r0
    expect_ok rbadm alpha up r0
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    expect_ok rbadm alpha primary r0 --force
    expect_ok rbadm alpha wait-sync r0 --timeout 40
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/UpToDate" "beta's dstate after the initial sync"
    nn_wait_nbd alpha "$URI_A"
}

nn_wait_nbd() { # NODE URI
    wait_for "ip netns exec '$(nn_ns "$1")' nbdinfo --can connect '$2'" 20 || fail "$1's export $2 not reachable"
}
nn_write()  { local ns; ns=$(nn_ns "$1"); shift; expect_ok ip netns exec "$ns" "$PYTHON" "$NBDTOOL" write "$@"; }  # NODE URI OFFSET LENGTH SEED
nn_verify() { local ns; ns=$(nn_ns "$1"); shift; expect_ok ip netns exec "$ns" "$PYTHON" "$NBDTOOL" verify "$@"; } # NODE URI OFFSET LENGTH SEED

nn_oos()   { json_field "$1" '.[0].connections[0]["peer_devices"][0]["out-of-sync"]'; } # NODE -> KiB
nn_repl()  { json_field "$1" '.[0].connections[0]["peer_devices"][0]["replication-state"]'; }

# nn_wait_lost — both nodes noticed the cut: a network failure, then Connecting again.
nn_wait_lost() {
    local node
    for node in alpha beta; do
        wait_for "[[ \$(rbadm $node cstate r0) == Connecting ]]" 15 \
            || fail "$node did not notice the cut link: cstate $(rbadm "$node" cstate r0)"
        grep -Eq "conn\( Connected -> (NetworkFailure|Timeout|BrokenPipe) \)" "$TEST_DIR/agent-$node.log" \
            || fail "$node's log shows no network failure: $(grep 'conn(' "$TEST_DIR/agent-$node.log" | tail -n 2 | tr '\n' ' ')"
    done
}

# same_disks SIZE — the first SIZE bytes (the data) of both backing disks are equal.
same_disks() {
    cmp -n "$1" "$TEST_DIR/alpha.img" "$TEST_DIR/beta.img" > /dev/null \
        || fail "the disks differ: $(cmp -n "$1" "$TEST_DIR/alpha.img" "$TEST_DIR/beta.img" 2>&1 | head -n 1)"
}

# --- cases ---------------------------------------------------------------------------------------

nn_link_cut_while_writing() {
    nn_synced
    local log=$TEST_DIR/acked.log
    AW_NETNS=$NS_A aw_start "$URI_A" "$log"
    aw_wait_acked "$log" 300 30
    nn_cut
    nn_wait_lost
    # The Primary goes on acknowledging writes; what beta misses is counted.
    local acked1 oos1 acked2 oos2
    acked1=$(aw_count "$log")
    oos1=$(nn_oos alpha)
    sleep 2
    acked2=$(aw_count "$log")
    oos2=$(nn_oos alpha)
    (( acked2 > acked1 + 50 )) || fail "writes stalled while the link was down: $acked1 -> $acked2 acknowledged"
    (( oos1 > 0 && oos2 > oos1 )) || fail "out-of-sync did not grow while the link was down: $oos1 -> $oos2 KiB"
    assert_eq "$(rbadm alpha role r0)" Primary "alpha's role while the link is down"
    nn_restore
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    wait_for "grep -q 'bitmap resync' '$TEST_DIR/agent-alpha.log'" 10 || fail "the reconnect did not start a bitmap resync"
    aw_stop
    expect_ok rbadm alpha wait-sync r0 --timeout 40
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(nn_oos alpha)" 0 "alpha's out-of-sync after the resync"
    switch_to beta alpha
    nn_wait_nbd beta "$URI_B"
    aw_check "$URI_B" "$log" "$NS_B"
}

# The resync-rate makes a 24 MiB bitmap resync take about 3 s, so the link can be cut mid-way.
NN_SLOW_RESYNC_OPTIONS='net { protocol C; connect-int 1; ping-int 1; } disk { c-plan-ahead 0; resync-rate 8M; }'

nn_resync_interrupted() {
    RB_RESOURCE_EXTRA=$NN_SLOW_RESYNC_OPTIONS
    nn_synced
    expect_ok rbadm beta disconnect r0
    nn_write alpha "$URI_A" 0 24M resume-1
    local full cut resumed
    full=$(nn_oos alpha)
    (( full >= 24576 )) || fail "out-of-sync after 24 MiB written apart: $full KiB"
    expect_ok rbadm beta connect r0
    wait_for "(( \$(nn_oos alpha) < $full - 4096 ))" 20 || fail "the resync made no progress: $(nn_oos alpha) of $full KiB left"
    nn_cut
    nn_wait_lost
    cut=$(nn_oos alpha)
    (( cut > 0 )) || fail "the resync finished before the link was cut (too fast to interrupt)"
    nn_restore
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    # Resumed, not restarted: the second resync starts from what was left, never from the whole.
    wait_for "(( \$(grep -c 'bitmap resync' '$TEST_DIR/agent-alpha.log') >= 2 ))" 10 || fail "no second resync after the reconnect"
    resumed=$(grep 'bitmap resync' "$TEST_DIR/agent-alpha.log" | tail -n 1 | sed -E 's/.*resync, ([0-9]+) KiB to sync.*/\1/')
    (( resumed <= cut )) || fail "the resync restarted: $resumed KiB to sync after the reconnect, $cut KiB were left at the cut (of $full)"
    local oos max=0 i
    for ((i = 0; i < 20; i++)); do
        oos=$(nn_oos alpha)
        (( oos > max )) && max=$oos
        [[ $(nn_repl alpha) == Established ]] && break
        sleep 0.2
    done
    (( max <= cut )) || fail "out-of-sync went back up to $max KiB after the reconnect ($cut KiB left at the cut)"
    expect_ok rbadm alpha wait-sync r0 --timeout 40
    expect_ok rbadm beta wait-sync r0 --timeout 20
    switch_to beta alpha
    nn_wait_nbd beta "$URI_B"
    nn_verify beta "$URI_B" 0 24M resume-1
}

nn_write_during_resync() {
    RB_RESOURCE_EXTRA=$NN_SLOW_RESYNC_OPTIONS
    nn_synced
    expect_ok rbadm beta disconnect r0
    nn_write alpha "$URI_A" 0 24M wdr-base
    expect_ok rbadm beta connect r0
    wait_for "[[ \$(nn_repl beta) == SyncTarget ]]" 20 || fail "beta did not become SyncTarget: $(nn_repl beta)"
    # Over blocks still to be resynced, and beyond them (24 MiB take 3 s at 8 MiB/s).
    nn_write alpha "$URI_A" 4M 4M wdr-overlap
    nn_write alpha "$URI_A" 26M 2M wdr-new
    nn_write alpha "$URI_A" 20M 1M wdr-tail
    [[ $(nn_repl beta) == SyncTarget ]] || fail "the resync ended before the writes did: not a write during resync"
    expect_ok rbadm alpha wait-sync r0 --timeout 40
    expect_ok rbadm beta wait-sync r0 --timeout 20
    local size
    size=$(ip netns exec "$NS_A" nbdinfo --size "$URI_A")
    same_disks "$size"
    switch_to beta alpha
    nn_wait_nbd beta "$URI_B"
    nn_verify beta "$URI_B" 0 4M wdr-base
    nn_verify beta "$URI_B" 4M 4M wdr-overlap
    nn_verify beta "$URI_B" 8M 12M wdr-base
    nn_verify beta "$URI_B" 20M 1M wdr-tail
    nn_verify beta "$URI_B" 21M 3M wdr-base
    nn_verify beta "$URI_B" 26M 2M wdr-new
}

NETNS_CASES=(
    link-cut-while-writing:nn_link_cut_while_writing:90
    resync-interrupted-resumes:nn_resync_interrupted:90
    write-during-resync:nn_write_during_resync:90
)

it_suite netns/two-node setup_netns_suite 400 "${NETNS_CASES[@]}"

# shellcheck shell=bash
# replication.test.sh — two agents (alpha, node-id 0, and beta, node-id 1) on loopback running
# one resource, driven the way a DRBD admin's runbook does it: create-md and up on both,
# primary --force on one, initial sync, writes, switch-over, failover after SIGKILL, reconnect
# with bitmap resync, invalidate, split brain resolved with connect --discard-my-data. Every
# case checks data through NBD (patterns written on one node, verified on the other).

setup_replication_suite() { require_built; }

# Fast reconnects and a resync that does not crawl (the defaults are DRBD's: 10 s, 250 KiB/s start).
RB_TWO_NODE_OPTIONS='net { protocol C; connect-int 1; ping-int 1; } disk { c-plan-ahead 0; resync-rate 400M; }'

# rp_pair — disks, config and both agents; sets URI_A and URI_B. RP_BETA_SIZE (default 64M)
# sizes beta's disk differently. $RP_ALPHA_META (if set) is alpha's external meta-disk.
# $RP_ALPHA_DISK (if set) is alpha's backing disk instead of a
# file (e.g. a loop device the case made, at least 64 MiB).
rp_pair() {
    local alpha_disk=${RP_ALPHA_DISK:-$TEST_DIR/alpha.img}
    [[ -n ${RP_ALPHA_DISK:-} ]] || make_disk "$alpha_disk" 64M
    make_disk "$TEST_DIR/beta.img" "${RP_BETA_SIZE:-64M}"
    local nbd_a nbd_b
    nbd_a=$(free_port)
    nbd_b=$(free_port)
    RB_RESOURCE_EXTRA=${RB_RESOURCE_EXTRA:-$RB_TWO_NODE_OPTIONS} write_config r0 \
        "alpha 0 $(free_port) $nbd_a $alpha_disk ${RP_ALPHA_META:-}" \
        "beta 1 $(free_port) $nbd_b $TEST_DIR/beta.img"
    URI_A=$(nbd_uri "$nbd_a" r0)
    URI_B=$(nbd_uri "$nbd_b" r0)
    start_agent alpha
    start_agent beta
}

# rp_connected — rp_pair, create-md and up on both, connected; both Secondary, nothing synced yet.
rp_connected() {
    rp_pair
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm beta create-md r0
    expect_ok rbadm alpha up r0
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
}

# rp_synced — rp_connected, primary --force on alpha, initial sync done.
rp_synced() {
    rp_connected
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
    # An NBD client that just exited may still be let go by the server for a moment ("held open").
    wait_for "rbadm $2 secondary r0" 10 || expect_ok rbadm "$2" secondary r0
    expect_ok rbadm "$1" primary r0
}

# json_field NODE JQ — one value from `status --json`.
json_field() { rbadm "$1" status r0 --json | jq -r "$2"; }

rp_oos()  { json_field "$1" '.[0].connections[0]["peer_devices"][0]["out-of-sync"]'; }       # NODE -> KiB
rp_repl() { json_field "$1" '.[0].connections[0]["peer_devices"][0]["replication-state"]'; } # NODE -> state

# zero_on_disk FILE OFFSET_MIB LENGTH_MIB — that range of a backing disk holds only zeroes.
zero_on_disk() {
    cmp -s -i "$(($2 << 20)):0" -n "$(($3 << 20))" "$1" /dev/zero || fail "$(basename "$1") holds data at ${2}M+${3}M, want zeroes"
}

# rp_same_disks WHAT — both nodes Secondary and down, then the backing files are byte-equal over the device.
rp_same_disks() {
    local size_kib
    size_kib=$(json_field alpha '.[0].devices[0].size')
    (( size_kib > 0 )) || fail "alpha's device size is '$size_kib' KiB"
    # An NBD client that just exited may still be let go by the server for a moment ("held open").
    wait_for "rbadm alpha secondary r0" 10 || expect_ok rbadm alpha secondary r0
    wait_for "rbadm beta secondary r0" 10 || expect_ok rbadm beta secondary r0
    expect_ok rbadm alpha down r0
    expect_ok rbadm beta down r0
    rp_same_bytes "$1" "$size_kib"
}

# rp_same_bytes WHAT [SIZE_KIB] — the backing files are byte-equal now over the device (alpha's size
# unless given; the metadata after it differs). With the agents up: nothing may be in flight.
rp_same_bytes() {
    local size_kib=${2:-}
    [[ -n $size_kib ]] || size_kib=$(json_field alpha '.[0].devices[0].size')
    (( size_kib > 0 )) || fail "alpha's device size is '$size_kib' KiB"
    cmp -n $((size_kib * 1024)) "$TEST_DIR/alpha.img" "$TEST_DIR/beta.img" > "$TEST_DIR/cmp.out" 2>&1 \
        || fail "the replicas differ after $1: $(head -c 200 "$TEST_DIR/cmp.out")"
}

# rp_up_cleared — rp_connected, the initial sync skipped (both disks
# are zero-filled: new-current-uuid --clear-bitmap), beta UpToDate; both still Secondary.
rp_up_cleared() {
    rp_connected
    expect_ok rbadm alpha new-current-uuid --clear-bitmap r0
    wait_for "[[ \$(rbadm beta dstate r0) == UpToDate/UpToDate ]]" 10 || fail "beta is $(rbadm beta dstate r0) after new-current-uuid --clear-bitmap"
}

# rp_synced_skipped — rp_up_cleared, then alpha Primary. For a case that throttles the resync and
# must not wait for a full initial sync at that rate.
rp_synced_skipped() {
    rp_up_cleared
    expect_ok rbadm alpha primary r0
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after primary"
}

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
    # sent/received (KiB of data, resync included): 4 MiB more of each after 4 MiB of writes.
    local sent received
    sent=$(json_field alpha '.[0].connections[0]["peer_devices"][0].sent')
    received=$(json_field beta '.[0].connections[0]["peer_devices"][0].received')
    [[ $sent -gt 0 && $received -gt 0 ]] || fail "after the initial sync: alpha sent $sent KiB, beta received $received KiB"
    write_on "$URI_A" 0 4M stats-1
    assert_eq "$(json_field alpha '.[0].connections[0]["peer_devices"][0].sent')" $((sent + 4096)) "alpha's sent KiB after 4 MiB of writes"
    assert_eq "$(json_field beta '.[0].connections[0]["peer_devices"][0].received')" $((received + 4096)) "beta's received KiB after 4 MiB of writes"
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

# rp_damage FILE BLOCK... — overwrite 4 KiB blocks of a backing file behind its agent's back (no bitmap marks them).
rp_damage() {
    local file=$1 block
    shift
    for block in "$@"; do
        dd if=/dev/urandom of="$file" bs=4096 seek="$block" count=1 conv=notrunc,fsync status=none || fail "dd into $file failed"
    done
}

# rp_full_resync NODE VERB — runs `VERB r0` on NODE and waits for the full resync it starts (a new
# "full resync" line in NODE's log: the initial sync logged one already) and for its end.
rp_full_resync() {
    local node=$1 verb=$2 before
    before=$(grep -c "full resync" "$TEST_DIR/agent-$node.log")
    expect_ok rbadm "$node" "$verb" r0
    wait_for "[[ \$(grep -c 'full resync' '$TEST_DIR/agent-$node.log') -gt $before ]]" 20 || fail "$verb did not start a full resync"
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
}

# drbd.md §8 item 18: invalidate and invalidate-remote resync the whole device in the asked
# direction. Beta's copy is damaged where no bitmap knows of it, in written data and in zero space:
# only a full resync from alpha repairs that.
rp_invalidate() {
    rp_synced
    write_on "$URI_A" 0 4M inv-1
    rp_damage "$TEST_DIR/beta.img" 100 5000
    rp_full_resync beta invalidate
    assert_eq "$(rbadm beta dstate r0)" "UpToDate/UpToDate" "beta after invalidate"
    rp_same_bytes "invalidate on beta"
    rp_damage "$TEST_DIR/beta.img" 200 6000
    rp_full_resync alpha invalidate-remote
    assert_eq "$(rbadm alpha dstate r0)" "UpToDate/UpToDate" "alpha after invalidate-remote"
    rp_same_bytes "invalidate-remote on alpha"
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

# rp_tz_check URI — the layout rp_trim_and_write_zeroes leaves: its pattern, with zeroes where it
# trimmed (1M+1M), wrote zeroes (4M+1M) and wrote 5000 unaligned zero bytes (6M+100).
rp_tz_check() {
    verify_on "$1" 0 1M tz-data
    verify_on "$1" 1M 1M zero
    verify_on "$1" 2M 2M tz-data
    verify_on "$1" 4M 1M zero
    verify_on "$1" 5M $(((1 << 20) + 100)) tz-data
    verify_on "$1" $(((6 << 20) + 100)) 5000 zero
    verify_on "$1" $(((6 << 20) + 5100)) $(((2 << 20) - 5100)) tz-data
}

# TRIM and WRITE_ZEROES from an NBD client on the Primary are replicated like writes (nothing is
# left out of sync for a later resync): the ranges read back as zeroes on both nodes, the data
# around them stays, and the backing files end byte-equal.
rp_trim_and_write_zeroes() {
    rp_synced
    write_on "$URI_A" 0 8M tz-data
    expect_ok nbdsh -u "$URI_A" -c 'h.trim(1 << 20, 1 << 20)' -c 'h.zero(1 << 20, 4 << 20)' \
        -c 'h.zero(5000, (6 << 20) + 100)' -c 'h.flush()'
    assert_eq "$(rp_oos alpha)" 0 "alpha's out-of-sync KiB after TRIM and WRITE_ZEROES"
    rp_tz_check "$URI_A"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    rp_tz_check "$URI_B"
    rp_same_disks "TRIM and WRITE_ZEROES"
    zero_on_disk "$TEST_DIR/beta.img" 1 1
    zero_on_disk "$TEST_DIR/beta.img" 4 1
}

# rp_progress NODE — "OUT_OF_SYNC_KIB PERCENT_IN_SYNC" towards the peer, from `status --json`.
rp_progress() { json_field "$1" '.[0].connections[0]["peer_devices"][0] | "\(.["out-of-sync"]) \(.["percent-in-sync"])"'; }

# pause-sync on the SyncSource holds a running resync on both sides (PausedSyncS / PausedSyncT,
# nothing moves); the other side cannot resume what it did not pause; resume-sync lets it finish,
# and beta holds what alpha wrote while it was away.
rp_pause_resume_sync() {
    # 24 MiB at 4 MiB/s: about 6 s of resync, the pause comes well before its end even on a busy host.
    RB_RESOURCE_EXTRA=${RB_TWO_NODE_OPTIONS/resync-rate 400M/resync-rate 4M}
    rp_synced_skipped
    write_on "$URI_A" 0 2M ps-common
    expect_ok rbadm beta disconnect r0
    write_on "$URI_A" 4M 24M ps-apart
    expect_ok rbadm beta connect r0
    wait_for "[[ \$(rp_repl beta) == SyncTarget ]]" 20 || fail "beta did not become SyncTarget: $(rbadm beta status r0 | tr '\n' ' ')"
    expect_ok rbadm alpha pause-sync r0
    assert_eq "$(rp_repl alpha)" PausedSyncS "alpha's replication state after pause-sync"
    wait_for "[[ \$(rp_repl beta) == PausedSyncT ]]" 10 || fail "beta is $(rp_repl beta) after alpha's pause-sync, want PausedSyncT"
    expect_ok rbadm alpha status r0 --verbose
    assert_match "$OUTPUT" "replication:PausedSyncS peer-disk:Inconsistent done:[0-9]{1,2}\.[0-9]{2} resync-suspended:user out-of-sync:[1-9]" "alpha's status while paused"
    expect_ok rbadm beta status r0
    assert_match "$OUTPUT" "^    replication:PausedSyncT peer-disk:UpToDate done:[0-9]{1,2}\.[0-9]{2}$" "beta's status while paused"
    # Nothing moves while paused (requests already in flight had a moment to land first).
    sleep 0.3
    local before after left
    before="$(rp_progress alpha) / $(rp_progress beta)"
    sleep 1.5
    after="$(rp_progress alpha) / $(rp_progress beta)"
    assert_eq "$after" "$before" "out-of-sync KiB and percent-in-sync (alpha / beta) 1.5 s into the pause"
    left=${before%% *}
    (( left > 0 )) || fail "nothing left to resync while paused: $before"
    # Only the side that paused may resume (DRBD: "Sync-pause flag is already cleared").
    expect_fail rbadm beta resume-sync r0
    assert_match "$OUTPUT" "Sync-pause flag is already cleared" "beta's resume-sync of alpha's pause"
    assert_eq "$(rp_repl beta)" PausedSyncT "beta after its refused resume-sync"
    expect_ok rbadm alpha resume-sync r0
    wait_for "(( \$(rp_oos alpha) < $left ))" 10 || fail "the resync did not go on after resume-sync: $(rp_progress alpha) ($(rp_repl alpha))"
    expect_ok rbadm alpha wait-sync r0 --timeout 30
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(rp_repl alpha)/$(rp_oos alpha)" Established/0 "alpha's replication state and out-of-sync KiB after the resync"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 0 2M ps-common
    verify_on "$URI_B" 4M 24M ps-apart
    rp_same_disks "a paused and resumed resync"
}

# primary --overwrite-data-of-peer (the old name of --force) on a fresh pair starts the initial full
# sync as --force does. While it runs (throttled): status shows DRBD's done: on both nodes, the JSON's
# out-of-sync falls, wait-sync on a terminal draws its progress bar and without one draws none, both
# exit 0 at the end; then done: is gone and beta holds alpha's data (put on alpha's disk before up).
rp_overwrite_data_of_peer_progress() {
    # About 64 MiB at 8 MiB/s: an 8 s initial sync (the checks below take a few seconds on a busy host).
    RB_RESOURCE_EXTRA=${RB_TWO_NODE_OPTIONS/resync-rate 400M/resync-rate 8M}
    rp_pair
    dd if=/dev/urandom of="$TEST_DIR/alpha.img" bs=1M seek=16 count=8 conv=notrunc status=none || fail "dd into alpha.img failed"
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm beta create-md r0
    expect_ok rbadm alpha up r0
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    expect_ok rbadm alpha primary r0 --overwrite-data-of-peer
    wait_for "[[ \$(rp_repl beta) == SyncTarget ]]" 10 || fail "beta did not become SyncTarget: $(rbadm beta status r0 | tr '\n' ' ')"
    local size_kib
    size_kib=$(json_field alpha '.[0].devices[0].size')
    grep -q "full resync, $size_kib KiB to sync" "$TEST_DIR/agent-alpha.log" \
        || fail "alpha did not start a full sync of its $size_kib KiB: $(grep -E 'resync' "$TEST_DIR/agent-alpha.log" | tail -n 2 | tr '\n' ' ')"
    # The JSON's out-of-sync falls and percent-in-sync rises, sample after sample.
    local _ prev now
    prev=$(rp_progress alpha)
    for _ in 1 2; do
        sleep 0.5
        now=$(rp_progress alpha)
        (( ${now%% *} < ${prev%% *} )) || fail "alpha's out-of-sync KiB did not fall in 0.5 s: '$prev' -> '$now' (out-of-sync, percent-in-sync)"
        awk -v a="${prev#* }" -v b="${now#* }" 'BEGIN { exit !(b > a) }' || fail "alpha's percent-in-sync did not rise: '$prev' -> '$now'"
        prev=$now
    done
    # wait-sync twice at once: beta's on a pseudo-terminal (script), alpha's into a file.
    local cmd tty_pid plain_pid rc
    cmd=$(printf '%q ' "$RB_OUT/rbadm" -c "$RB_CONFIG" --node beta --control "$(control_path beta)" wait-sync r0 --timeout 30)
    script -qec "$cmd" /dev/null > "$TEST_DIR/wait-tty.out" 2>&1 &
    tty_pid=$!
    track_pid "$tty_pid"
    rbadm alpha wait-sync r0 --timeout 30 > "$TEST_DIR/wait-plain.out" 2>&1 &
    plain_pid=$!
    track_pid "$plain_pid"
    expect_ok rbadm alpha status r0
    assert_match "$OUTPUT" "^    replication:SyncSource peer-disk:Inconsistent done:[0-9]{1,2}\.[0-9]{2}$" "alpha's status during the initial sync"
    expect_ok rbadm beta status r0
    assert_match "$OUTPUT" "^  disk:Inconsistent$" "beta's disk during the initial sync"
    assert_match "$OUTPUT" "^    replication:SyncTarget peer-disk:UpToDate done:[0-9]{1,2}\.[0-9]{2}$" "beta's status during the initial sync"
    rc=0; wait "$tty_pid" || rc=$?
    [[ $rc -eq 0 ]] || fail "wait-sync on a terminal exited $rc: $(tr '\r' '\n' < "$TEST_DIR/wait-tty.out" | tail -n 2 | tr '\n' ' ')"
    rc=0; wait "$plain_pid" || rc=$?
    [[ $rc -eq 0 ]] || fail "wait-sync into a file exited $rc: $(tail -n 2 "$TEST_DIR/wait-plain.out" | tr '\n' ' ')"
    local bar
    bar=$(tr '\r' '\n' < "$TEST_DIR/wait-tty.out")
    assert_match "$bar" "^\[[=>.]{40}\] done: [0-9]{1,3}\.[0-9]{2}%  out-of-sync: [0-9]+ KiB" "wait-sync's progress bar on a terminal"
    printf '%s\n' "$bar" | grep -oE 'done: [0-9]+\.[0-9]{2}%' | grep -vq 'done: 100.00%' \
        || fail "wait-sync's bar never showed a resync still under way: $(printf '%s' "$bar" | tail -n 3 | tr '\n' ' ')"
    if grep -qE 'done:|\[[=>.]+\]|'$'\r' "$TEST_DIR/wait-plain.out"; then
        fail "wait-sync drew a progress bar into a file: $(head -c 200 "$TEST_DIR/wait-plain.out" | tr '\r\n' '  ')"
    fi
    expect_ok rbadm alpha wait-sync r0 --timeout 10
    expect_ok rbadm beta wait-sync r0 --timeout 10
    assert_eq "$(rbadm alpha dstate r0)/$(rbadm beta dstate r0)" UpToDate/UpToDate/UpToDate/UpToDate "disk states after the initial sync"
    expect_ok rbadm alpha status r0
    if [[ $OUTPUT == *done:* || $OUTPUT == *replication:* ]]; then fail "alpha's status after the sync still shows it: $(tr '\n' ' ' <<< "$OUTPUT")"; fi
    expect_ok rbadm beta status r0
    if [[ $OUTPUT == *done:* || $OUTPUT == *replication:* ]]; then fail "beta's status after the sync still shows it: $(tr '\n' ' ' <<< "$OUTPUT")"; fi
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable"
    write_on "$URI_A" 40M 2M odp-after
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 40M 2M odp-after
    # The sync carried alpha's disk, random bytes at 16M among them, to beta.
    rp_same_disks "the initial sync started by primary --overwrite-data-of-peer"
    if cmp -s -n $((8 << 20)) -i $((16 << 20)):0 "$TEST_DIR/beta.img" /dev/zero; then
        fail "beta's disk is zero where alpha's held data before the sync"
    fi
}

REPLICATION_CASES=(
    initial-sync-and-switchover:rp_initial_sync_and_switchover
    status-shows-peer:rp_status_shows_peer
    reconnect-bitmap-resync:rp_reconnect_bitmap_resync
    failover-after-sigkill:rp_failover_after_sigkill
    invalidate:rp_invalidate
    split-brain-discard-my-data:rp_split_brain_discard_my_data
    trim-and-write-zeroes:rp_trim_and_write_zeroes:60
    pause-resume-sync:rp_pause_resume_sync:60
    overwrite-data-of-peer-progress:rp_overwrite_data_of_peer_progress:60
)

it_suite replication/two-node setup_replication_suite 900 "${REPLICATION_CASES[@]}"

# --- handlers and skipping the initial sync ------------------------------------------------------

# rp_handlers_options — the fast two-node options plus handlers that dump their environment into
# $TEST_DIR/NAME.env (one file per handler; the last call wins).
rp_handlers_options() {
    local h section=""
    for h in before-resync-target after-resync-target split-brain fence-peer; do
        # Written aside, then renamed: both nodes run split-brain at once, and a reader must never
        # see a half-written file (a check of -s alone raced with the second writer's truncation).
        section+="$h \"env > $TEST_DIR/$h.env.\$\$ && mv -f $TEST_DIR/$h.env.\$\$ $TEST_DIR/$h.env\"; "
    done
    RB_RESOURCE_EXTRA="$RB_TWO_NODE_OPTIONS net { fencing resource-only; } handlers { $section}"
}

rp_resync_handlers() {
    rp_handlers_options
    rp_synced
    [[ -s $TEST_DIR/before-resync-target.env ]] || fail "before-resync-target did not run on the SyncTarget"
    [[ -s $TEST_DIR/after-resync-target.env ]] || fail "after-resync-target did not run on the SyncTarget"
    grep -qx "DRBD_RESOURCE=r0" "$TEST_DIR/before-resync-target.env" || fail "before-resync-target: DRBD_RESOURCE missing"
    grep -qx "DRBD_PEER_NODE_ID=0" "$TEST_DIR/before-resync-target.env" || fail "before-resync-target on beta: DRBD_PEER_NODE_ID is not alpha's"
    grep -qx "DRBD_MY_NODE_ID=1" "$TEST_DIR/after-resync-target.env" || fail "after-resync-target ran on the wrong node"
    grep -qx "DRBD_VOLUME=0" "$TEST_DIR/after-resync-target.env" || fail "after-resync-target: DRBD_VOLUME missing"
    grep -q "^DRBD_BACKING_DEV=$TEST_DIR/beta.img" "$TEST_DIR/after-resync-target.env" || fail "after-resync-target: DRBD_BACKING_DEV is not beta's disk"
    # What drbdadm also sets, and DRBD's own scripts read (snapshot-resync-target-lvm.sh: DRBD_LL_DISK).
    grep -qx "DRBD_LL_DISK=$TEST_DIR/beta.img" "$TEST_DIR/before-resync-target.env" || fail "before-resync-target: DRBD_LL_DISK is not beta's disk"
    grep -qx "DRBD_MINOR=0" "$TEST_DIR/before-resync-target.env" || fail "before-resync-target: DRBD_MINOR missing"
    grep -qx "DRBD_CONF=$RB_CONFIG" "$TEST_DIR/before-resync-target.env" || fail "before-resync-target: DRBD_CONF is not the configuration file"
    grep -qx "DRBD_NODE_ID_0=alpha" "$TEST_DIR/before-resync-target.env" || fail "before-resync-target: DRBD_NODE_ID_0 missing"
    # A Primary that loses its peer calls fence-peer (fencing resource-only).
    write_on "$URI_A" 0 1M fence-1
    kill -KILL "${AGENT_PID[beta]}"
    wait_for "[[ -s '$TEST_DIR/fence-peer.env' ]]" 20 || fail "fence-peer did not run on the Primary"
    grep -qx "DRBD_PEER_NODE_ID=1" "$TEST_DIR/fence-peer.env" || fail "fence-peer: DRBD_PEER_NODE_ID is not beta's"
    # A resource's handler: the lists of all volumes (one here), as drbdadm passes them.
    grep -qx "DRBD_VOLUME=0" "$TEST_DIR/fence-peer.env" || fail "fence-peer: DRBD_VOLUME missing"
    grep -qx "DRBD_LL_DISK=$TEST_DIR/alpha.img" "$TEST_DIR/fence-peer.env" || fail "fence-peer: DRBD_LL_DISK is not alpha's disk"
    # What the kernel adds for crm-fence-peer.9.sh: only alpha (node 0) has UpToDate data now.
    grep -qx "UP_TO_DATE_NODES=0x00000001" "$TEST_DIR/fence-peer.env" || fail "fence-peer: UP_TO_DATE_NODES: $(grep UP_TO_DATE "$TEST_DIR/fence-peer.env")"
    grep -Eqx "DRBD_CSTATE=[A-Za-z]+" "$TEST_DIR/fence-peer.env" || fail "fence-peer: DRBD_CSTATE missing"
    verify_on "$URI_A" 0 1M fence-1
}

rp_split_brain_handler() {
    rp_handlers_options
    rp_synced
    expect_ok rbadm alpha disconnect r0
    expect_ok rbadm beta disconnect r0
    write_on "$URI_A" 0 1M sb-alpha
    # With fencing, the Primary's disconnect outdated beta and alpha is not fenced: only --force promotes.
    expect_ok rbadm beta primary r0 --force
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    write_on "$URI_B" 2M 1M sb-beta
    expect_ok rbadm alpha connect r0
    expect_ok rbadm beta connect r0
    wait_for "[[ -s '$TEST_DIR/split-brain.env' ]]" 20 || fail "the split-brain handler did not run"
    grep -qx "DRBD_RESOURCE=r0" "$TEST_DIR/split-brain.env" || fail "split-brain: DRBD_RESOURCE missing"
    # Both keep their own data: nothing was resynced.
    verify_on "$URI_A" 0 1M sb-alpha
    verify_on "$URI_B" 2M 1M sb-beta
}

rp_skip_initial_sync() {
    rp_up_cleared
    assert_eq "$(rbadm alpha dstate r0)" "UpToDate/UpToDate" "alpha after new-current-uuid --clear-bitmap"
    grep -q "resync" "$TEST_DIR/agent-alpha.log" "$TEST_DIR/agent-beta.log" && fail "a resync ran: $(grep -h resync "$TEST_DIR"/agent-*.log | head -n 2 | tr '\n' ' ')"
    # Both are a valid copy: write on alpha, read on beta.
    expect_ok rbadm alpha primary r0
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable"
    write_on "$URI_A" 4M 2M skip-1
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 4M 2M skip-1
}

rp_events_stream() {
    rp_pair
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm beta create-md r0
    expect_ok rbadm alpha up r0
    rbadm beta events r0 > "$TEST_DIR/events-beta.txt" 2>&1 &
    local events=$!
    track_pid "$events"
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    expect_ok rbadm alpha primary r0 --force
    expect_ok rbadm beta wait-sync r0 --timeout 60
    sleep 0.5   # the last change is published with the next tick
    kill_pid "$events" "" 5
    local text
    text=$(cat "$TEST_DIR/events-beta.txt")
    assert_match "$text" "change connection name:r0 peer-node-id:0 conn-name:alpha connection:Connected" "events: beta connected"
    assert_match "$text" "change connection name:r0 peer-node-id:0 conn-name:alpha connection:Connected role:Primary" "events: the peer became Primary"
    assert_match "$text" "change peer-device name:r0 peer-node-id:0 conn-name:alpha volume:0 replication:SyncTarget" "events: beta became SyncTarget"
    assert_match "$text" "change device name:r0 volume:0 minor:0 disk:UpToDate" "events: beta's disk became UpToDate"
    assert_match "$text" "replication:Established peer-disk:UpToDate" "events: back to Established with an UpToDate peer"
}

# wait-connect without --timeout waits startup { wfc-timeout } (as drbdadm passes it to drbdsetup),
# and gives up with the state it saw; --timeout overrides it; once the peer is up it connects.
rp_wait_connect_wfc_timeout() {
    RB_RESOURCE_EXTRA="$RB_TWO_NODE_OPTIONS startup { wfc-timeout 2; }" rp_pair
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm beta create-md r0
    expect_ok rbadm alpha up r0
    local start=$SECONDS out rc=0
    out=$(rbadm alpha wait-connect r0 2>&1) || rc=$?
    [[ $rc -ne 0 ]] || fail "wait-connect succeeded with beta down: $out"
    assert_match "$out" "wait-connect timed out after 2 s \\(beta: Connecting" "wait-connect's message"
    (( SECONDS - start <= 15 )) || fail "wait-connect took $((SECONDS - start)) s with wfc-timeout 2"
    rc=0
    out=$(rbadm alpha wait-sync r0 2>&1) || rc=$?
    [[ $rc -ne 0 ]] || fail "wait-sync succeeded with beta down: $out"
    assert_match "$out" "wait-sync timed out after 2 s" "wait-sync's message"
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
}

# wait-connect and wait-sync end at once, successfully, at a StandAlone connection (one that will not
# connect by itself: a split brain, an unrelated peer, a disconnect), as drbdsetup's do; with
# --wait-after-sb, or startup { wait-after-sb; } in the configuration, they wait on.
rp_wait_after_sb() {
    rp_pair
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
    expect_ok rbadm alpha disconnect r0
    assert_eq "$(rbadm alpha cstate r0)" "StandAlone" "alpha's connection after disconnect"
    local start=$SECONDS out rc=0
    out=$(rbadm alpha wait-connect r0 --timeout 30 2>&1) || fail "wait-connect failed at a StandAlone connection: $out"
    assert_match "$out" "beta is StandAlone: not waiting for it" "wait-connect's message"
    out=$(rbadm alpha wait-sync r0 --timeout 30 2>&1) || fail "wait-sync failed at a StandAlone connection: $out"
    (( SECONDS - start <= 10 )) || fail "wait-connect and wait-sync took $((SECONDS - start)) s at a StandAlone connection"
    out=$(rbadm alpha wait-connect r0 --timeout 2 --wait-after-sb 2>&1) || rc=$?
    [[ $rc -ne 0 ]] || fail "wait-connect --wait-after-sb ended at a StandAlone connection: $out"
    assert_match "$out" "beta is StandAlone, but configured to wait anyway" "wait-connect --wait-after-sb's message"
    assert_match "$out" "wait-connect timed out after 2 s \\(beta: StandAlone" "wait-connect --wait-after-sb's timeout"
    sed -i 's/^resource r0 {$/resource r0 { startup { wait-after-sb; }/' "$RB_CONFIG"
    rc=0
    out=$(rbadm alpha wait-sync r0 --timeout 2 2>&1) || rc=$?
    [[ $rc -ne 0 ]] || fail "wait-sync with startup { wait-after-sb; } ended at a StandAlone connection: $out"
    assert_match "$out" "wait-sync timed out after 2 s" "wait-sync's timeout with wait-after-sb configured"
    expect_ok rbadm alpha connect r0
    expect_ok rbadm beta create-md r0
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
}

# rp_restart_alpha_alone [beta-too] — alpha killed (then beta too, if asked, once alpha is gone) and
# started and up again on its own; its wait-connect, which must time out, leaves its output in WAIT_OUT.
rp_restart_alpha_alone() {
    kill -KILL "${AGENT_PID[alpha]}"
    [[ ${1:-} != beta-too ]] || kill -KILL "${AGENT_PID[beta]}"
    start_agent alpha
    expect_ok rbadm alpha up r0
    local rc=0
    WAIT_OUT=$(rbadm alpha wait-connect r0 2>&1) || rc=$?
    [[ $rc -ne 0 ]] || fail "wait-connect succeeded with beta down: $WAIT_OUT"
}

# wait-connect picks its timeout as drbdsetup does, from what the agent says (get-timeout-type): a
# node whose peer's disk is known Outdated waits outdated-wfc-timeout, one that went down as a
# Primary with no peer connected degr-wfc-timeout, one that went down connected wfc-timeout.
rp_wait_timeout_types() {
    RB_RESOURCE_EXTRA="$RB_TWO_NODE_OPTIONS net { fencing resource-only; } startup { wfc-timeout 4; degr-wfc-timeout 2; outdated-wfc-timeout 1; }" rp_synced
    write_on "$URI_A" 0 2M wt-1
    local out rc=0
    # With fencing, the Primary's graceful disconnect leaves its peer Outdated, and it knows; it dials again while
    # beta, disconnected too, does not answer.
    expect_ok rbadm alpha disconnect r0
    assert_eq "$(rbadm alpha dstate r0)" "UpToDate/Outdated" "alpha's dstate after its disconnect"
    expect_ok rbadm beta disconnect r0
    expect_ok rbadm alpha connect r0
    out=$(rbadm alpha wait-connect r0 2>&1) || rc=$?
    [[ $rc -ne 0 ]] || fail "wait-connect succeeded with beta disconnected: $out"
    assert_match "$out" "r0: the peer's disk is Outdated: waiting 1 s \\(outdated-wfc-timeout\\)" "wait-connect's timeout with an Outdated peer"
    assert_match "$out" "wait-connect timed out after 1 s" "wait-connect's outdated-wfc-timeout"
    # Reconnected, then beta dies: alpha is a degraded Primary; it dies too and comes back alone.
    expect_ok rbadm beta connect r0
    expect_ok rbadm beta wait-sync r0 --timeout 20
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    kill -KILL "${AGENT_PID[beta]}"
    wait_for "[[ \$(rbadm alpha cstate r0) != Connected ]]" 20 || fail "alpha did not notice beta's death"
    write_on "$URI_A" 4M 2M wt-2
    rp_restart_alpha_alone
    out=$WAIT_OUT
    assert_match "$out" "r0: this node went down as a Primary with no peer connected: waiting 2 s \\(degr-wfc-timeout\\)" "wait-connect's timeout after a degraded Primary's crash"
    assert_match "$out" "wait-connect timed out after 2 s" "wait-connect's degr-wfc-timeout"
    # --timeout overrides whichever applies.
    rc=0
    out=$(rbadm alpha wait-connect r0 --timeout 1 2>&1) || rc=$?
    assert_match "$out" "wait-connect timed out after 1 s" "wait-connect --timeout"
    # beta is back: alpha's degraded wait is over; alpha, Primary again, dies while connected.
    start_agent beta
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm alpha primary r0
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after primary"
    verify_on "$URI_A" 0 2M wt-1
    verify_on "$URI_A" 4M 2M wt-2
    rp_restart_alpha_alone beta-too
    out=$WAIT_OUT
    [[ ! $out =~ degr-wfc-timeout|outdated-wfc-timeout ]] || fail "wait-connect after a connected Primary's crash did not wait wfc-timeout: $out"
    assert_match "$out" "wait-connect timed out after 4 s" "wait-connect's wfc-timeout after a connected Primary's crash"
}

it_suite replication/runbook setup_replication_suite 600 \
    wait-connect-wfc-timeout:rp_wait_connect_wfc_timeout \
    wait-timeout-types:rp_wait_timeout_types \
    wait-after-sb:rp_wait_after_sb \
    events-stream:rp_events_stream \
    resync-handlers:rp_resync_handlers \
    split-brain-handler:rp_split_brain_handler \
    skip-initial-sync:rp_skip_initial_sync

# --- a crashed Primary's activity log ------------------------------------------------------------

rp_crashed_primary_al_resync() {
    rp_synced
    fio --name=load --ioengine=nbd --uri="$URI_A" --rw=randwrite --bs=4k --iodepth=16 --size=48m \
        --time_based=1 --runtime=30 --output="$TEST_DIR/fio.out" > "$TEST_DIR/fio.log" 2>&1 &
    local fio=$!
    track_pid "$fio"
    sleep 2
    kill -KILL "${AGENT_PID[alpha]}"
    kill_pid "$fio" "" 5
    # alpha comes back (still Secondary, not promoted): its AL extents must be resynced.
    start_agent alpha
    expect_ok rbadm alpha up r0
    grep -q "activity-log extents marked out of sync" "$TEST_DIR/agent-alpha.log" || fail "alpha did not apply its activity log after the crash"
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    local size_kib
    size_kib=$(json_field alpha '.[0].devices[0].size')
    expect_ok rbadm alpha down r0
    expect_ok rbadm beta down r0
    cmp -n $((size_kib * 1024)) "$TEST_DIR/alpha.img" "$TEST_DIR/beta.img" > "$TEST_DIR/cmp.out" 2>&1 \
        || fail "the replicas differ after the crashed Primary's resync: $(head -c 200 "$TEST_DIR/cmp.out")"
}

# drbd.md §8 item 14 (protocol-a-io): busy writes with protocol A, role switches between them,
# and in the end both backing disks are byte-identical over the data area.
rp_protocol_a_io() {
    RB_RESOURCE_EXTRA='net { protocol A; connect-int 1; ping-int 1; } disk { c-plan-ahead 0; resync-rate 400M; }'
    rp_synced
    local round node=alpha other=beta uri
    for round in 1 2 3 4; do
        uri=$URI_A
        [[ $node == beta ]] && uri=$URI_B
        wait_nbd "$uri" 20 || fail "round $round: $node's export not reachable"
        fio --name=busy --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 --size=48m \
            --time_based=1 --runtime=3 --randseed=$round --output="$TEST_DIR/fio-$round.out" > "$TEST_DIR/fio-$round.log" 2>&1 \
            || fail "round $round: fio on $node failed: $(tail -n 3 "$TEST_DIR/fio-$round.log" | tr '\n' ' ')"
        switch_to "$other" "$node"
        local t=$node; node=$other; other=$t
    done
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 60
    local size_kib
    size_kib=$(json_field alpha '.[0].devices[0].size')
    expect_ok rbadm "$node" secondary r0
    expect_ok rbadm alpha down r0
    expect_ok rbadm beta down r0
    cmp -n $((size_kib * 1024)) "$TEST_DIR/alpha.img" "$TEST_DIR/beta.img" > "$TEST_DIR/cmp.out" 2>&1 \
        || fail "the replicas differ after busy protocol A writes and role switches: $(head -c 200 "$TEST_DIR/cmp.out")"
}

it_suite replication/crash setup_replication_suite 300 crashed-primary-al-resync:rp_crashed_primary_al_resync

it_suite replication/protocol-a setup_replication_suite 300 protocol-a-io:rp_protocol_a_io

# direct-io yes on both nodes: whole-block requests go to the disks asynchronously (Linux AIO), many at
# once, and partial-block writes through read-modify-write. fio writes mixed sizes at QD32 with
# checksums and reads them back on the Primary, then verifies the same blocks on the other node after
# a switch-over; odd-sized writes too; in the end the backing files are byte-identical.
rp_direct_io() {
    RB_RESOURCE_EXTRA='net { protocol C; connect-int 1; ping-int 1; } disk { c-plan-ahead 0; resync-rate 400M; direct-io yes; }'
    rp_synced
    local node
    for node in alpha beta; do
        grep -q "attached to .*direct I/O, asynchronous" "$TEST_DIR/agent-$node.log" \
            || fail "$node did not attach its disk with asynchronous direct I/O: $(grep -m 1 'attached to' "$TEST_DIR/agent-$node.log")"
    done
    local fio_args=(--ioengine=nbd --rw=randwrite --bsrange=4k-128k --bs_unaligned=0 --iodepth=32 --size=40m
        --randseed=4242 --verify=crc32c --verify_fatal=1)
    fio --name=direct "${fio_args[@]}" --uri="$URI_A" --output="$TEST_DIR/fio-a.out" > "$TEST_DIR/fio-a.log" 2>&1 \
        || fail "fio with verify on alpha (direct I/O) failed: $(grep -m 3 -i -E 'verify|error' "$TEST_DIR/fio-a.out" "$TEST_DIR/fio-a.log" | tr '\n' ' ')"
    write_on "$URI_A" 41943041 10000 dio-odd-1
    write_on "$URI_A" 50000000 513 dio-odd-2
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    fio --name=direct "${fio_args[@]}" --verify_only=1 --uri="$URI_B" --output="$TEST_DIR/fio-b.out" > "$TEST_DIR/fio-b.log" 2>&1 \
        || fail "fio found blocks on beta that differ from what alpha wrote: $(grep -m 3 -i -E 'verify|error' "$TEST_DIR/fio-b.out" "$TEST_DIR/fio-b.log" | tr '\n' ' ')"
    verify_on "$URI_B" 41943041 10000 dio-odd-1
    verify_on "$URI_B" 50000000 513 dio-odd-2
    local size_kib
    size_kib=$(json_field beta '.[0].devices[0].size')
    expect_ok rbadm beta secondary r0
    expect_ok rbadm alpha down r0
    expect_ok rbadm beta down r0
    cmp -n $((size_kib * 1024)) "$TEST_DIR/alpha.img" "$TEST_DIR/beta.img" > "$TEST_DIR/cmp.out" 2>&1 \
        || fail "the replicas differ after direct I/O writes: $(head -c 200 "$TEST_DIR/cmp.out")"
}

it_suite replication/direct-io setup_replication_suite 300 direct-io:rp_direct_io

# --- adjust ----------------------------------------------------------------------------------------

rp_adjust() {
    rp_pair
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm beta create-md r0
    expect_ok rbadm alpha adjust r0        # not up yet: adjust brings it up
    expect_ok rbadm beta adjust r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    expect_ok rbadm alpha primary r0 --force
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable"
    write_on "$URI_A" 0 2M adjust-1
    expect_ok rbadm beta disconnect r0
    assert_eq "$(rbadm beta cstate r0)" StandAlone "beta after disconnect"
    expect_ok rbadm beta adjust r0         # StandAlone: adjust connects
    expect_ok rbadm beta wait-connect r0 --timeout 20
    # A new replication protocol (C -> A) goes to the connected peer, which adopts it (DRBD's
    # P_PROTOCOL_UPDATE): the connection stays up, writes go on, beta's own adjust finds nothing to do.
    sed -i 's/protocol C;/protocol A;/' "$RB_CONFIG"
    local seen_a seen_b
    seen_a=$(wc -l < "$TEST_DIR/agent-alpha.log")
    seen_b=$(wc -l < "$TEST_DIR/agent-beta.log")
    expect_ok rbadm alpha adjust r0
    wait_for "tail -n +$((seen_b + 1)) '$TEST_DIR/agent-beta.log' | grep -q \"the peer's adjust changed the protocol settings: protocol A\"" 10 \
        || fail "beta did not adopt protocol A from alpha"
    write_on "$URI_A" 2M 2M adjust-1b
    expect_ok rbadm beta adjust r0
    assert_eq "$(rbadm alpha cstate r0)" Connected "alpha after both adjusted"
    tail -n +$((seen_a + 1)) "$TEST_DIR/agent-alpha.log" | grep -q "adjust: replication protocol C -> A (requests in flight keep theirs)" \
        || fail "alpha did not take protocol A"
    if tail -n +$((seen_a + 1)) "$TEST_DIR/agent-alpha.log" | grep -q "connection lost\|reconnecting"; then
        fail "the protocol change dropped the connection: $(tail -n +$((seen_a + 1)) "$TEST_DIR/agent-alpha.log" | grep "connection lost\|reconnecting" | head -3)"
    fi
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 60
    write_on "$URI_A" 4M 2M adjust-2
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 2M adjust-1
    verify_on "$URI_B" 2M 2M adjust-1b
    verify_on "$URI_B" 4M 2M adjust-2
}

# adjust with an NBD client holding the Primary's device: the resync rate (even of a running
# resync) and net options change without restarting replication or dropping the client.
rp_adjust_live() {
    rp_synced
    "$PYTHON" "$NBDTOOL" hold "$URI_A" "$TEST_DIR/hold.status" > "$TEST_DIR/hold.log" 2>&1 &
    local hold=$!
    track_pid "$hold"
    wait_for "grep -q connected '$TEST_DIR/hold.status'" 20 || fail "client could not connect"
    sed -i 's/resync-rate 400M;/resync-rate 1M;/' "$RB_CONFIG"
    expect_ok rbadm alpha adjust r0
    expect_ok rbadm beta adjust r0
    # Beta misses 32 MiB, which at 1 MiB/s would take half a minute to resync.
    expect_ok rbadm beta disconnect r0
    write_on "$URI_A" 0 32M live-1
    expect_ok rbadm beta connect r0
    wait_for "[[ \$(rbadm beta status r0) == *SyncTarget* ]]" 20 || fail "no resync started: $(rbadm beta status r0)"
    sleep 2
    assert_match "$(rbadm beta status r0)" 'SyncTarget' "beta still syncing at 1 MiB/s"
    sed -i 's/resync-rate 1M;/resync-rate 400M;/' "$RB_CONFIG"
    expect_ok rbadm beta adjust r0
    expect_ok rbadm alpha adjust r0
    expect_ok rbadm beta wait-sync r0 --timeout 10
    grep -q "the running resync continues at the new rate settings" "$TEST_DIR/agent-beta.log" \
        || fail "beta's running resync did not take the new rate"
    # Options the handshake agrees on, the replication protocol among them: alpha reconnects at
    # once, beta stands alone until its adjust; the client keeps its connection throughout.
    grep -q 'protocol C;' "$RB_CONFIG" || fail "the suite's configuration no longer says protocol C"
    sed -i 's/ping-int 1;/ping-int 1; after-sb-0pri discard-zero-changes; data-integrity-alg crc32c;/; s/protocol C;/protocol A;/' "$RB_CONFIG"
    expect_ok rbadm alpha adjust r0
    expect_ok rbadm beta adjust r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    expect_ok rbadm beta wait-sync r0 --timeout 20
    grep -q "adjust: net options changed: reconnecting" "$TEST_DIR/agent-alpha.log" || fail "alpha did not reconnect for the new net options"
    for node in alpha beta; do
        grep -q "adjust: replication protocol C -> A" "$TEST_DIR/agent-$node.log" \
            || fail "$node did not take protocol A"
    done
    if grep -q "restarting replication" "$TEST_DIR/agent-alpha.log" "$TEST_DIR/agent-beta.log"; then
        fail "adjust restarted replication"
    fi
    write_on "$URI_A" 40M 4M live-2
    grep -qx connected "$TEST_DIR/hold.status" || fail "the NBD client lost its connection during adjust"
    kill_pid "$hold"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 32M live-1
    verify_on "$URI_B" 40M 4M live-2
}

it_suite replication/adjust setup_replication_suite 300 adjust:rp_adjust adjust-live:rp_adjust_live

# --- promotion is cluster-wide ---------------------------------------------------------------------

# rp_concurrent_primary — both Secondary and connected, `primary` started on both at the same
# instant, three rounds: exactly one exits 0, the other is refused with DRBD's message (the
# concurrent change, or the Primary peer when its promotion was already carried out); data
# written through the Primary verifies on the other node after a switch-over.
rp_concurrent_primary() {
    rp_synced
    local round winner loser rc_a rc_b out_a out_b
    for round in 1 2 3; do
        wait_for "rbadm alpha secondary r0" 10 || expect_ok rbadm alpha secondary r0
        wait_for "rbadm beta secondary r0" 10 || expect_ok rbadm beta secondary r0
        wait_for "[[ \$(rbadm alpha status r0 --json | jq -r '.[0].connections[0][\"peer-role\"]') == Secondary ]]" 10 \
            || fail "round $round: alpha does not see beta Secondary"
        out_a=$TEST_DIR/primary-alpha.$round
        out_b=$TEST_DIR/primary-beta.$round
        # Both agents are held (SIGSTOP) while both CLIs start and send `primary`; released at
        # once, the agents handle the two commands within a moment of each other, so the two
        # promotion requests cross on the wire (a CLI's start-up alone takes longer than a promotion).
        kill -STOP "${AGENT_PID[alpha]}" "${AGENT_PID[beta]}"
        rbadm alpha primary r0 > "$out_a" 2>&1 &
        local pid_a=$!
        rbadm beta primary r0 > "$out_b" 2>&1 &
        local pid_b=$!
        sleep 2
        kill -CONT "${AGENT_PID[alpha]}" "${AGENT_PID[beta]}"
        rc_a=0; wait "$pid_a" || rc_a=$?
        rc_b=0; wait "$pid_b" || rc_b=$?
        if [[ $rc_a -eq 0 && $rc_b -ne 0 ]]; then winner=alpha loser=beta
        elif [[ $rc_b -eq 0 && $rc_a -ne 0 ]]; then winner=beta loser=alpha
        else fail "round $round: exit codes alpha $rc_a, beta $rc_b: exactly one must succeed ($(tr '\n' ' ' < "$out_a") / $(tr '\n' ' ' < "$out_b"))"
        fi
        assert_match "$(cat "$TEST_DIR/primary-$loser.$round")" \
            "Concurrent state changes detected and aborted|Multiple primaries not allowed by config" "round $round: $loser's refusal"
        assert_eq "$(rbadm "$winner" role r0)/$(rbadm "$loser" role r0)" Primary/Secondary "round $round: roles"
        assert_eq "$(rbadm "$loser" cstate r0)" Connected "round $round: $loser's connection after the refusal"
        local uri_w=$URI_A uri_l=$URI_B
        [[ $winner == beta ]] && uri_w=$URI_B uri_l=$URI_A
        wait_nbd "$uri_w" 20 || fail "round $round: $winner's export not reachable"
        write_on "$uri_w" $((round * 4))M 2M "race-$round"
        switch_to "$loser" "$winner"
        wait_nbd "$uri_l" 20 || fail "round $round: $loser's export not reachable after the switch-over"
        verify_on "$uri_l" $((round * 4))M 2M "race-$round"
    done
    grep -q "Preparing cluster-wide state change" "$TEST_DIR/agent-alpha.log" "$TEST_DIR/agent-beta.log" \
        || fail "no promotion was asked of the peer"
    grep -qE "Rejecting concurrent remote state change|refused the peer's BecomePrimary" "$TEST_DIR/agent-alpha.log" "$TEST_DIR/agent-beta.log" \
        || fail "no promotion request was refused by the peer: the two promotions never overlapped"
}

it_suite replication/promotion setup_replication_suite 300 concurrent-primary:rp_concurrent_primary

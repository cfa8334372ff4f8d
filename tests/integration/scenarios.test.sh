# shellcheck shell=bash
# scenarios.test.sh — DRBD's two-node scenarios (drbd.md §8) that replication.test.sh does not
# cover, on loopback: refused connections (wrong shared secret, mismatched protocol or after-sb
# settings, unrelated data), promotion rules (a second Primary, an Inconsistent disk), split brain
# resolved by after-sb-0pri discard-zero-changes, disks of different sizes and `resize` after the
# disks grew. Every case checks data through NBD or on the backing disk, not only states.

# shellcheck source=tests/integration/replication.test.sh
source "$IT_DIR/replication.test.sh"

setup_scenarios_suite() { require_built; }

# sc_net "OPTIONS;" — RB_TWO_NODE_OPTIONS with OPTIONS added to its net section.
sc_net() { printf '%s\n' "$RB_TWO_NODE_OPTIONS" | sed "s/net { /net { $1 /"; }

# sc_pair_split ALPHA_OPTIONS BETA_OPTIONS — rp_pair, but each node's config file has its own
# resource options ($TEST_DIR/NODE.conf, which sc_adm uses), as two machines' files can differ.
sc_pair_split() {
    RB_RESOURCE_EXTRA=@NODE_OPTIONS@ rp_pair
    local text
    text=$(< "$RB_CONFIG")
    printf '%s\n' "${text//@NODE_OPTIONS@/$1}" > "$TEST_DIR/alpha.conf"
    printf '%s\n' "${text//@NODE_OPTIONS@/$2}" > "$TEST_DIR/beta.conf"
}

# sc_adm NODE ARGS... — rbadm with the node's own config file if the case split it, else $RB_CONFIG.
sc_adm() {
    local node=$1 conf=$TEST_DIR/$1.conf
    shift
    [[ -e $conf ]] || conf=$RB_CONFIG
    RB_CONFIG=$conf rbadm "$node" "$@"
}

# sc_up_split — create-md and up on both nodes, each with its own config file.
sc_up_split() {
    expect_ok sc_adm alpha create-md r0
    expect_ok sc_adm beta create-md r0
    expect_ok sc_adm alpha up r0
    expect_ok sc_adm beta up r0
}

# sc_wait_standalone — both nodes StandAlone (a refused connection is not retried).
sc_wait_standalone() {
    local node
    for node in alpha beta; do
        wait_for "[[ \$(sc_adm $node cstate r0) == StandAlone ]]" 20 \
            || fail "$node is $(sc_adm "$node" cstate r0), want StandAlone: $(grep -E 'r0 (alpha|beta)' "$TEST_DIR/agent-$node.log" | tail -n 2 | tr '\n' ' ')"
    done
}

# sc_logs_say ERE WHAT — both agents' logs match ERE.
sc_logs_say() {
    local node
    for node in alpha beta; do
        grep -Eq -- "$1" "$TEST_DIR/agent-$node.log" || fail "$node's log does not say $2 (/$1/): $(grep -E 'r0 (alpha|beta)' "$TEST_DIR/agent-$node.log" | tail -n 3 | tr '\n' ' ')"
    done
}

# sc_no_data_crosses — after a refused connection: alpha, forced Primary, writes; it stays
# StandAlone, and nothing of it reaches beta (still Inconsistent, its disk still zero there).
sc_no_data_crosses() {
    expect_ok sc_adm alpha primary r0 --force
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after primary --force"
    write_on "$URI_A" 0 4M isolated
    sleep 2 # several connect-int periods: a node that retried would have connected by now
    assert_eq "$(sc_adm alpha cstate r0)" StandAlone "alpha's connection after writing"
    assert_eq "$(sc_adm beta cstate r0)" StandAlone "beta's connection after alpha wrote"
    assert_eq "$(sc_adm beta dstate r0)" Inconsistent/DUnknown "beta's disk (it never got data)"
    verify_on "$URI_A" 0 4M isolated
    zero_on_disk "$TEST_DIR/beta.img" 0 4
    if grep -Eq 'resync' "$TEST_DIR/agent-alpha.log" "$TEST_DIR/agent-beta.log"; then
        fail "a resync started between refused peers: $(grep -h resync "$TEST_DIR"/agent-*.log | head -n 2 | tr '\n' ' ')"
    fi
}

# --- cases ---------------------------------------------------------------------------------------

# drbd.md §8 item 25: cram-hmac-alg with different secrets.
sc_wrong_shared_secret() {
    sc_pair_split "$(sc_net 'cram-hmac-alg sha256; shared-secret "alpha-secret";')" \
        "$(sc_net 'cram-hmac-alg sha256; shared-secret "beta-secret";')"
    sc_up_split
    sc_wait_standalone
    sc_logs_say "authentication (of peer )?failed" "authentication failed"
    sc_no_data_crosses
}

# drbd.md §8 item 25: the protocol must agree.
sc_mismatched_protocol() {
    sc_pair_split "$RB_TWO_NODE_OPTIONS" "${RB_TWO_NODE_OPTIONS/protocol C/protocol A}"
    sc_up_split
    sc_wait_standalone
    sc_logs_say "incompatible protocol settings" "which setting differs (protocol)"
    sc_no_data_crosses
}

# drbd.md §8 item 25: the after-sb policies must agree.
sc_mismatched_after_sb() {
    sc_pair_split "$(sc_net 'after-sb-0pri disconnect;')" "$(sc_net 'after-sb-0pri discard-zero-changes;')"
    sc_up_split
    sc_wait_standalone
    sc_logs_say "incompatible after-sb-0pri settings" "which setting differs (after-sb-0pri)"
    sc_no_data_crosses
}

# drbd.md §8 item 7: fresh metadata on both, each forced Primary on its own, then connect.
sc_unrelated_data() {
    rp_pair
    expect_ok sc_adm alpha create-md r0
    expect_ok sc_adm beta create-md r0
    expect_ok sc_adm alpha up r0
    expect_ok sc_adm alpha disconnect r0
    expect_ok sc_adm beta up r0
    expect_ok sc_adm beta disconnect r0
    expect_ok sc_adm alpha primary r0 --force
    expect_ok sc_adm beta primary r0 --force
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable"
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    write_on "$URI_A" 0 2M unrelated-alpha
    write_on "$URI_B" 0 2M unrelated-beta
    expect_ok sc_adm alpha connect r0
    expect_ok sc_adm beta connect r0
    sc_wait_standalone
    sc_logs_say "Unrelated data" "Unrelated data"
    # Neither side's data was touched.
    verify_on "$URI_A" 0 2M unrelated-alpha
    verify_on "$URI_B" 0 2M unrelated-beta
    assert_eq "$(sc_adm alpha role r0)/$(sc_adm beta role r0)" Primary/Primary "roles after the refused connection"
}

# drbd.md §8 item 8: without allow-two-primaries a Secondary cannot be promoted while its peer is Primary.
sc_two_primaries_reject() {
    rp_synced
    write_on "$URI_A" 0 2M tp-1
    expect_fail sc_adm beta primary r0
    assert_match "$OUTPUT" "peer is Primary" "the refusal names the Primary peer"
    assert_eq "$(sc_adm beta role r0)" Secondary "beta's role after the refused promotion"
    if nbdinfo --can connect "$URI_B" 2> /dev/null; then fail "beta serves NBD while Secondary"; fi
    assert_eq "$(sc_adm alpha cstate r0)" Connected "the connection after the refused promotion"
    # Replication goes on as before.
    write_on "$URI_A" 4M 2M tp-2
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 0 2M tp-1
    verify_on "$URI_B" 4M 2M tp-2
}

# drbd.md §8 item 8, the other way in: both nodes became Primary while apart (no allow-two-primaries)
# and each wrote; connecting them is refused (the two new generations are a split brain that
# after-sb-2pri disconnect does not resolve): both StandAlone, the reason logged, both still
# Primary, and nothing crossed: each disk holds its own write and not the other's.
sc_two_primaries_connect() {
    rp_synced
    write_on "$URI_A" 0 2M tpc-common
    sc_apart
    write_on "$URI_A" 4M 1M tpc-alpha
    expect_ok sc_adm beta primary r0
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    write_on "$URI_B" 8M 1M tpc-beta
    assert_eq "$(sc_adm alpha role r0)/$(sc_adm beta role r0)" Primary/Primary "roles while apart"
    local resyncs
    resyncs=$(awk '/resync/ { n++ } END { print n + 0 }' "$TEST_DIR/agent-alpha.log" "$TEST_DIR/agent-beta.log")
    expect_ok sc_adm alpha connect r0
    expect_ok sc_adm beta connect r0
    sc_wait_standalone
    sc_logs_say "Split-Brain detected but unresolved, dropping connection|Multiple primaries not allowed by config" "why the connection was refused"
    sleep 2 # several connect-int periods: a node that retried would have connected by now
    assert_eq "$(sc_adm alpha cstate r0)/$(sc_adm beta cstate r0)" StandAlone/StandAlone "connections 2 s after the refusal"
    assert_eq "$(sc_adm alpha role r0)/$(sc_adm beta role r0)" Primary/Primary "roles after the refused connection"
    assert_eq "$(awk '/resync/ { n++ } END { print n + 0 }' "$TEST_DIR/agent-alpha.log" "$TEST_DIR/agent-beta.log")" "$resyncs" "log lines about a resync since the connect"
    verify_on "$URI_A" 0 2M tpc-common
    verify_on "$URI_A" 4M 1M tpc-alpha
    verify_on "$URI_A" 8M 1M zero
    verify_on "$URI_B" 0 2M tpc-common
    verify_on "$URI_B" 8M 1M tpc-beta
    verify_on "$URI_B" 4M 1M zero
}

# sc_apart — both disconnect (a split in the making).
sc_apart() {
    expect_ok sc_adm alpha disconnect r0
    expect_ok sc_adm beta disconnect r0
}

# drbd.md §8 item 6: only alpha wrote while apart, beta was promoted (a new generation) but wrote
# nothing: after-sb-0pri discard-zero-changes resolves it, alpha's data wins on both nodes.
sc_discard_zero_changes() {
    RB_RESOURCE_EXTRA=$(sc_net 'after-sb-0pri discard-zero-changes;')
    rp_synced
    write_on "$URI_A" 0 2M dzc-common
    sc_apart
    write_on "$URI_A" 4M 2M dzc-alpha
    expect_ok sc_adm alpha secondary r0
    expect_ok sc_adm beta primary r0
    expect_ok sc_adm beta secondary r0
    expect_ok sc_adm alpha connect r0
    expect_ok sc_adm beta connect r0
    expect_ok sc_adm alpha wait-sync r0 --timeout 30
    expect_ok sc_adm beta wait-sync r0 --timeout 20
    grep -q "Split-Brain detected, 0 primaries, automatically solved. Sync from this node" "$TEST_DIR/agent-alpha.log" \
        || fail "alpha did not resolve the split brain as sync source: $(grep -E 'Split-Brain|resync' "$TEST_DIR/agent-alpha.log" | tail -n 2 | tr '\n' ' ')"
    grep -q "Split-Brain detected, 0 primaries, automatically solved. Sync from peer node" "$TEST_DIR/agent-beta.log" \
        || fail "beta did not resolve the split brain as sync target"
    assert_eq "$(sc_adm beta dstate r0)" UpToDate/UpToDate "beta after the automatic resolution"
    expect_ok sc_adm beta primary r0
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 2M dzc-common
    verify_on "$URI_B" 4M 2M dzc-alpha
    switch_to alpha beta
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable"
    verify_on "$URI_A" 4M 2M dzc-alpha
}

# drbd.md §8 item 6, second half: both wrote while apart → discard-zero-changes cannot decide: StandAlone.
sc_discard_zero_changes_two_writers() {
    RB_RESOURCE_EXTRA=$(sc_net 'after-sb-0pri discard-zero-changes;')
    rp_synced
    write_on "$URI_A" 0 2M dzc2-common
    sc_apart
    write_on "$URI_A" 4M 1M dzc2-alpha
    expect_ok sc_adm alpha secondary r0
    expect_ok sc_adm beta primary r0
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    write_on "$URI_B" 8M 1M dzc2-beta
    expect_ok sc_adm beta secondary r0
    expect_ok sc_adm alpha connect r0
    expect_ok sc_adm beta connect r0
    sc_wait_standalone
    sc_logs_say "Split-Brain detected" "Split-Brain detected"
    # Nothing was synced: each node still has its own write, and not the other's.
    expect_ok sc_adm alpha primary r0
    expect_ok sc_adm beta primary r0
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable"
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_A" 4M 1M dzc2-alpha
    verify_on "$URI_A" 8M 1M zero
    verify_on "$URI_B" 8M 1M dzc2-beta
    verify_on "$URI_B" 4M 1M zero
    verify_on "$URI_B" 0 2M dzc2-common
}

# drbd.md §8 item 21: alpha's disk is 64M, beta's 80M: both export the smaller size (beta takes
# it at the handshake, still Inconsistent), the initial sync covers it, nothing goes past it.
sc_differing_sizes() {
    RP_BETA_SIZE=80M rp_synced
    local size_a size_b
    size_a=$(nbdinfo --size "$URI_A")
    (( size_a < 64 << 20 )) || fail "alpha exports $size_a bytes from a 64 MiB disk with internal metadata"
    grep -Eq "device size [0-9]+ KiB -> $((size_a / 1024)) KiB" "$TEST_DIR/agent-beta.log" \
        || fail "beta did not take alpha's size: $(grep -E 'device size|too small' "$TEST_DIR/agent-beta.log" | tail -n 2 | tr '\n' ' ')"
    assert_eq "$(json_field alpha '.[0].devices[0].size')" $((size_a / 1024)) "alpha's status size (KiB)"
    assert_eq "$(json_field beta '.[0].devices[0].size')" $((size_a / 1024)) "beta's status size (KiB), its own disk is 80 MiB"
    # The last MiB of the agreed size is replicated too.
    write_on "$URI_A" $((size_a - (1 << 20))) 1M ds-tail
    write_on "$URI_A" 0 1M ds-head
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    size_b=$(nbdinfo --size "$URI_B")
    assert_eq "$size_b" "$size_a" "beta's export size (its own disk is 80 MiB)"
    verify_on "$URI_B" $((size_b - (1 << 20))) 1M ds-tail
    verify_on "$URI_B" 0 1M ds-head
    # beta's bigger disk does not make the device bigger: a write past the agreed size fails.
    expect_ok "$PYTHON" "$NBDTOOL" check "$URI_B" pwrite-past-end
    write_on "$URI_B" $((size_b - (1 << 20))) 1M ds-tail-2
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(json_field beta '.[0].connections[0].peer_devices[0]["out-of-sync"]')" 0 "nothing out of sync after the writes on beta"
    # Both nodes hold the same bytes over the agreed size.
    cmp -n "$size_a" "$TEST_DIR/alpha.img" "$TEST_DIR/beta.img" || fail "the backing disks differ within the agreed size"
    # beta comes back alone: its metadata remembers the agreed size (la-size), not its bigger disk.
    expect_ok rbadm alpha down r0
    expect_ok rbadm beta secondary r0
    expect_ok rbadm beta down r0
    expect_ok rbadm beta up r0
    expect_ok rbadm beta primary r0
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after coming back alone"
    assert_eq "$(nbdinfo --size "$URI_B")" "$size_a" "beta's export size after coming back alone"
    verify_on "$URI_B" $((size_b - (1 << 20))) 1M ds-tail-2
}

# drbd.md §8 item 21, second half: both disks grow (the files are extended under the running
# agents), `resize` on the Primary grows the device on both nodes, the new area is resynced from
# the Primary, and data can be written there and read on the other node.
sc_resize() {
    rp_synced
    local old new
    old=$(nbdinfo --size "$URI_A")
    write_on "$URI_A" $((old - (1 << 20))) 1M rs-old-tail
    # Only alpha's disk grew: resize changes nothing (beta cannot hold more), and says so in status.
    fallocate -l 96M "$TEST_DIR/alpha.img"
    expect_ok rbadm alpha resize r0
    assert_eq "$(json_field alpha '.[0].devices[0].size')" $((old / 1024)) "alpha's size after a resize beta cannot follow"
    # A disconnected peer blocks it: it might hold less.
    expect_ok rbadm beta disconnect r0
    wait_for "[[ \$(rbadm alpha cstate r0) != Connected ]]" 20 || fail "alpha did not notice the disconnect"
    expect_fail rbadm alpha resize r0
    assert_match "$OUTPUT" "every peer connected" "the refusal names the reason"
    expect_ok rbadm beta connect r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    # Now beta's disk grows too.
    fallocate -l 96M "$TEST_DIR/beta.img"
    expect_ok rbadm alpha resize r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    grep -q "Resync of new storage after online grow" "$TEST_DIR/agent-alpha.log" \
        || fail "alpha did not resync the new area: $(grep -E 'resize|device size' "$TEST_DIR/agent-alpha.log" | tail -n 3 | tr '\n' ' ')"
    new=$(json_field alpha '.[0].devices[0].size')
    new=$((new * 1024))
    (( new > 90 << 20 && new < 96 << 20 )) || fail "alpha's device is $new bytes after growing to 96 MiB"
    assert_eq "$(json_field beta '.[0].devices[0].size')" $((new / 1024)) "beta's status size after the resize"
    # A client that opens now sees the new size, and the new area is written and replicated.
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable"
    assert_eq "$(nbdinfo --size "$URI_A")" "$new" "alpha's export size after the resize"
    write_on "$URI_A" $((new - (2 << 20))) 2M rs-new-tail
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    assert_eq "$(nbdinfo --size "$URI_B")" "$new" "beta's export size after the resize"
    verify_on "$URI_B" $((new - (2 << 20))) 2M rs-new-tail
    verify_on "$URI_B" $((old - (1 << 20))) 1M rs-old-tail
    # The resync made the whole grown device identical (the new area held alpha's old metadata).
    cmp -n "$new" "$TEST_DIR/alpha.img" "$TEST_DIR/beta.img" || fail "the backing disks differ within the grown device"
}

# A Diskless Primary (detached) takes the size its peer grew to: new clients see the bigger
# device, and its new area is written and read through the peer. Its own disk, still small, is
# then refused at attach.
sc_resize_diskless() {
    rp_synced
    local old new
    old=$(nbdinfo --size "$URI_A")
    expect_ok rbadm alpha detach r0
    assert_eq "$(rbadm alpha dstate r0)" Diskless/UpToDate "alpha after detach"
    fallocate -l 96M "$TEST_DIR/beta.img"
    expect_ok rbadm beta resize r0
    new=$(json_field beta '.[0].devices[0].size')
    new=$((new * 1024))
    (( new > old )) || fail "beta's device did not grow: $new bytes (was $old)"
    grep -q "Diskless: the peer's device size" "$TEST_DIR/agent-alpha.log" || fail "alpha did not take beta's size"
    assert_eq "$(nbdinfo --size "$URI_A")" "$new" "the Diskless Primary's export size after the peer grew"
    assert_eq "$(json_field alpha '.[0].devices[0].size')" $((new / 1024)) "the Diskless Primary's status size"
    write_on "$URI_A" $((new - (2 << 20))) 2M rsd-new-tail
    verify_on "$URI_A" $((new - (2 << 20))) 2M rsd-new-tail
    expect_fail rbadm alpha attach r0
    assert_match "$OUTPUT" "too small for the device" "the refusal names the reason"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" $((new - (2 << 20))) 2M rsd-new-tail
}

# drbd.md §8 item 9: an Inconsistent disk cannot be promoted; --force can, and its data then syncs.
sc_may_promote() {
    rp_pair
    expect_ok sc_adm alpha create-md r0
    expect_ok sc_adm beta create-md r0
    expect_ok sc_adm alpha up r0
    expect_ok sc_adm beta up r0
    expect_ok sc_adm alpha wait-connect r0 --timeout 20
    assert_eq "$(sc_adm alpha dstate r0)" Inconsistent/Inconsistent "fresh metadata on both nodes"
    expect_fail sc_adm alpha primary r0
    assert_match "$OUTPUT" "no UpToDate disk" "the refusal names the reason"
    assert_eq "$(sc_adm alpha role r0)" Secondary "alpha after the refused promotion"
    if nbdinfo --can connect "$URI_A" 2> /dev/null; then fail "alpha serves NBD after a refused promotion"; fi
    # Disconnected, an Inconsistent disk is refused just the same.
    expect_ok sc_adm beta disconnect r0
    expect_fail sc_adm beta primary r0
    assert_match "$OUTPUT" "no UpToDate disk" "beta's refusal names the reason"
    expect_ok sc_adm beta connect r0
    expect_ok sc_adm alpha wait-connect r0 --timeout 20
    expect_ok sc_adm alpha primary r0 --force
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after primary --force"
    write_on "$URI_A" 0 3M mp-1
    expect_ok sc_adm alpha wait-sync r0 --timeout 60
    expect_ok sc_adm beta wait-sync r0 --timeout 20
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 0 3M mp-1
}

SCENARIOS_CASES=(
    wrong-shared-secret:sc_wrong_shared_secret:60
    mismatched-protocol:sc_mismatched_protocol:60
    mismatched-after-sb:sc_mismatched_after_sb:60
    unrelated-data:sc_unrelated_data:60
    two-primaries-reject:sc_two_primaries_reject:60
    two-primaries-connect:sc_two_primaries_connect:60
    discard-zero-changes:sc_discard_zero_changes:60
    discard-zero-changes-two-writers:sc_discard_zero_changes_two_writers:60
    may-promote:sc_may_promote:60
    differing-sizes:sc_differing_sizes:90
    resize:sc_resize:120
    resize-diskless:sc_resize_diskless:120
)

it_suite scenarios/two-node setup_scenarios_suite 600 "${SCENARIOS_CASES[@]}"

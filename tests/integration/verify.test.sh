# shellcheck shell=bash
# verify.test.sh — online verify (`verify-alg`, `rbadm verify`) and checksum-based resync
# (`csums-alg`) with two real agents on loopback, using the two-node helpers of
# replication.test.sh (rp_synced, write_on, verify_on, switch_to, json_field). Blocks are
# corrupted in beta's backing file with dd behind its agent's back; verify must find exactly
# those, and the data is checked through NBD after the repairing resync.

# The runner sources every suite file; a suite process sources only its own, so bring in the helpers then.
if ! declare -F rp_synced > /dev/null; then
    # shellcheck source=tests/integration/replication.test.sh
    source "$IT_DIR/replication.test.sh"
fi

setup_verify_suite() { require_built; }

# replication.test.sh's fast-reconnect, fast-resync options with the two digests.
VF_OPTIONS='net { protocol C; connect-int 1; ping-int 1; verify-alg sha256; csums-alg sha256; } disk { c-plan-ahead 0; resync-rate 400M; }'

# vf_corrupt FILE BLOCK... — overwrite 4 KiB blocks of a backing file (data starts at offset 0: internal metadata is at the end).
vf_corrupt() {
    local file=$1 block
    shift
    for block in "$@"; do
        dd if=/dev/urandom of="$file" bs=4096 seek="$block" count=1 conv=notrunc status=none || fail "dd into $file failed"
    done
}

# vf_oos NODE — out-of-sync KiB towards the peer, from `status --json`.
vf_oos() { json_field "$1" '.[0].connections[0]["peer_devices"][0]["out-of-sync"]'; }

# vf_wait_verified NODE COUNT — until NODE's log has COUNT "Online verify done" lines and the replication is Established again.
vf_wait_verified() {
    wait_for "[[ \$(grep -c 'Online verify done' '$TEST_DIR/agent-$1.log') -ge $2 ]]" 60 \
        || fail "$1: online verify #$2 did not finish: $(grep -E 'erify|repl\(' "$TEST_DIR/agent-$1.log" | tail -n 3 | tr '\n' ' ')"
    expect_ok rbadm "$1" wait-sync r0 --timeout 20
}

# --- cases ---------------------------------------------------------------------------------------

vf_verify_finds_corrupted_blocks_and_invalidate_keeping_the_bitmap_repairs_them() {
    local RB_RESOURCE_EXTRA=$VF_OPTIONS
    rp_synced
    write_on "$URI_A" 0 8M vf-data
    # Two adjacent blocks inside the written data, two in never-written (zero) space.
    vf_corrupt "$TEST_DIR/beta.img" 256 257 3000 9000
    expect_ok rbadm alpha verify r0
    vf_wait_verified alpha 1
    vf_wait_verified beta 1
    grep -q "Online verify found 4 4k block out of sync!" "$TEST_DIR/agent-alpha.log" \
        || fail "alpha's verify summary: $(grep -E 'Online verify|Out of sync' "$TEST_DIR/agent-alpha.log" | tr '\n' ' ')"
    grep -q "Online verify found 4 4k block out of sync!" "$TEST_DIR/agent-beta.log" || fail "beta (VerifyT) did not report the 4 blocks"
    grep -q "Out of sync: start=2048, size=16 (sectors)" "$TEST_DIR/agent-alpha.log" || fail "alpha did not log the run of blocks 256-257"
    expect_ok rbadm alpha status r0 --verbose
    assert_match "$OUTPUT" "out-of-sync:16( |$)" "alpha's verbose status after verify"
    assert_eq "$(vf_oos beta)" 16 "beta's out-of-sync KiB after verify"
    # Verify repairs nothing (as DRBD): a resync does. `invalidate --reset-bitmap=no` on the damaged
    # copy resyncs just the blocks verify marked, not the whole device (drbd9-tests' verify scenario).
    local full_syncs
    full_syncs=$(grep -c "full resync" "$TEST_DIR/agent-alpha.log") # the initial sync's
    expect_ok rbadm beta invalidate --reset-bitmap=no r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    assert_eq "$(vf_oos alpha)" 0 "alpha's out-of-sync KiB after the resync"
    grep -q "bitmap resync, 16 KiB to sync" "$TEST_DIR/agent-alpha.log" \
        || fail "alpha's resync after invalidate --reset-bitmap=no: $(grep -E 'resync, ' "$TEST_DIR/agent-alpha.log" | tr '\n' ' ')"
    assert_eq "$(grep -c "full resync" "$TEST_DIR/agent-alpha.log")" "$full_syncs" "full resyncs on alpha (invalidate --reset-bitmap=no must not start one)"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 0 8M vf-data
    verify_on "$URI_B" 11M 1M zero   # block 3000
    verify_on "$URI_B" 35M 1M zero   # block 9000
    # A second verify, from the new Primary, finds nothing.
    expect_ok rbadm beta verify r0
    vf_wait_verified beta 2
    assert_eq "$(grep -c 'Online verify found' "$TEST_DIR/agent-beta.log")" 1 "'Online verify found' lines on beta after the second verify"
    assert_eq "$(vf_oos beta)" 0 "beta's out-of-sync KiB after the second verify"
}

vf_verify_shows_progress_and_starts_where_asked() {
    # A slow rate, so the verify is still running when status looks.
    local RB_RESOURCE_EXTRA=${VF_OPTIONS/resync-rate 400M/resync-rate 4M}
    rp_synced
    vf_corrupt "$TEST_DIR/beta.img" 100   # before --start: not looked at
    vf_corrupt "$TEST_DIR/beta.img" 12288 # 48M, after it
    expect_ok rbadm alpha verify r0 --start 32M
    grep -q "Starting Online Verify from sector 65536" "$TEST_DIR/agent-alpha.log" || fail "alpha did not start at sector 65536 (32M)"
    wait_for "rbadm alpha status r0 | grep -Eq 'replication:VerifyS peer-disk:UpToDate done:[0-9]+\.[0-9]{2}'" 10 \
        || fail "alpha's status during verify: $(rbadm alpha status r0 | tr '\n' ' ')"
    wait_for "rbadm beta status r0 | grep -q 'replication:VerifyT'" 10 || fail "beta is not VerifyT: $(rbadm beta status r0 | tr '\n' ' ')"
    assert_eq "$(json_field alpha '.[0].connections[0]["peer_devices"][0]["has-online-verify-details"]')" true "has-online-verify-details while verifying"
    expect_fail rbadm alpha verify r0
    assert_match "$OUTPUT" "already running|Resync already running" "a second verify while one runs"
    vf_wait_verified alpha 1
    grep -q "Online verify found 1 4k block out of sync!" "$TEST_DIR/agent-alpha.log" \
        || fail "verify from 32M: $(grep -E 'Online verify|Out of sync' "$TEST_DIR/agent-alpha.log" | tr '\n' ' ')"
    assert_eq "$(vf_oos alpha)" 4 "alpha's out-of-sync KiB"
}

vf_verify_needs_a_verify_alg() {
    rp_synced # replication.test.sh's options: no verify-alg
    expect_fail rbadm alpha verify r0
    assert_match "$OUTPUT" "Need a verify algorithm to start online verify" "verify without verify-alg"
    expect_fail rbadm alpha verify r0 --start 12x
    assert_match "$OUTPUT" "--start '12x'" "a bad --start"
}

vf_csums_resync_transfers_only_changed_blocks() {
    local RB_RESOURCE_EXTRA=$VF_OPTIONS
    rp_synced
    write_on "$URI_A" 0 4M same
    expect_ok rbadm beta disconnect r0
    wait_for "[[ \$(rbadm alpha cstate r0) != Connected ]]" 20 || fail "alpha did not notice the disconnect"
    # While apart: the same bytes again over 4 MiB (1024 blocks the peer already holds), and 64 KiB of new data.
    write_on "$URI_A" 0 4M same
    write_on "$URI_A" 8M 64K new
    assert_eq "$(vf_oos alpha)" 4160 "alpha's out-of-sync KiB while apart"
    expect_ok rbadm beta connect r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    grep -q "98 % had equal checksums, eliminated: 4096K; transferred 64K total 4160K" "$TEST_DIR/agent-beta.log" \
        || fail "beta's checksum summary: $(grep -E 'equal checksums' "$TEST_DIR/agent-beta.log" | tr '\n' ' ')"
    grep -q "eliminated: 4096K; transferred 64K" "$TEST_DIR/agent-alpha.log" || fail "alpha's checksum summary"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 0 4M same
    verify_on "$URI_B" 8M 64K new
    verify_on "$URI_B" 9M 1M zero
}

VERIFY_CASES=(
    finds-corrupted-blocks:vf_verify_finds_corrupted_blocks_and_invalidate_keeping_the_bitmap_repairs_them
    progress-and-start:vf_verify_shows_progress_and_starts_where_asked
    needs-verify-alg:vf_verify_needs_a_verify_alg
    csums-resync:vf_csums_resync_transfers_only_changed_blocks
)

it_suite verify/two-node setup_verify_suite 900 "${VERIFY_CASES[@]}"

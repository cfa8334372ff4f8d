# shellcheck shell=bash
# dualprimary.test.sh — two agents with allow-two-primaries (protocol C): both `primary`, both serve
# NBD, each replicates its writes to the other. Checked through NBD (what one wrote, the other reads
# from its own export) and, after both went Secondary, by comparing the backing files over the device
# size. The second case writes the same blocks from both exports at once (fio), which only the
# write-conflict handling (src/engine/Replication/Replica.WriteConflicts.cs) keeps byte-identical.
# Reuses rp_synced, write_on, verify_on, json_field from replication.test.sh.

# shellcheck source=tests/integration/replication.test.sh
source "$IT_DIR/replication.test.sh"

DP_OPTIONS="$RB_TWO_NODE_OPTIONS net { allow-two-primaries yes; }"

# dp_both_primary — rp_synced with allow-two-primaries, then beta is promoted too.
dp_both_primary() {
    RB_RESOURCE_EXTRA=$DP_OPTIONS rp_synced
    expect_ok rbadm beta primary r0
    assert_eq "$(rbadm alpha role r0)/$(rbadm beta role r0)" Primary/Primary "roles with allow-two-primaries"
    assert_eq "$(rbadm alpha cstate r0)/$(rbadm beta cstate r0)" Connected/Connected "connections with two Primaries"
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after its promotion"
}

# dp_both_secondary_and_compare WHAT — both demoted and down; the backing files agree over the device.
dp_both_secondary_and_compare() {
    local size_kib
    size_kib=$(json_field alpha '.[0].devices[0].size')
    assert_eq "$(json_field alpha '.[0].connections[0]["peer_devices"][0]["out-of-sync"]')" 0 "alpha's out-of-sync after $1"
    assert_eq "$(json_field beta '.[0].connections[0]["peer_devices"][0]["out-of-sync"]')" 0 "beta's out-of-sync after $1"
    # An NBD client that just exited may still be let go by the server for a moment ("held open").
    wait_for "rbadm alpha secondary r0" 10 || expect_ok rbadm alpha secondary r0
    wait_for "rbadm beta secondary r0" 10 || expect_ok rbadm beta secondary r0
    expect_ok rbadm alpha down r0
    expect_ok rbadm beta down r0
    cmp -n $((size_kib * 1024)) "$TEST_DIR/alpha.img" "$TEST_DIR/beta.img" > "$TEST_DIR/cmp.out" 2>&1 \
        || fail "the replicas differ after $1: $(head -c 200 "$TEST_DIR/cmp.out")"
}

dp_two_primaries_io() {
    dp_both_primary
    write_on "$URI_A" 0 4M dp-alpha-1
    write_on "$URI_B" 8M 4M dp-beta-1
    # Both at once, to different regions.
    "$PYTHON" "$NBDTOOL" write "$URI_A" 16M 4M dp-alpha-2 > "$TEST_DIR/w-a.log" 2>&1 &
    local pid_a=$!
    track_pid "$pid_a"
    "$PYTHON" "$NBDTOOL" write "$URI_B" 24M 4M dp-beta-2 > "$TEST_DIR/w-b.log" 2>&1 &
    local pid_b=$!
    track_pid "$pid_b"
    wait "$pid_a" || fail "alpha's concurrent write failed: $(tail -n 3 "$TEST_DIR/w-a.log" | tr '\n' ' ')"
    wait "$pid_b" || fail "beta's concurrent write failed: $(tail -n 3 "$TEST_DIR/w-b.log" | tr '\n' ' ')"
    # Each reads the other's data through its own export (reads stay local on a Primary).
    verify_on "$URI_B" 0 4M dp-alpha-1
    verify_on "$URI_B" 16M 4M dp-alpha-2
    verify_on "$URI_A" 8M 4M dp-beta-1
    verify_on "$URI_A" 24M 4M dp-beta-2
    dp_both_secondary_and_compare "writes from two Primaries"
}

dp_two_primaries_overlapping_writes() {
    dp_both_primary
    local node uri pids=()
    for node in alpha beta; do
        uri=$URI_A
        [[ $node == beta ]] && uri=$URI_B
        # The same 2 MiB from both sides at once: 4 KiB random writes, many in flight.
        fio --name="overlap-$node" --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --iodepth=16 --size=2m \
            --time_based=1 --runtime=5 --randseed=$((RANDOM + 1)) --output="$TEST_DIR/fio-$node.out" > "$TEST_DIR/fio-$node.log" 2>&1 &
        pids+=("$!")
        track_pid "$!"
    done
    wait "${pids[0]}" || fail "fio on alpha failed: $(tail -n 3 "$TEST_DIR/fio-alpha.log" | tr '\n' ' ')"
    wait "${pids[1]}" || fail "fio on beta failed: $(tail -n 3 "$TEST_DIR/fio-beta.log" | tr '\n' ' ')"
    local conflicts
    conflicts=$(grep -cE "answered (Superseded|RetryWrite)" "$TEST_DIR/agent-beta.log" || true)
    echo "overlapping writes from two Primaries: $conflicts conflicts resolved by beta (resolve-conflicts)"
    [[ $conflicts -gt 0 ]] || fail "no write conflict arose: the two writers never overlapped"
    dp_both_secondary_and_compare "overlapping writes from two Primaries"
}

it_suite replication/dual-primary setup_replication_suite 300 \
    two-primaries-io:dp_two_primaries_io \
    two-primaries-overlapping-writes:dp_two_primaries_overlapping_writes

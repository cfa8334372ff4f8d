# shellcheck shell=bash
# ackwriter.test.sh — no acknowledged write is lost when the Primary goes away. A writer
# (ackwriter.py) keeps 4 KiB writes in flight at random offsets on alpha and logs each one only
# after alpha acknowledged it; then alpha dies (protocol C, SIGKILL) or is disconnected cleanly
# (protocol A), beta is promoted without --force, and every logged write must be on beta.
# The checker is shown to find writes that are not there (checker-finds-lost-writes).

# shellcheck source=tests/integration/replication.test.sh
source "$IT_DIR/replication.test.sh"

ACKWRITER="$IT_DIR/ackwriter.py"

setup_ackwriter_suite() { require_built; }

# aw_start URI LOG [OPTIONS...] — the writer in the background (inside network namespace
# $AW_NETNS if set); sets AW_PID. Its summary goes to $TEST_DIR/ackwriter.log.
aw_start() {
    local uri=$1 log=$2 netns=${AW_NETNS:-}
    shift 2
    : > "$log"
    if [[ -n $netns ]]; then
        ip netns exec "$netns" "$PYTHON" "$ACKWRITER" write "$uri" "$log" "$@" >> "$TEST_DIR/ackwriter.log" 2>&1 &
    else
        "$PYTHON" "$ACKWRITER" write "$uri" "$log" "$@" >> "$TEST_DIR/ackwriter.log" 2>&1 &
    fi
    AW_PID=$!
    track_pid "$AW_PID"
}

aw_count() { wc -l < "$1"; } # aw_count LOG — acknowledged writes logged so far

# aw_wait_acked LOG N TIMEOUT_S — until the writer logged N acknowledged writes.
aw_wait_acked() {
    wait_for "(( \$(aw_count '$1') >= $2 ))" "$3" \
        || fail "the writer logged only $(aw_count "$1") acknowledged writes in $3 s, want $2: $(tail -n 2 "$TEST_DIR/ackwriter.log" | tr '\n' ' ')"
}

# aw_wait_exit TIMEOUT_S — until the writer exited; sets AW_RC.
aw_wait_exit() {
    wait_for "! pid_alive $AW_PID" "$1" || fail "the writer did not exit within $1 s"
    AW_RC=0
    wait "$AW_PID" || AW_RC=$?
}

# aw_stop — SIGTERM: the writer stops submitting, collects what is in flight, exits 0.
aw_stop() {
    kill -TERM "$AW_PID"
    aw_wait_exit 40
    assert_eq "$AW_RC" 0 "the writer's exit status after SIGTERM ($(tail -n 1 "$TEST_DIR/ackwriter.log"))"
}

# aw_check URI LOG [NETNS] — every acknowledged write in LOG is on URI (0 missing).
aw_check() {
    local uri=$1 log=$2 netns=${3:-}
    local -a run=()
    [[ -n $netns ]] && run=(ip netns exec "$netns")
    local rc=0
    OUTPUT=$("${run[@]}" "$PYTHON" "$ACKWRITER" check "$uri" "$log" 2>&1) || rc=$?
    echo "$OUTPUT" >> "$TEST_DIR/ackwriter.log"
    assert_match "$OUTPUT" "^checked [1-9][0-9]* acknowledged writes, 0 missing" "acknowledged writes on the new Primary (exit $rc)"
    [[ $rc -eq 0 ]] || fail "ackwriter check exited $rc: $(printf '%s' "$OUTPUT" | head -n 3 | tr '\n' ' ')"
}

# --- cases ---------------------------------------------------------------------------------------

aw_protocol_c_sigkill() {
    rp_synced
    aw_start "$URI_A" "$TEST_DIR/acked.log"
    aw_wait_acked "$TEST_DIR/acked.log" 1000 30
    kill -KILL "${AGENT_PID[alpha]}"
    aw_wait_exit 20
    # 3: the writer lost its connection (the server died) — anything else means it stopped for another reason.
    assert_eq "$AW_RC" 3 "the writer's exit status after alpha was killed ($(tail -n 1 "$TEST_DIR/ackwriter.log"))"
    wait_for "[[ \$(rbadm beta cstate r0) != Connected ]]" 20 || fail "beta did not notice alpha's death"
    expect_ok rbadm beta primary r0
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after failover"
    aw_check "$URI_B" "$TEST_DIR/acked.log"
}

aw_protocol_a_clean_disconnect() {
    RB_RESOURCE_EXTRA=${RB_TWO_NODE_OPTIONS/protocol C/protocol A}
    rp_synced
    aw_start "$URI_A" "$TEST_DIR/acked.log"
    aw_wait_acked "$TEST_DIR/acked.log" 1000 30
    aw_stop
    # A clean disconnect sends what was handed to the send path before it closes the connection.
    expect_ok rbadm alpha disconnect r0
    wait_for "[[ \$(rbadm beta cstate r0) != Connected ]]" 20 || fail "beta did not notice the disconnect"
    expect_ok rbadm alpha secondary r0
    expect_ok rbadm beta primary r0
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    aw_check "$URI_B" "$TEST_DIR/acked.log"
}

# aw_check_expect URI LOG WANT_RC ERE [OPTIONS...] — run the check; its exit status and summary must match.
aw_check_expect() {
    local uri=$1 log=$2 want=$3 ere=$4 rc=0
    shift 4
    OUTPUT=$("$PYTHON" "$ACKWRITER" check "$uri" "$log" "$@" 2>&1) || rc=$?
    assert_match "$OUTPUT" "$ere" "ackwriter check $*"
    assert_eq "$rc" "$want" "ackwriter check $* exit status"
}

# The checker itself: a write logged as acknowledged but not on the disk is missing; with
# --durable-only it is forgiven only when logged after the last completed FLUSH, and the block
# then must keep what it holds; a durable write that was overwritten is missing in both modes.
aw_checker_finds_lost_writes() {
    make_disk "$TEST_DIR/alpha.img" 64M
    rb_primary_export alpha "$TEST_DIR/alpha.img"
    local log=$TEST_DIR/acked.log durable_block lost_block
    aw_start "$URI" "$log" --seconds 1 --flush-seconds 0.2 --inflight 4
    aw_wait_exit 30
    assert_eq "$AW_RC" 0 "the writer's exit status ($(tail -n 1 "$TEST_DIR/ackwriter.log"))"
    grep -q '^durable [1-9]' "$log" || fail "the writer logged no completed FLUSH: $(tail -n 3 "$log" | tr '\n' ' ')"
    aw_check_expect "$URI" "$log" 0 "^checked [1-9][0-9]* acknowledged writes, 0 missing"
    # Two blocks whose every write the last FLUSH covered.
    read -r durable_block lost_block < <("$PYTHON" - "$log" <<'PY'
import sys
durable, last = 0, {}
for n, line in enumerate(l for l in open(sys.argv[1]) if l[0].isdigit()):
    last[int(line.split()[0])] = n
for line in open(sys.argv[1]):
    if line.startswith("durable "):
        durable = max(durable, int(line.split()[1]))
print(*[b for b, n in sorted(last.items()) if n < durable][:2])
PY
    )
    [[ -n $lost_block ]] || fail "no two blocks written before the last FLUSH"
    # A write of lost_block logged as acknowledged after the FLUSH, never made.
    echo "$lost_block $((1 << 40)) 12345" >> "$log"
    aw_check_expect "$URI" "$log" 1 ", 1 missing"
    aw_check_expect "$URI" "$log" 0 ", 0 missing .*, 1 not durable and not kept\)" --durable-only
    grep -q "^holds $lost_block " "$log" || fail "--durable-only did not log what block $lost_block holds"
    aw_check_expect "$URI" "$log" 0 ", 0 missing .*, 0 not durable and not kept\)"
    # A durable write overwritten behind the writer's back: missing in both modes.
    expect_ok "$PYTHON" "$NBDTOOL" write "$URI" $((durable_block * 4096)) 4096 not-the-writer
    aw_check_expect "$URI" "$log" 1 ", 1 missing" --durable-only
    aw_check_expect "$URI" "$log" 1 ", 1 missing"
}

ACKWRITER_CASES=(
    protocol-c-sigkill-primary:aw_protocol_c_sigkill:90
    protocol-a-clean-disconnect:aw_protocol_a_clean_disconnect:90
    checker-finds-lost-writes:aw_checker_finds_lost_writes:60
)

it_suite ackwriter/two-node setup_ackwriter_suite 300 "${ACKWRITER_CASES[@]}"

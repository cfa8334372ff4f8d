# shellcheck shell=bash
# chaos.test.sh — the short version of scripts/chaos in CI: 3 cycles of faults against real
# agents in network namespaces (SIGKILL, cut links, failover), every acknowledged write checked
# on the Primary and both disks compared after each cycle. The seed is new on every run (set
# CHAOS_SEED to repeat one) and is in the failure reason; the logs stay in the case directory
# (IT_KEEP=1 keeps it).

setup_chaos_suite() {
    require_built
    command -v ip > /dev/null || fail "ip (iproute2) is needed for network namespaces"
}

chaos_three_cycles() {
    local seed=${CHAOS_SEED:-$(( $(date +%s%N) % 1000000000 ))} rc=0 out
    # --ledger: what the script starts is in this case's ledger too, undone even if it is killed.
    out=$("$RB_ROOT/scripts/chaos" --cycles 3 --seed "$seed" --work "$TEST_DIR/chaos" --ledger "$LEDGER" 2>&1) || rc=$?
    mkdir -p "$TEST_DIR/chaos"
    printf '%s\n' "$out" > "$TEST_DIR/chaos/chaos-output.log"
    [[ $rc -eq 0 ]] || fail "scripts/chaos --cycles 3 --seed $seed exited $rc: $(printf '%s' "$out" | grep -E '^chaos: FAILED' | head -n 1)"
    assert_match "$out" "^cycles: 3 of 3 recovered and checked" "chaos cycles"
    assert_match "$out" "^acknowledged writes checked: [1-9][0-9]* " "acknowledged writes checked"
    assert_match "$out" "^faults injected: [1-9][0-9]* " "faults injected"
    assert_match "$out" "^writes lost: 0$" "writes lost"
}

it_suite chaos/real-processes setup_chaos_suite 180 three-cycles:chaos_three_cycles:175

#!/usr/bin/env bash
# lib.sh — the integration-test framework and helpers.
#
# Model: a *suite* has a setup function (a fixture such as a running server) and a list of
# *cases* ("name:function"). Test files (*.test.sh) only define functions and register suites
# with `it_suite`. `run` executes each selected suite in its own bash process under a timeout;
# the suite runs each case in a further bash process under a per-case timeout, so one hung
# client cannot stall the run.
#
# Cleanup: every resource a test creates (PID, mount, FUSE mount, loop device, directory) is
# appended to a *ledger* file as soon as it exists. The ledger is replayed in reverse order by
# the process's EXIT trap and again by its parent after the process ended (even if it was
# killed), so cleanup happens on failure, timeout or Ctrl-C. Only PIDs we started are killed,
# and only if their start time still matches (no PID-reuse accidents).
#
# Case results: `PASS suite/case` or `FAIL suite/case: reason` (plus log tails), appended to
# $IT_RESULTS, which `run` totals into `N passed, N failed`.

# shellcheck disable=SC2034  # globals here are read by the test files that source this one

# libnbd's python module lives in the system python; nbdsh and nbdtool.py need it first.
export PATH="/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin:$PATH"

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RB_ROOT=$(cd "$IT_DIR/../.." && pwd)
RB_OUT=${RB_OUT:-$RB_ROOT/out}
PYTHON=/usr/bin/python3
NBDTOOL="$IT_DIR/nbdtool.py"
NBDPROBE="$IT_DIR/nbdprobe.py"
export IT_DIR RB_ROOT RB_OUT PYTHON NBDTOOL NBDPROBE

IT_CASE_TIMEOUT=${IT_CASE_TIMEOUT:-120}
# shellcheck disable=SC2034  # read by run
IT_SUITE_NAMES=()
declare -gA IT_SUITE_FILE=() IT_SUITE_SETUP=() IT_SUITE_TIMEOUT=() IT_SUITE_CASES=() IT_SUITE_REF=()
declare -gA AGENT_PID=()

# ---------------------------------------------------------------------------------------------
# Registration

# it_suite [--ref] NAME SETUP_FUNC TIMEOUT_S CASE... ; CASE is "name:function[:timeout_s]".
# --ref marks a reference-server suite (nbdkit, qemu-nbd): run only when a filter selects it.
# A suite registers once even when its file is sourced again (a test file reusing its helpers).
it_suite() {
    local ref=0
    if [[ $1 == --ref ]]; then ref=1; shift; fi
    local name=$1 setup=$2 timeout=$3
    shift 3
    [[ -n ${IT_SUITE_SETUP[$name]:-} ]] && return 0
    IT_SUITE_NAMES+=("$name")
    IT_SUITE_FILE[$name]=${BASH_SOURCE[1]}
    IT_SUITE_SETUP[$name]=$setup
    IT_SUITE_TIMEOUT[$name]=$timeout
    IT_SUITE_CASES[$name]="$*"
    IT_SUITE_REF[$name]=$ref
}

# it_selected_cases SUITE FILTER -> prints the selected "name:func[:t]" entries, one per line.
it_selected_cases() {
    local suite=$1 filter=$2 entry
    for entry in ${IT_SUITE_CASES[$suite]}; do
        if [[ -z $filter ]]; then
            [[ ${IT_SUITE_REF[$suite]} == 1 ]] && continue
            printf '%s\n' "$entry"
        elif printf '%s\n' "$suite/${entry%%:*}" | grep -Eq -- "$filter"; then
            printf '%s\n' "$entry"
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# Reasons, assertions, errors

# fail MESSAGE — end the current case (or suite setup) with this reason.
fail() {
    [[ -n ${IT_REASON_FILE:-} && ! -s ${IT_REASON_FILE:-/nonexistent} ]] && printf '%s\n' "$*" > "$IT_REASON_FILE"
    echo "FAIL: $*" >&2
    exit 1
}

it_err_trap() {
    local rc=$1 cmd=$2 line=$3 src=$4
    if [[ -n ${IT_REASON_FILE:-} && ! -s $IT_REASON_FILE ]]; then
        printf "%s:%s: '%s' exited %s\n" "$(basename "$src")" "$line" "$cmd" "$rc" > "$IT_REASON_FILE"
    fi
}

assert_eq() { # assert_eq GOT WANT WHAT
    [[ $1 == "$2" ]] || fail "$3: got '$1', want '$2'"
}

assert_match() { # assert_match TEXT ERE WHAT
    printf '%s' "$1" | grep -Eq -- "$2" || fail "$3: '$(printf '%s' "$1" | head -c 300 | tr '\n' ' ')' does not match /$2/"
}

# expect_fail CMD... — the command must exit non-zero; its stdout+stderr are in $OUTPUT.
expect_fail() {
    local rc=0
    OUTPUT=$("$@" 2>&1) || rc=$?
    [[ $rc -ne 0 ]] || fail "expected failure but succeeded: $* (output: $(printf '%s' "$OUTPUT" | head -c 300))"
}

# expect_ok CMD... — the command must exit 0; its stdout+stderr are in $OUTPUT.
expect_ok() {
    local rc=0
    OUTPUT=$("$@" 2>&1) || rc=$?
    [[ $rc -eq 0 ]] || fail "$* exited $rc: $(printf '%s' "$OUTPUT" | tail -n 3 | tr '\n' ' ')"
}

# wait_for "CMD" TIMEOUT_S — poll CMD (a shell string) every 0.1 s until it succeeds.
wait_for() {
    local cmd=$1 timeout=$2 deadline
    deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
    while (( $(date +%s%N) < deadline )); do
        if eval "$cmd" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# Ledger: record resources; replay in reverse to clean up.

ledger_add() { printf '%s\n' "$*" >> "$LEDGER"; }

pid_starttime() { # field 22 of /proc/PID/stat (after the parenthesised comm)
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    printf '%s\n' "${20}"
}

track_pid()   { ledger_add "pid $1 $(pid_starttime "$1" || echo 0)"; }
track_mount() { ledger_add "mount $1"; }
track_fuse()  { ledger_add "fuse $1"; }
track_loop()  { ledger_add "loop $1"; }
track_dir()   { ledger_add "dir $1"; }
track_netns() { ledger_add "netns $1"; }

pid_alive() { # PID is running (not a zombie)
    local state
    state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# kill_pid PID [STARTTIME] [GRACE_S] — TERM, wait up to GRACE_S, then KILL; reaps our children.
# Never fails (it runs in EXIT traps under set -e).
kill_pid() {
    local pid=$1 start=${2:-} grace=${3:-10} i now
    if [[ -n $start && $start != 0 ]]; then
        now=$(pid_starttime "$pid" 2>/dev/null) || now=
        if [[ $now != "$start" ]]; then
            wait "$pid" 2>/dev/null || true
            return 0
        fi
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        echo "cleanup: PID $pid ignored SIGTERM for ${grace}s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    return 0
}

is_mounted() { grep -qs " $1 " /proc/mounts; }

# cleanup_ledger FILE — undo every recorded resource, newest first. Never fails.
cleanup_ledger() {
    local ledger=$1 kind a b
    [[ -s $ledger ]] || return 0
    while read -r kind a b; do
        [[ -n $a ]] || continue
        case $kind in
            pid)   [[ $a =~ ^[0-9]+$ && $a -gt 1 ]] && kill_pid "$a" "$b" ;;
            mount) if is_mounted "$a"; then umount "$a" 2>/dev/null || umount -l "$a" 2>/dev/null || true; fi ;;
            fuse)  if is_mounted "$a"; then fusermount3 -u "$a" 2>/dev/null || fusermount3 -uz "$a" 2>/dev/null || true; fi ;;
            # The kernel keeps a loop device's read-only flag across detach: reset it (a test may set it).
            loop)  if losetup "$a" > /dev/null 2>&1; then blockdev --setrw "$a" 2>/dev/null || true; losetup -d "$a" 2>/dev/null || true; fi ;;
            dir)   rm -rf "$a" || true ;;
            # Deleting a namespace also removes the veth ends inside it.
            netns) ip netns del "$a" 2>/dev/null || true ;;
        esac
    done < <(tac "$ledger")
    : > "$ledger"
    return 0
}

# ---------------------------------------------------------------------------------------------
# Helpers for tests

# free_port — an unused TCP port on 127.0.0.1 (asks the kernel for an ephemeral one).
free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# make_disk PATH SIZE — a zero-filled, fully allocated file (SIZE as accepted by fallocate).
make_disk() {
    rm -f "$1"
    fallocate -l "$2" "$1" 2>/dev/null || truncate -s "$2" "$1"
}

# write_config RESOURCE "NODE NODE_ID PORT NBD_PORT DISK [META_DISK]"... — writes $RB_CONFIG;
# $RB_RESOURCE_EXTRA (if set) goes into the resource section first (net/disk options).
# PORT may be a whole ADDRESS:PORT (a node in a network namespace); a bare port is on 127.0.0.1.
write_config() {
    local res=$1 spec node id port nbd disk meta
    shift
    {
        echo "# written by tests/integration/lib.sh"
        echo "resource $res {"
        [[ -n ${RB_RESOURCE_EXTRA:-} ]] && printf '  %s\n' "$RB_RESOURCE_EXTRA"
        for spec in "$@"; do
            read -r node id port nbd disk meta <<< "$spec"
            echo "  on $node {"
            echo "    node-id $id;"
            [[ $port == *:* ]] || port=127.0.0.1:$port
            echo "    address $port;"
            echo "    nbd-address 127.0.0.1:$nbd;"
            echo "    volume 0 { disk $disk; meta-disk ${meta:-internal}; }"
            echo "  }"
        done
        echo "}"
    } > "$RB_CONFIG"
}

control_path() { printf '%s/%s.sock\n' "$TEST_DIR" "$1"; }

# rbadm NODE ARGS... — the CLI against NODE's agent and $RB_CONFIG.
rbadm() {
    local node=$1
    shift
    "$RB_OUT/rbadm" -c "$RB_CONFIG" --node "$node" --control "$(control_path "$node")" "$@"
}

require_built() {
    [[ -x $RB_OUT/rbagent && -x $RB_OUT/rbadm ]] || fail "out/rbagent or out/rbadm missing: run ./scripts/build"
}

# start_agent NODE [NETNS] — rbagent in the background, logging to $TEST_DIR/agent-NODE.log;
# with NETNS inside that network namespace (`ip netns exec` execs it: the PID is the agent's).
start_agent() {
    local node=$1 netns=${2:-} sock log
    require_built
    sock=$(control_path "$node")
    log="$TEST_DIR/agent-$node.log"
    rm -f "$sock"
    if [[ -n $netns ]]; then
        ip netns exec "$netns" "$RB_OUT/rbagent" --node "$node" --control "$sock" >> "$log" 2>&1 &
    else
        "$RB_OUT/rbagent" --node "$node" --control "$sock" >> "$log" 2>&1 &
    fi
    AGENT_PID[$node]=$!
    track_pid "${AGENT_PID[$node]}"
    local i
    for ((i = 0; i < 200; i++)); do
        [[ -S $sock ]] && return 0
        if ! pid_alive "${AGENT_PID[$node]}"; then
            local rc=0
            wait "${AGENT_PID[$node]}" || rc=$?
            fail "rbagent $node exited with status $rc during startup: $(tail -n 3 "$log" | tr '\n' ' ')"
        fi
        sleep 0.1
    done
    fail "rbagent $node did not create $sock within 20 s"
}

# stop_agent NODE [TIMEOUT_S] — SIGTERM; sets AGENT_RC; fails if it does not exit in time.
stop_agent() {
    local node=$1 timeout=${2:-10} pid i
    pid=${AGENT_PID[$node]}
    kill -TERM "$pid"
    for ((i = 0; i < timeout * 10; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    pid_alive "$pid" && fail "rbagent $node still running ${timeout}s after SIGTERM"
    AGENT_RC=0  # read by the tests
    # shellcheck disable=SC2034
    wait "$pid" || AGENT_RC=$?
    unset "AGENT_PID[$node]"
}

# ---------------------------------------------------------------------------------------------
# Network namespaces: two nodes joined by a veth pair (netns.test.sh, congestion.test.sh, scripts/chaos)

NN_ADDR_A=10.99.0.1
NN_ADDR_B=10.99.0.2

# netns_pair TAG — namespaces NS_A=rbit-TAG-a and NS_B=rbit-TAG-b, a veth pair VETH_A (in NS_A,
# $NN_ADDR_A/24) — VETH_B (in NS_B, $NN_ADDR_B/24), loopback up in both. Everything is created
# inside the namespaces (recorded in the ledger): deleting them leaves nothing behind. TAG must
# be unique among concurrent runs (a PID) and short (interface names have at most 15 bytes).
netns_pair() {
    local tag=$1 ns
    NS_A=rbit-$tag-a NS_B=rbit-$tag-b VETH_A=rbv$tag-a VETH_B=rbv$tag-b
    ip netns add "$NS_A" || fail "ip netns add $NS_A failed"
    track_netns "$NS_A"
    ip netns add "$NS_B" || fail "ip netns add $NS_B failed"
    track_netns "$NS_B"
    ip link add "$VETH_A" netns "$NS_A" type veth peer name "$VETH_B" netns "$NS_B" || fail "creating the veth pair failed"
    ip -n "$NS_A" addr add "$NN_ADDR_A/24" dev "$VETH_A" || fail "addressing $VETH_A failed"
    ip -n "$NS_B" addr add "$NN_ADDR_B/24" dev "$VETH_B" || fail "addressing $VETH_B failed"
    for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up || fail "lo up in $ns failed"; done
    netns_link a up
    netns_link b up
}

# netns_link a|b up|down — one end of the veth pair up or down (down: the link is cut).
netns_link() {
    if [[ $1 == a ]]; then
        ip -n "$NS_A" link set "$VETH_A" "$2" || fail "ip link set $VETH_A $2 failed"
    else
        ip -n "$NS_B" link set "$VETH_B" "$2" || fail "ip link set $VETH_B $2 failed"
    fi
}

# nbd_uri NBD_PORT [EXPORT]
nbd_uri() { printf 'nbd://127.0.0.1:%s/%s\n' "$1" "${2:-}"; }

wait_nbd() { # wait_nbd URI TIMEOUT_S — until nbdinfo can connect
    wait_for "nbdinfo --can connect '$1'" "${2:-20}"
}

# start_nbdfuse DIR URI — FUSE file DIR/disk backed by URI; sets NBDFUSE_FILE.
start_nbdfuse() {
    local dir=$1 uri=$2
    mkdir -p "$dir"
    nbdfuse -P "$TEST_DIR/nbdfuse.pid" "$dir/disk" "$uri" >> "$TEST_DIR/nbdfuse.log" 2>&1 &
    local pid=$!
    track_pid "$pid"
    track_fuse "$dir"
    wait_for "test -s '$TEST_DIR/nbdfuse.pid'" 20 || fail "nbdfuse did not become ready: $(tail -n 3 "$TEST_DIR/nbdfuse.log" | tr '\n' ' ')"
    NBDFUSE_FILE="$dir/disk"
}

# new_loop FILE — attach FILE to a free loop device; sets LOOP_DEV.
new_loop() {
    LOOP_DEV=$(losetup -f --show "$1") || fail "losetup -f --show $1 failed"
    track_loop "$LOOP_DEV"
    blockdev --setrw "$LOOP_DEV" || fail "blockdev --setrw $LOOP_DEV failed"
}

# do_mount DEV DIR
do_mount() {
    mkdir -p "$2"
    mount "$1" "$2" || fail "mount $1 $2 failed"
    track_mount "$2"
}

# do_umount DIR
do_umount() { umount "$1" || fail "umount $1 failed"; }

# rb_primary_export NODE DISK [META_DISK] — the usual single-node fixture: config, agent,
# create-md, up, primary --force; sets NBD_PORT, URI, EXPORT_NAME (r0) and EXPORT_SIZE.
rb_primary_export() {
    local node=$1 disk=$2 meta=${3:-}
    NBD_PORT=$(free_port)
    write_config r0 "$node 0 $(free_port) $NBD_PORT $disk $meta"
    start_agent "$node"
    expect_ok rbadm "$node" create-md r0
    expect_ok rbadm "$node" up r0
    expect_ok rbadm "$node" primary r0 --force
    EXPORT_NAME=r0
    URI=$(nbd_uri "$NBD_PORT" r0)
    wait_nbd "$URI" 20 || fail "rbagent export $URI not reachable after primary --force"
    EXPORT_SIZE=$(nbdinfo --size "$URI")
}

tree_sha() { # tree_sha DIR — one hash over every file's path and content
    (cd "$1" && find . -type f ! -path './lost+found/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

# fs_roundtrip URI — nbdfuse -> loop -> mkfs.ext4 -> mount -> files -> umount -> e2fsck -fn ->
# remount -> same hash. Tears down in reverse order itself (so teardown errors fail the test);
# the ledger covers the failure paths.
fs_roundtrip() {
    local uri=$1 mnt=$TEST_DIR/mnt before after
    start_nbdfuse "$TEST_DIR/fuse" "$uri"
    new_loop "$NBDFUSE_FILE"
    local fsloop=$LOOP_DEV
    expect_ok mkfs.ext4 -q -F "$fsloop"
    do_mount "$fsloop" "$mnt"
    head -c 32M /dev/urandom > "$mnt/big.bin"
    mkdir -p "$mnt/dir"
    local i
    for i in 1 2 3 4 5; do seq 1 $((i * 1000)) > "$mnt/dir/file$i.txt"; done
    before=$(tree_sha "$mnt")
    do_umount "$mnt"
    expect_ok e2fsck -fn "$fsloop"
    do_mount "$fsloop" "$mnt"
    after=$(tree_sha "$mnt")
    assert_eq "$after" "$before" "file hashes after umount/e2fsck/remount"
    do_umount "$mnt"
    losetup -d "$fsloop" || fail "losetup -d $fsloop failed"
    fusermount3 -u "$TEST_DIR/fuse" || fail "fusermount3 -u failed"
}

# ---------------------------------------------------------------------------------------------
# Execution (used by `run`)

it_show_logs() { # it_show_logs DIR... — the last lines of every log under the dirs
    local f
    for f in $(find "$@" -maxdepth 3 -name '*.log' -size +0 2>/dev/null | sort); do
        echo "    --- $(basename "$(dirname "$f")")/$(basename "$f") (last 12 lines)"
        tail -n 12 "$f" | sed 's/^/    | /'
    done
}

it_record() { # it_record PASS|FAIL NAME [REASON]
    if [[ $1 == PASS ]]; then
        echo "PASS $2"
        echo "PASS $2" >> "$IT_RESULTS"
    else
        echo "FAIL $2: $3"
        echo "FAIL $2: $3" >> "$IT_RESULTS"
    fi
}

# it_run_case SUITE "name:func[:timeout]" — one case in its own process.
it_run_case() {
    local suite=$1 entry=$2 name func timeout dir rc=0 reason
    IFS=: read -r name func timeout <<< "$entry"
    timeout=${timeout:-$IT_CASE_TIMEOUT}
    dir="$SUITE_DIR/$name"
    mkdir -p "$dir"
    : > "$dir/.ledger"
    # In the background so that a TERM to this suite process interrupts `wait` at once.
    IT_CASE_DIR=$dir timeout -k 5 "$timeout" bash "$IT_DIR/lib.sh" --exec-case "${IT_SUITE_FILE[$suite]}" "$func" \
        > "$dir/case.log" 2>&1 < /dev/null &
    IT_CASE_PID=$!
    wait "$IT_CASE_PID" || rc=$?
    IT_CASE_PID=
    cleanup_ledger "$dir/.ledger"
    if [[ $rc -eq 0 ]]; then
        it_record PASS "$suite/$name"
    else
        reason=$(head -n 1 "$dir/.reason" 2>/dev/null || true)
        [[ $rc -eq 124 || $rc -eq 137 ]] && reason="timed out after ${timeout}s${reason:+ ($reason)}"
        it_record FAIL "$suite/$name" "${reason:-exit status $rc}"
        it_show_logs "$dir" "$SUITE_DIR"/*.log
    fi
    [[ ${IT_KEEP:-0} == 1 ]] || rm -rf "$dir"
}

# A suite process was told to stop: stop the running case (its timeout forwards the signal
# to the case's process group), undo the case's resources, then exit (EXIT undoes the suite's).
it_suite_interrupted() {
    if [[ -n ${IT_CASE_PID:-} ]]; then
        kill -TERM "$IT_CASE_PID" 2>/dev/null || true
        wait "$IT_CASE_PID" 2>/dev/null || true
    fi
    local ledger
    for ledger in "$SUITE_DIR"/*/.ledger; do
        [[ -e $ledger ]] && cleanup_ledger "$ledger"
    done
    exit 143
}

# it_exec_suite FILE SUITE — body of a suite process (setup, then every selected case).
it_exec_suite() {
    local suite=$2 entry
    SUITE_DIR=$IT_SUITE_DIR
    TEST_DIR=$SUITE_DIR
    LEDGER=$SUITE_DIR/.ledger
    IT_REASON_FILE=$SUITE_DIR/.reason
    RB_CONFIG=$TEST_DIR/rb.conf
    export SUITE_DIR IT_SUITE_NAME=$suite
    set -Eeuo pipefail
    trap 'it_err_trap $? "$BASH_COMMAND" $LINENO "${BASH_SOURCE[0]}"' ERR
    trap 'cleanup_ledger "$LEDGER"' EXIT
    trap 'it_suite_interrupted' TERM INT HUP
    cd "$SUITE_DIR"
    "${IT_SUITE_SETUP[$suite]}"
    rm -f "$IT_REASON_FILE"
    # Cases see the fixture through exported variables (e.g. URI, EXPORT_SIZE).
    export RB_CONFIG
    while read -r entry; do
        [[ -n $entry ]] && it_run_case "$suite" "$entry"
    done <<< "$IT_SELECTED"
}

# it_exec_case FILE FUNC — body of a case process.
it_exec_case() {
    local func=$2
    TEST_DIR=${IT_CASE_DIR:?}
    LEDGER=$TEST_DIR/.ledger
    IT_REASON_FILE=$TEST_DIR/.reason
    RB_CONFIG=${RB_CONFIG:-$TEST_DIR/rb.conf}
    set -Eeuo pipefail
    trap 'it_err_trap $? "$BASH_COMMAND" $LINENO "${BASH_SOURCE[0]}"' ERR
    trap 'cleanup_ledger "$LEDGER"' EXIT
    trap 'exit 143' TERM INT HUP
    cd "$TEST_DIR"
    "$func"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    # Executed (not sourced): bash lib.sh --exec-suite FILE SUITE | --exec-case FILE FUNC
    mode=$1
    # shellcheck disable=SC1090
    source "$2"
    case $mode in
        --exec-suite) it_exec_suite "$2" "$3" ;;
        --exec-case)  it_exec_case "$2" "$3" ;;
        *) echo "lib.sh: unknown mode $mode" >&2; exit 2 ;;
    esac
fi

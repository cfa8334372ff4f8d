# shellcheck shell=bash
# nbd-probe.test.sh — raw-socket protocol probes (nbdprobe.py, reference/nbd.md §3 R1–R9 and
# more), one case per probe, against rbagent and the reference servers (nbdkit, qemu-nbd).
#
# rbagent is held to the spec's SHOULDs (--strict: ENOSPC for a write past the end).
# Reference deviations seen on Debian 12: qemu-nbd 7.2 answers EINVAL to a write past the end
# (tolerated without --strict); nbdkit 1.32.5 loses a write in some R8 trials (the DISC race
# fixed in nbdkit 1.33.3), so nbdkit/probe/R8 fails now and then.
#
# R12 (handshake timeout) takes ~10 s: it runs only when IT_HANDSHAKE_TIMEOUT=S is set, and
# expects a silent client to be dropped within S (+3) seconds.

probe_setup_common() {
    make_disk "$TEST_DIR/disk.img" 128M
    PROBE_PORT=$(free_port)
}

setup_probe_nbdkit() {
    probe_setup_common
    nbdkit -f -p "$PROBE_PORT" -i 127.0.0.1 file "$TEST_DIR/disk.img" > "$TEST_DIR/nbdkit.log" 2>&1 &
    track_pid $!
    wait_nbd "$(nbd_uri "$PROBE_PORT")" 20 || fail "nbdkit did not start"
    export PROBE_PORT PROBE_EXPORT="" PROBE_FLAGS=""
}

setup_probe_qemu() {
    probe_setup_common
    qemu-nbd -f raw -b 127.0.0.1 -p "$PROBE_PORT" -t -e 8 -x r0 "$TEST_DIR/disk.img" \
        > "$TEST_DIR/qemu-nbd.log" 2>&1 &
    track_pid $!
    wait_nbd "$(nbd_uri "$PROBE_PORT" r0)" 20 || fail "qemu-nbd did not start"
    export PROBE_PORT PROBE_EXPORT=r0 PROBE_FLAGS=""
}

setup_probe_rbagent() {
    make_disk "$TEST_DIR/disk.img" 128M
    rb_primary_export alpha "$TEST_DIR/disk.img"
    PROBE_PORT=$NBD_PORT
    export PROBE_PORT PROBE_EXPORT=r0 PROBE_FLAGS=--strict
}

# probe ID — run one nbdprobe.py probe; its PASS/FAIL line is the reason on failure.
probe() {
    local out rc=0 extra=()
    [[ $1 == R12 ]] && extra=(--idle-timeout "${IT_HANDSHAKE_TIMEOUT:-10}")
    # shellcheck disable=SC2086
    out=$("$PYTHON" "$NBDPROBE" 127.0.0.1 "$PROBE_PORT" "$PROBE_EXPORT" --only "$1" $PROBE_FLAGS "${extra[@]}" 2>&1) || rc=$?
    echo "$out"
    [[ $rc -eq 0 ]] || fail "$(grep -m1 '^FAIL' <<< "$out" || tail -n 1 <<< "$out")"
}

pr_R1a() { probe R1a; }
pr_R1b() { probe R1b; }
pr_R2() { probe R2; }
pr_R3() { probe R3; }
pr_R4() { probe R4; }
pr_R5a() { probe R5a; }
pr_R5b() { probe R5b; }
pr_R5c() { probe R5c; }
pr_R6() { probe R6; }
pr_R7() { probe R7; }
pr_R7s() { probe R7s; }
pr_R8() { probe R8; }
pr_R9() { probe R9; }
pr_R10() { probe R10; }
pr_R11() { probe R11; }
pr_R12() { probe R12; }

PROBE_CASES=(
    R1a-unknown-option:pr_R1a R1b-abort:pr_R1b R2-list-with-data:pr_R2 R3-unknown-command:pr_R3
    R4-write-past-end:pr_R4 R5a-read-past-end:pr_R5a R5b-offset-wrap:pr_R5b
    R5c-structured-read-past-end:pr_R5c R6-unknown-flag:pr_R6 R7-pipeline:pr_R7
    R7s-pipeline-structured:pr_R7s R8-disc-after-writes:pr_R8 R9-bad-magic:pr_R9
    R10-oversize-write:pr_R10 R11-bad-client-flags:pr_R11
)
if [[ -n ${IT_HANDSHAKE_TIMEOUT:-} ]]; then
    PROBE_CASES+=("R12-handshake-timeout:pr_R12:$(( IT_HANDSHAKE_TIMEOUT + 30 ))")
fi

it_suite --ref nbdkit/probe setup_probe_nbdkit 300 "${PROBE_CASES[@]}"
it_suite --ref qemu-nbd/probe setup_probe_qemu 300 "${PROBE_CASES[@]}"
it_suite rbagent/probe setup_probe_rbagent 300 "${PROBE_CASES[@]}"

# shellcheck shell=bash
# agent.test.sh — rbagent + rbadm against the contract in design.md: metadata creation and
# its refusals, roles and disk states, status/events formats, NBD access rules, restart,
# shutdown under load, down/up, detach/attach, and ext4 on an export whose backing disk is a
# loop device. Every case starts its own agent (node "alpha") in its own temp dir.
#
# Assumption (DRBD's behaviour for a resource without peers): a disk that was UpToDate when
# the agent stopped (or was taken down/detached) comes back UpToDate on `up`/`attach`, so
# `primary` needs no --force afterwards.

setup_agent_suite() { require_built; }

# ag_fresh — disk image, single-node config and a running agent; no metadata yet.
ag_fresh() {
    make_disk "$TEST_DIR/disk.img" 128M
    ag_config "$TEST_DIR/disk.img"
    start_agent alpha
}

ag_config() { # ag_config DISK — single-node config for alpha; sets NBD_PORT and URI
    NBD_PORT=$(free_port)
    write_config r0 "alpha 0 $(free_port) $NBD_PORT $1"
    URI=$(nbd_uri "$NBD_PORT" r0)
}

# ag_primary — ag_fresh, then create-md, up, primary --force; export reachable.
ag_primary() {
    ag_fresh
    ag_up_primary
}

# ag_up_primary — create-md, up, primary --force on the running agent; $URI reachable.
ag_up_primary() {
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
    expect_ok rbadm alpha primary r0 --force
    wait_nbd "$URI" 20 || fail "export $URI not reachable after primary --force"
}

ag_role() { rbadm alpha role r0; }
ag_dstate() { rbadm alpha dstate r0; }
write_pattern() { expect_ok "$PYTHON" "$NBDTOOL" write "$URI" "$@"; }   # OFFSET LENGTH SEED
verify_pattern() { expect_ok "$PYTHON" "$NBDTOOL" verify "$URI" "$@"; } # OFFSET LENGTH SEED

# ag_primary_again — after a restart or down: up, then primary without --force (see the
# assumption above); if that is refused, try --force so the data check can still run, and fail.
ag_primary_again() {
    expect_ok rbadm alpha up r0
    local rc=0 out
    out=$(rbadm alpha primary r0 2>&1) || rc=$?
    if [[ $rc -ne 0 ]]; then
        local data="data not checked"
        if rbadm alpha primary r0 --force > /dev/null 2>&1 && wait_nbd "$URI" 20; then
            if "$PYTHON" "$NBDTOOL" verify "$URI" "$@" 2>&1; then data="data intact with --force"
            else data="data WRONG even with --force"; fi
        fi
        fail "primary without --force refused after the disk was UpToDate (${out//$'\n'/ }); $data"
    fi
    wait_nbd "$URI" 20 || fail "export not reachable after primary"
}

# --- create-md and dump-md -------------------------------------------------------------------

ag_create_md_refuses_existing() {
    ag_fresh
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha dump-md r0
    local before=$OUTPUT
    expect_fail rbadm alpha create-md r0
    [[ -n $OUTPUT ]] || fail "create-md refused without a reason on stderr"
    expect_ok rbadm alpha dump-md r0
    assert_eq "$OUTPUT" "$before" "dump-md after the refused create-md"
    expect_ok rbadm alpha create-md r0 --force
}

ag_create_md_refuses_ext4() {
    make_disk "$TEST_DIR/disk.img" 128M
    expect_ok mkfs.ext4 -q -F "$TEST_DIR/disk.img"
    local before
    before=$(sha256sum < "$TEST_DIR/disk.img")
    ag_config "$TEST_DIR/disk.img"
    start_agent alpha
    expect_fail rbadm alpha create-md r0
    assert_match "$OUTPUT" '[Ee][Xx][Tt]4' "create-md refusal names the filesystem"
    assert_eq "$(sha256sum < "$TEST_DIR/disk.img")" "$before" "disk content after the refused create-md"
    expect_ok rbadm alpha create-md r0 --force
    expect_ok rbadm alpha dump-md r0
}

ag_create_md_refuses_too_small() {
    make_disk "$TEST_DIR/disk.img" 16K
    local before
    before=$(sha256sum < "$TEST_DIR/disk.img")
    ag_config "$TEST_DIR/disk.img"
    start_agent alpha
    expect_fail rbadm alpha create-md r0
    local sizes
    sizes=$(grep -Eo '[0-9]+(\.[0-9]+)? ?(bytes|B|KiB|MiB|GiB|kB|KB|MB|K|M|sectors)\b' <<< "$OUTPUT" | wc -l)
    (( sizes >= 2 )) || fail "too-small refusal should give the disk size and the size needed, with units: $OUTPUT"
    assert_eq "$(sha256sum < "$TEST_DIR/disk.img")" "$before" "disk content after the refused create-md"
}

ag_dump_md() {
    ag_fresh
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha dump-md r0
    assert_match "$OUTPUT" 'node-id' "dump-md shows node-id"
    assert_match "$OUTPUT" 'current-uuid' "dump-md shows current-uuid"
}

# --- roles and states ------------------------------------------------------------------------

ag_up_secondary_inconsistent() {
    ag_fresh
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
    expect_ok rbadm alpha status r0
    assert_eq "$(head -n 1 <<< "$OUTPUT")" "r0 role:Secondary" "status first line"
    grep -qx '  disk:Inconsistent' <<< "$OUTPUT" || fail "status lacks '  disk:Inconsistent': $OUTPUT"
    assert_eq "$(ag_role)" Secondary "role"
    assert_eq "$(ag_dstate)" Inconsistent "dstate"
}

ag_primary_refused_inconsistent() {
    ag_fresh
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
    expect_fail rbadm alpha primary r0
    assert_match "$OUTPUT" UpToDate "refusal reason"
    [[ $(wc -l <<< "$OUTPUT") -eq 1 ]] || fail "refusal should be one line: $OUTPUT"
    assert_eq "$(ag_role)" Secondary "role after the refused promotion"
}

ag_primary_force() {
    ag_primary
    expect_ok rbadm alpha status r0
    assert_eq "$(head -n 1 <<< "$OUTPUT")" "r0 role:Primary" "status first line"
    grep -qx '  disk:UpToDate' <<< "$OUTPUT" || fail "status lacks '  disk:UpToDate': $OUTPUT"
    assert_eq "$(ag_role)" Primary "role"
    assert_eq "$(ag_dstate)" UpToDate "dstate"
    write_pattern 0 4M force-1
    verify_pattern 0 4M force-1
}

ag_secondary_refuses_nbd() {
    ag_fresh
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
    # libnbd shows the server's error message only in its debug output.
    expect_fail env LIBNBD_DEBUG=1 nbdinfo --size "$URI"
    assert_match "$OUTPUT" Secondary "nbdinfo error on a Secondary"
    expect_ok rbadm alpha primary r0 --force
    wait_nbd "$URI" 20 || fail "export not reachable after primary --force"
    expect_ok rbadm alpha secondary r0
    expect_fail env LIBNBD_DEBUG=1 nbdinfo --size "$URI"
    assert_match "$OUTPUT" Secondary "nbdinfo error after demotion"
}

ag_secondary_with_client() {
    ag_primary
    "$PYTHON" "$NBDTOOL" hold "$URI" "$TEST_DIR/hold.status" > "$TEST_DIR/hold.log" 2>&1 &
    local hold=$!
    track_pid "$hold"
    wait_for "grep -q connected '$TEST_DIR/hold.status'" 20 || fail "client could not connect"
    expect_fail rbadm alpha secondary r0
    assert_match "$OUTPUT" 'held open' "refusal reason"
    assert_eq "$(ag_role)" Primary "role after the refused demotion"
    sleep 0.5
    grep -q connected "$TEST_DIR/hold.status" || fail "client lost its connection though demotion was refused"
    expect_ok rbadm alpha secondary r0 --force
    assert_eq "$(ag_role)" Secondary "role after secondary --force"
    wait_for "grep -q dropped '$TEST_DIR/hold.status'" 10 || fail "client still connected after secondary --force"
    expect_fail nbdinfo --size "$URI"
}

ag_status_json() {
    ag_primary
    local json
    json=$(rbadm alpha status r0 --json)
    jq -e . > /dev/null <<< "$json" || fail "status --json is not JSON: $json"
    assert_eq "$(jq -r '.[0].name' <<< "$json")" r0 ".[0].name"
    assert_eq "$(jq -r '.[0].role' <<< "$json")" Primary ".[0].role"
    assert_eq "$(jq -r '.[0].devices[0]["disk-state"]' <<< "$json")" UpToDate '.[0].devices[0]["disk-state"]'
    assert_eq "$(jq -r '.[0].devices[0].volume' <<< "$json")" 0 '.[0].devices[0].volume'
    assert_eq "$(jq -r '.[0]["node-id"]' <<< "$json")" 0 '.[0]["node-id"]'
}

ag_events_now() {
    ag_primary
    expect_ok rbadm alpha events r0 --now
    assert_eq "$(tail -n 1 <<< "$OUTPUT")" "exists -" "last events line"
    grep -Eq '^exists resource name:r0( .*)? role:Primary' <<< "$OUTPUT" || fail "no 'exists resource name:r0 ... role:Primary': $OUTPUT"
    grep -Eq '^exists device name:r0( .*)? disk:UpToDate' <<< "$OUTPUT" || fail "no 'exists device name:r0 ... disk:UpToDate': $OUTPUT"
}

# events without --now: the dump, then every change as it happens, until the client goes away.
ag_events_stream() {
    ag_fresh
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
    rbadm alpha events r0 > "$TEST_DIR/events.log" 2>&1 &
    local events=$!
    track_pid "$events"
    wait_for "grep -qx 'exists -' '$TEST_DIR/events.log'" 10 || fail "no initial dump: $(cat "$TEST_DIR/events.log")"
    expect_ok rbadm alpha primary r0 --force
    wait_for "grep -Eq '^change resource name:r0 role:Primary' '$TEST_DIR/events.log'" 10 \
        || fail "no 'change resource ... role:Primary' line: $(cat "$TEST_DIR/events.log")"
    grep -Eq '^change device name:r0 volume:0 .*disk:UpToDate' "$TEST_DIR/events.log" \
        || fail "no 'change device ... disk:UpToDate' line: $(cat "$TEST_DIR/events.log")"
    expect_ok rbadm alpha down r0
    wait_for "grep -Eq '^destroy resource name:r0' '$TEST_DIR/events.log'" 10 \
        || fail "no 'destroy resource' line after down: $(cat "$TEST_DIR/events.log")"
}

# Two volumes: each is its own export (r0 and r0/1), with its own data.
ag_two_volumes() {
    make_disk "$TEST_DIR/v0.img" 64M
    make_disk "$TEST_DIR/v1.img" 64M
    NBD_PORT=$(free_port)
    cat > "$RB_CONFIG" <<CONF
resource r0 {
  on alpha {
    node-id 0; address 127.0.0.1:$(free_port); nbd-address 127.0.0.1:$NBD_PORT;
    volume 0 { disk $TEST_DIR/v0.img; meta-disk internal; }
    volume 1 { disk $TEST_DIR/v1.img; meta-disk internal; }
  }
}
CONF
    start_agent alpha
    URI=$(nbd_uri "$NBD_PORT" r0)
    ag_up_primary
    expect_ok rbadm alpha status r0
    grep -qx '  volume:0 disk:UpToDate' <<< "$OUTPUT" || fail "status lacks volume 0: $OUTPUT"
    grep -qx '  volume:1 disk:UpToDate' <<< "$OUTPUT" || fail "status lacks volume 1: $OUTPUT"
    local uri1
    uri1=$(nbd_uri "$NBD_PORT" r0/1)
    expect_ok "$PYTHON" "$NBDTOOL" write "$URI" 0 1M vol-0
    expect_ok "$PYTHON" "$NBDTOOL" write "$uri1" 0 1M vol-1
    expect_ok "$PYTHON" "$NBDTOOL" verify "$URI" 0 1M vol-0
    expect_ok "$PYTHON" "$NBDTOOL" verify "$uri1" 0 1M vol-1
    expect_ok nbdinfo --list "$URI"
    grep -q 'export="r0/1"' <<< "$OUTPUT" || fail "nbdinfo --list lacks r0/1: $OUTPUT"
}

# nbd-address unix:PATH — the export over a Unix socket.
ag_unix_socket() {
    make_disk "$TEST_DIR/disk.img" 64M
    local socket=$TEST_DIR/nbd.sock
    cat > "$RB_CONFIG" <<CONF
resource r0 {
  on alpha {
    node-id 0; address 127.0.0.1:$(free_port); nbd-address unix:$socket;
    volume 0 { disk $TEST_DIR/disk.img; meta-disk internal; }
  }
}
CONF
    start_agent alpha
    URI="nbd+unix:///r0?socket=$socket"
    ag_up_primary
    write_pattern 0 2M unix-1
    verify_pattern 0 2M unix-1
    expect_ok rbadm alpha down r0
    [[ ! -e $socket ]] || fail "socket $socket left behind after down"
}

# dump: the resolved resource in drbd.conf syntax, keywords without effect listed as ignored.
ag_dump() {
    cat > "$RB_CONFIG" <<'CONF'
common { net { protocol C; } disk { resync-rate 40M; } }
resource r0 {
  net { rcvbuf-size 0; }
  on alpha { node-id 0; address 127.0.0.1:7788; volume 0 { disk /dev/null; meta-disk internal; } }
}
CONF
    expect_ok "$RB_OUT/rbadm" -c "$RB_CONFIG" --node alpha dump r0
    assert_match "$OUTPUT" 'protocol +C;' "inherited net option"
    assert_match "$OUTPUT" 'resync-rate +40M;' "inherited disk option"
    assert_match "$OUTPUT" '# ignored: rcvbuf-size' "ignored keyword reported"
    printf '%s\n' "$OUTPUT" | sed '/^#/d' > "$TEST_DIR/dumped.conf"
    expect_ok "$RB_OUT/rbadm" -c "$TEST_DIR/dumped.conf" --node alpha dump r0
}

ag_role_dstate_cstate() {
    ag_fresh
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
    assert_eq "$(ag_role)" Secondary "role after up"
    assert_eq "$(ag_dstate)" Inconsistent "dstate after up"
    expect_ok rbadm alpha primary r0 --force
    assert_eq "$(ag_role)" Primary "role after primary --force"
    assert_eq "$(ag_dstate)" UpToDate "dstate after primary --force"
    expect_ok rbadm alpha cstate r0
}

ag_cstate_with_peer() {
    make_disk "$TEST_DIR/disk.img" 128M
    NBD_PORT=$(free_port)
    write_config r0 "alpha 0 $(free_port) $NBD_PORT $TEST_DIR/disk.img" \
                    "beta 1 $(free_port) $(free_port) $TEST_DIR/beta.img"
    start_agent alpha
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
    local states='StandAlone|Disconnecting|Unconnected|Timeout|BrokenPipe|NetworkFailure|ProtocolError|TearDown|Connecting|Connected'
    expect_ok rbadm alpha cstate r0
    assert_match "$OUTPUT" "^($states)\$" "cstate with an unreachable peer"
    assert_match "$OUTPUT" "^(Connecting|Unconnected|StandAlone|Timeout|NetworkFailure|BrokenPipe)\$" "cstate must not claim Connected without the peer"
}

# --- persistence and lifecycle ---------------------------------------------------------------

ag_restart_keeps_data() {
    ag_primary
    write_pattern 1048576 8388608 restart-1
    expect_ok rbadm alpha dump-md r0
    stop_agent alpha 10
    assert_eq "$AGENT_RC" 0 "agent exit status on SIGTERM"
    start_agent alpha
    ag_primary_again 1048576 8388608 restart-1
    assert_eq "$(ag_dstate)" UpToDate "dstate after restart"
    verify_pattern 1048576 8388608 restart-1
}

ag_sigterm_during_fio() {
    ag_primary
    write_pattern 0 4194304 keep-1   # outside fio's region (which starts at 16 MiB)
    fio --name=load --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=32 --offset=16m \
        --size=64m --time_based=1 --runtime=60 --output="$TEST_DIR/fio.out" > "$TEST_DIR/fio.log" 2>&1 &
    local fio=$!
    track_pid "$fio"
    sleep 3
    pid_alive "$fio" || fail "fio did not keep running: $(tail -n 3 "$TEST_DIR/fio.log" | tr '\n' ' ')"
    local t0 t1
    t0=$(date +%s%N)
    stop_agent alpha 8
    t1=$(date +%s%N)
    assert_eq "$AGENT_RC" 0 "agent exit status on SIGTERM under load"
    echo "agent stopped in $(( (t1 - t0) / 1000000 )) ms"
    wait_for "! kill -0 $fio" 15 || fail "fio still running after the agent stopped"
    start_agent alpha
    expect_ok rbadm alpha dump-md r0
    assert_match "$OUTPUT" 'current-uuid' "dump-md after a shutdown under load"
    ag_primary_again 0 4194304 keep-1
    assert_eq "$(ag_dstate)" UpToDate "dstate after restart"
    verify_pattern 0 4194304 keep-1
}

ag_down_up_keeps_data() {
    ag_primary
    write_pattern 2097152 4194304 downup-1
    expect_ok rbadm alpha down r0
    expect_fail nbdinfo --size "$URI"
    ag_primary_again 2097152 4194304 downup-1
    verify_pattern 2097152 4194304 downup-1
}

ag_detach_attach() {
    ag_primary
    write_pattern 0 4194304 detach-1
    # A Primary's only UpToDate disk is not detached without --force (DRBD 9 refuses the same).
    expect_fail rbadm alpha detach r0
    assert_match "$OUTPUT" UpToDate "refusal reason"
    assert_eq "$(ag_dstate)" UpToDate "dstate after the refused detach"
    expect_ok rbadm alpha detach r0 --force
    assert_eq "$(ag_dstate)" Diskless "dstate after detach --force"
    expect_ok rbadm alpha attach r0
    assert_eq "$(ag_dstate)" UpToDate "dstate after attach"
    wait_nbd "$URI" 20 || fail "export not reachable after attach"
    verify_pattern 0 4194304 detach-1
    # A Secondary detaches without ceremony and comes back UpToDate.
    expect_ok rbadm alpha secondary r0
    expect_ok rbadm alpha detach r0
    assert_eq "$(ag_dstate)" Diskless "dstate after detach as Secondary"
    expect_ok rbadm alpha attach r0
    assert_eq "$(ag_dstate)" UpToDate "dstate after the second attach"
    expect_ok rbadm alpha primary r0
    wait_nbd "$URI" 20 || fail "export not reachable after primary"
    verify_pattern 0 4194304 detach-1
}

# A disk I/O error: the backing loop device is made read-only under the agent, so the next write
# fails in the kernel. The client gets EIO for that request, the agent keeps running and logs it,
# and on-io-error detach (DRBD 9's default) leaves the volume Diskless; re-attaching brings it back.
ag_io_error() {
    make_disk "$TEST_DIR/backing.img" 64M
    new_loop "$TEST_DIR/backing.img"
    local backing=$LOOP_DEV
    ag_config "$backing"
    start_agent alpha
    ag_up_primary
    write_pattern 0 1M ioerr-1
    blockdev --setro "$backing" || fail "blockdev --setro $backing failed"
    expect_ok "$PYTHON" - "$URI" <<'PY'
import errno, sys
import nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
try:
    h.pwrite(b"\xab" * 65536, 8 * 1024 * 1024)
except nbd.Error as e:
    if e.errno not in (errno.EIO, "EIO"):
        sys.exit(f"write failed with errno {e.errno}, expected EIO")
    print("EIO as expected")
else:
    sys.exit("write on a failing disk succeeded")
PY
    blockdev --setrw "$backing" || fail "blockdev --setrw $backing failed"
    wait_for "[[ \$(rbadm alpha dstate r0) == Diskless ]]" 10 || fail "disk not detached after the I/O error: $(rbadm alpha dstate r0)"
    grep -q "local disk I/O error" "$TEST_DIR/agent-alpha.log" || fail "the I/O error was not logged"
    assert_eq "$(ag_role)" Primary "role after the I/O error (the agent is still serving)"
    expect_ok rbadm alpha attach r0
    assert_eq "$(ag_dstate)" UpToDate "dstate after re-attach"
    verify_pattern 0 1M ioerr-1
}

ag_loopdev_fs() {
    make_disk "$TEST_DIR/backing.img" 300M
    new_loop "$TEST_DIR/backing.img"
    local backing=$LOOP_DEV
    ag_config "$backing"
    start_agent alpha
    ag_up_primary
    fs_roundtrip "$URI"
    expect_ok rbadm alpha secondary r0
    expect_ok rbadm alpha down r0
    stop_agent alpha 10
    assert_eq "$AGENT_RC" 0 "agent exit status"
    losetup -d "$backing" || fail "losetup -d $backing failed"
}

AGENT_CASES=(
    create-md-refuses-existing:ag_create_md_refuses_existing
    create-md-refuses-ext4:ag_create_md_refuses_ext4
    create-md-refuses-too-small:ag_create_md_refuses_too_small
    dump-md:ag_dump_md
    up-secondary-inconsistent:ag_up_secondary_inconsistent
    primary-refused-inconsistent:ag_primary_refused_inconsistent
    primary-force:ag_primary_force
    secondary-refuses-nbd:ag_secondary_refuses_nbd
    secondary-with-client:ag_secondary_with_client
    status-json:ag_status_json
    events-now:ag_events_now
    role-dstate-cstate:ag_role_dstate_cstate
    cstate-with-peer:ag_cstate_with_peer
    restart-keeps-data:ag_restart_keeps_data
    sigterm-during-fio:ag_sigterm_during_fio
    down-up-keeps-data:ag_down_up_keeps_data
    detach-attach:ag_detach_attach
    io-error:ag_io_error
    events-stream:ag_events_stream
    two-volumes:ag_two_volumes
    unix-socket:ag_unix_socket
    dump:ag_dump
    loopdev-fs:ag_loopdev_fs:180
)

it_suite agent/cli setup_agent_suite 900 "${AGENT_CASES[@]}"

# shellcheck shell=bash
# diskless.test.sh — drbd.md §8 scenario 13 (io-errors) with two real agents: alpha's backing disk
# is a loop device, and `blockdev --setro` makes its writes fail. Under `on-io-error detach`
# (DRBD 9's default) alpha becomes Diskless and stays Primary; its NBD client, connected
# throughout, keeps writing and reading through beta. `attach` brings the disk back while
# connected; a bitmap resync (not a full one) of what alpha missed makes the replicas identical,
# checked on both nodes after a switch-over. Uses the two-node helpers of replication.test.sh.

setup_diskless_suite() { require_built; }

# The two-node helpers (rp_synced, write_on, verify_on, switch_to) live in replication.test.sh. A
# case process sources only its own file, so the case sources that one when it runs (sourcing it
# here, at registration time, would register the replication suite twice in `run`).
dl_two_node_helpers() {
    declare -F rp_synced > /dev/null || source "$IT_DIR/replication.test.sh"
}

# dl_client URI LOOP — one NBD client on alpha's export for the whole failure and reattach; see PY.
dl_client() {
    expect_ok "$PYTHON" - "$1" "$RB_OUT/rbadm" "$RB_CONFIG" "$(control_path alpha)" "$2" "$IT_DIR" <<'PY'
import subprocess, sys, time
uri, rbadm, config, control, loop, it_dir = sys.argv[1:]
sys.path.insert(0, it_dir)
import nbd
from nbdtool import pattern

MiB = 1 << 20
def adm(*args):
    return subprocess.run([rbadm, "-c", config, "--node", "alpha", "--control", control, *args], capture_output=True, text=True)
def dstate():
    return adm("dstate", "r0").stdout.strip()
def wait(want, what, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while dstate() != want:
        if time.monotonic() > deadline:
            sys.exit(f"{what}: alpha's dstate is {dstate()}, want {want}")
        time.sleep(0.1)
def write(h, offset, length, seed):
    h.pwrite(pattern(seed, offset, length), offset)
def verify(h, offset, length, seed, what):
    data = h.pread(length, offset)
    want = pattern(seed, offset, length)
    if data != want:
        first = next(i for i in range(length) if data[i] != want[i])
        sys.exit(f"{what}: {seed} differs at {offset + first}")

h = nbd.NBD()
h.connect_uri(uri)
subprocess.run(["blockdev", "--setro", loop], check=True)
# The local write fails, beta has it: the client sees success (DRBD completes it "net OK").
write(h, 8 * MiB, MiB, "failing")
wait("Diskless/UpToDate", "after the write error")
print("alpha is Diskless; the client is still connected")
write(h, 12 * MiB, 2 * MiB, "diskless")
h.flush()
verify(h, 0, 4 * MiB, "before", "Diskless read")
verify(h, 8 * MiB, MiB, "failing", "Diskless read of the write that failed locally")
verify(h, 12 * MiB, 2 * MiB, "diskless", "Diskless read of a write served by beta")
verify(h, 30 * MiB, MiB, "zero", "Diskless read of a range never written")
# A new client may open the export of a Diskless Primary too: its data is at the UpToDate peer.
h2 = nbd.NBD()
h2.connect_uri(uri)
verify(h2, 12 * MiB, 2 * MiB, "diskless", "a second client's read while Diskless")
h2.shutdown()

subprocess.run(["blockdev", "--setrw", loop], check=True)
r = adm("attach", "r0")
if r.returncode != 0:
    sys.exit(f"attach failed: {r.stderr.strip()}")
write(h, 13 * MiB, MiB, "reattached")  # during the renegotiation or the resync
wait("UpToDate/UpToDate", "after attach", 60)
verify(h, 12 * MiB, MiB, "diskless", "read after the resync")
verify(h, 13 * MiB, MiB, "reattached", "read after the resync")
h.flush()
h.shutdown()
print("resynced; the client saw no error")
PY
}

dl_io_error_detach_and_reattach() {
    dl_two_node_helpers
    make_disk "$TEST_DIR/alpha-backing.img" 64M
    new_loop "$TEST_DIR/alpha-backing.img"
    local loop=$LOOP_DEV
    RP_ALPHA_DISK=$loop rp_synced
    write_on "$URI_A" 0 4M before
    dl_client "$URI_A" "$loop"
    assert_eq "$(rbadm alpha role r0)" Primary "alpha's role after the I/O error and the reattach"
    grep -q "local disk I/O error" "$TEST_DIR/agent-alpha.log" || fail "the I/O error was not logged"

    # What the resync after the attach was: a bitmap resync of what alpha missed, not a full one.
    local since after_alpha after_beta
    since=$(grep -n "disk attached while connected" "$TEST_DIR/agent-alpha.log" | tail -n 1 | cut -d: -f1)
    [[ -n $since ]] || fail "alpha did not renegotiate the attached disk with beta"
    after_alpha=$(tail -n "+$since" "$TEST_DIR/agent-alpha.log")
    after_beta=$(grep -E "resync" "$TEST_DIR/agent-beta.log" | tail -n 3)
    assert_match "$after_alpha" "bitmap resync, [0-9]+ KiB to sync" "alpha's resync after the attach"
    [[ $after_alpha != *"full resync"* ]] || fail "the reattached disk was fully resynced: $(grep resync <<< "$after_alpha" | tr '\n' ' ')"
    assert_match "$after_alpha" "Resync done \\(total [0-9.]* sec; paused [0-9.]* sec; [0-9]* K/sec; [0-9]* KiB\\); disk is UpToDate" "alpha's resync finished"
    # beta recorded exactly the 2 MiB written while alpha was Diskless, plus the 1 MiB write that
    # failed locally when alpha's disk failure reached beta before that write did (the failing AL
    # transaction can fail the disk first); never more, never a full resync.
    assert_match "$after_beta" "bitmap resync, (2048|3072) KiB to sync" "beta's bitmap of what alpha missed"
    expect_ok rbadm alpha wait-sync r0 --timeout 30

    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 0 4M before
    verify_on "$URI_B" 8M 1M failing
    verify_on "$URI_B" 12M 1M diskless
    verify_on "$URI_B" 13M 1M reattached
    switch_to alpha beta
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after switching back"
    verify_on "$URI_A" 0 4M before
    verify_on "$URI_A" 8M 1M failing
    verify_on "$URI_A" 12M 1M diskless
    verify_on "$URI_A" 13M 1M reattached
    expect_ok rbadm alpha down r0
    expect_ok rbadm beta down r0
}

# A meta-data write that fails gives the disk up whatever the on-io-error policy (here pass_on,
# which passes data I/O errors on), as DRBD does: alpha's external metadata is on a loop device
# made read-only, its demotion's superblock write fails, and it goes Diskless; once the device is
# writable again `attach` brings the disk back and a resync gives it what beta wrote meanwhile.
dl_metadata_error_detaches() {
    dl_two_node_helpers
    make_disk "$TEST_DIR/alpha-md.img" 16M
    new_loop "$TEST_DIR/alpha-md.img"
    local md=$LOOP_DEV
    RP_ALPHA_META=$md RB_RESOURCE_EXTRA='net { protocol C; connect-int 1; ping-int 1; } disk { c-plan-ahead 0; resync-rate 400M; on-io-error pass_on; }' rp_synced
    write_on "$URI_A" 0 4M md-before
    blockdev --setro "$md" || fail "blockdev --setro $md failed"
    rbadm alpha secondary r0 > "$TEST_DIR/secondary.out" 2>&1 || true
    wait_for "[[ \$(rbadm alpha dstate r0) == Diskless/UpToDate ]]" 20 \
        || fail "alpha did not give up its disk after the meta-data write failed: $(rbadm alpha dstate r0)"
    grep -q "meta-data write failed" "$TEST_DIR/agent-alpha.log" || fail "the meta-data error was not logged"
    wait_for "rbadm alpha secondary r0" 10 || true
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    write_on "$URI_B" 8M 2M md-diskless
    blockdev --setrw "$md" || fail "blockdev --setrw $md failed"
    expect_ok rbadm alpha attach r0
    expect_ok rbadm alpha wait-sync r0 --timeout 30
    assert_eq "$(rbadm alpha dstate r0)" UpToDate/UpToDate "alpha after the attach and resync"
    switch_to alpha beta
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after switching back"
    verify_on "$URI_A" 0 4M md-before
    verify_on "$URI_A" 8M 2M md-diskless
    expect_ok rbadm alpha down r0
    expect_ok rbadm beta down r0
}

# DRBD's ERR_DATA_NOT_CURRENT: a Diskless Primary whose writes went to beta only may not take its
# old disk back while no peer has the data it serves (beta is down): `attach` is refused and says
# why. Once beta is back its Consistent disk holds exactly that data and becomes UpToDate (DRBD 9's
# "connecting to diskless primary"); then the attach goes through and a resync brings the writes.
dl_attach_refused_without_current_data() {
    dl_two_node_helpers
    make_disk "$TEST_DIR/alpha-backing.img" 64M
    new_loop "$TEST_DIR/alpha-backing.img"
    local loop=$LOOP_DEV out
    RP_ALPHA_DISK=$loop rp_synced
    write_on "$URI_A" 0 4M nc-before
    blockdev --setro "$loop" || fail "blockdev --setro $loop failed"
    write_on "$URI_A" 4M 1M nc-failing
    wait_for "[[ \$(rbadm alpha dstate r0) == Diskless/UpToDate ]]" 20 || fail "alpha is $(rbadm alpha dstate r0) after the write error"
    write_on "$URI_A" 8M 2M nc-diskless
    expect_ok rbadm beta down r0
    wait_for "[[ \$(rbadm alpha cstate r0) != Connected ]]" 20 || fail "alpha still connected after beta's down"
    blockdev --setrw "$loop" || fail "blockdev --setrw $loop failed"
    if out=$(rbadm alpha attach r0 2>&1); then
        fail "attach of the old disk succeeded while no peer had the data alpha serves: $out"
    fi
    assert_match "$out" "\\(150\\) Can only attach to the data we lost last: this Primary serves data with current UUID=[0-9A-F]{16}" "attach's refusal"
    assert_eq "$(rbadm alpha dstate r0)" Diskless/DUnknown "alpha after the refused attach"
    expect_ok rbadm beta up r0
    wait_for "[[ \$(rbadm alpha dstate r0) == Diskless/UpToDate ]]" 30 || fail "beta's copy did not become UpToDate for the Diskless Primary: $(rbadm alpha dstate r0) / $(rbadm beta dstate r0)"
    expect_ok rbadm alpha attach r0
    expect_ok rbadm alpha wait-sync r0 --timeout 30
    assert_eq "$(rbadm alpha dstate r0)" UpToDate/UpToDate "alpha after the attach and resync"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable"
    verify_on "$URI_B" 0 4M nc-before
    verify_on "$URI_B" 4M 1M nc-failing
    verify_on "$URI_B" 8M 2M nc-diskless
    switch_to alpha beta
    wait_nbd "$URI_A" 20 || fail "alpha's export not reachable after switching back"
    verify_on "$URI_A" 0 4M nc-before
    verify_on "$URI_A" 4M 1M nc-failing
    verify_on "$URI_A" 8M 2M nc-diskless
    expect_ok rbadm alpha down r0
    expect_ok rbadm beta down r0
}

DISKLESS_CASES=(
    io-error-detach-and-reattach:dl_io_error_detach_and_reattach:180
    metadata-error-detaches:dl_metadata_error_detaches:180
    attach-refused-without-current-data:dl_attach_refused_without_current_data:180
)

it_suite diskless/two-node setup_diskless_suite 600 "${DISKLESS_CASES[@]}"

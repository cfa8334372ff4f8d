# shellcheck shell=bash
# metadata-crash.test.sh — a real agent on a disk whose superblock was torn: with one of the two
# copies overwritten (zeroes over part of it, at a few offsets in each copy) `up` still works, the
# generation identifiers dump-md prints are the ones written last, the disk comes back UpToDate and the
# data is intact. (Overwritten with random bytes: a torn write's new half is as unknown.) With both copies destroyed `up` fails with an error naming the disk, and the agent
# keeps running. (Every byte position is covered by the unit tests in
# tests/Redundancy.Block.Agent.Tests/Storage/MetadataCrashTests.cs; this checks the real programs.)

setup_metadata_crash_suite() { require_built; }

MDC_SIZE_MIB=64

# mdc_dd_garbage OFFSET LENGTH — overwrites LENGTH bytes at byte OFFSET of the disk with random
# bytes (the superblock's CRC32C covers its whole 4 KiB block, padding included).
mdc_dd_garbage() {
    head -c "$2" /dev/urandom | dd of="$MDC_DISK" bs=1 seek="$1" conv=notrunc status=none || fail "dd over $MDC_DISK at $1 failed"
}

# mdc_ids — the generation identifiers dump-md prints (current UUID and history), one line.
mdc_ids() {
    local dump
    dump=$(rbadm alpha dump-md r0) || fail "dump-md failed: $dump"
    printf '%s\n' "$dump" | grep -E '^(current-uuid|history-uuids|peer\[)' | sed -E 's/flags 0x[0-9A-F]+; # .*//' | tr '\n' ' '
}

mdc_torn_superblock() {
    MDC_DISK=$TEST_DIR/disk.img
    make_disk "$MDC_DISK" "${MDC_SIZE_MIB}M"
    local nbd area copy offset ids_written ids area_file=$TEST_DIR/sb-area.bin
    nbd=$(free_port)
    write_config r0 "alpha 0 $(free_port) $nbd $MDC_DISK"
    local uri
    uri=$(nbd_uri "$nbd" r0)
    start_agent alpha
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
    expect_ok rbadm alpha primary r0 --force
    wait_nbd "$uri" 20 || fail "export not reachable"
    expect_ok "$PYTHON" "$NBDTOOL" write "$uri" 0 2M torn-sb
    wait_for "rbadm alpha secondary r0" 10 || expect_ok rbadm alpha secondary r0
    expect_ok rbadm alpha down r0
    # A second up/down: both copies now hold these generation identifiers (only flags and sequence differ).
    expect_ok rbadm alpha up r0
    expect_ok rbadm alpha down r0
    ids_written=$(mdc_ids)
    assert_match "$ids_written" 'current-uuid 0x[0-9A-F]{16}' "dump-md's current UUID"
    [[ $ids_written != *0x0000000000000004* ]] || fail "the current UUID is still the create-md one: $ids_written"
    area=$(( MDC_SIZE_MIB * 1024 * 1024 - 8192 ))
    dd if="$MDC_DISK" of="$area_file" bs=4096 skip=$(( area / 4096 )) count=2 status=none
    for copy in 0 1; do
        for offset in 0 64 2000 4090; do
            dd if="$area_file" of="$MDC_DISK" bs=4096 seek=$(( area / 4096 )) conv=notrunc status=none
            mdc_dd_garbage $(( area + copy * 4096 + offset )) 6
            ids=$(mdc_ids)
            assert_eq "$ids" "$ids_written" "generation identifiers with copy $copy torn at byte $offset"
            expect_ok rbadm alpha up r0
            assert_eq "$(rbadm alpha dstate r0)" UpToDate "disk state with copy $copy torn at byte $offset"
            expect_ok rbadm alpha down r0
            assert_eq "$(mdc_ids)" "$ids_written" "generation identifiers after up/down with copy $copy torn at byte $offset"
        done
    done
    expect_ok rbadm alpha up r0
    expect_ok rbadm alpha primary r0
    wait_nbd "$uri" 20 || fail "export not reachable after the torn superblocks"
    expect_ok "$PYTHON" "$NBDTOOL" verify "$uri" 0 2M torn-sb
    wait_for "rbadm alpha secondary r0" 10 || expect_ok rbadm alpha secondary r0
    expect_ok rbadm alpha down r0

    # Both copies destroyed: a clear error naming the disk, from up and from dump-md; the agent lives on.
    mdc_dd_garbage "$area" 4096
    mdc_dd_garbage $(( area + 4096 + 2000 )) 8
    expect_fail rbadm alpha up r0
    echo "up with both copies destroyed: $OUTPUT"
    assert_match "$OUTPUT" "$MDC_DISK" "up's error names the disk"
    assert_match "$OUTPUT" 'no valid metadata' "up's error says why"
    pid_alive "${AGENT_PID[alpha]}" || fail "rbagent died on a disk without valid metadata"
    expect_fail rbadm alpha dump-md r0
    assert_match "$OUTPUT" 'no valid metadata' "dump-md's error"
    expect_ok rbadm alpha status r0
    assert_match "$OUTPUT" 'Diskless' "status after the failed up"
}

it_suite metadata-crash setup_metadata_crash_suite 300 torn-superblock:mdc_torn_superblock

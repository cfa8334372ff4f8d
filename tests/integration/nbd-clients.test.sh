# shellcheck shell=bash
# nbd-clients.test.sh — interoperability with real NBD clients: the checks #1–#30 of
# reference/nbd.md §3 (nbdinfo, qemu-io, qemu-img, nbdcopy, libnbd via nbdtool.py, fio's nbd
# engine, nbdfuse + loop + ext4). The same cases run against rbagent and, as a check of the
# tests themselves, against nbdkit's file plugin and qemu-nbd (reference suites, run with
# `tests/integration/run --reference`). Each case asserts data, not only exit codes.
#
# Fixture contract (exported by the setup functions): URI, EXPORT_NAME, EXPORT_SIZE.
# Known reference deviations: nbdkit 1.32's file plugin does not advertise fast-zero.

NBDC_DISK_SIZE=300M

nbdc_export() {
    export URI EXPORT_NAME EXPORT_SIZE
    EXPORT_SIZE=$(nbdinfo --size "$URI")
    (( EXPORT_SIZE >= 256 * 1024 * 1024 )) || fail "export too small for the checks: $EXPORT_SIZE"
}

setup_nbdc_nbdkit() {
    local port
    port=$(free_port)
    make_disk "$TEST_DIR/disk.img" "$NBDC_DISK_SIZE"
    nbdkit -f -p "$port" -i 127.0.0.1 file "$TEST_DIR/disk.img" > "$TEST_DIR/nbdkit.log" 2>&1 &
    track_pid $!
    URI=$(nbd_uri "$port")
    EXPORT_NAME=""
    wait_nbd "$URI" 20 || fail "nbdkit did not start"
    nbdc_export
}

setup_nbdc_qemu() {
    local port
    port=$(free_port)
    make_disk "$TEST_DIR/disk.img" "$NBDC_DISK_SIZE"
    qemu-nbd -f raw -b 127.0.0.1 -p "$port" -t -e 8 -x r0 --discard=unmap "$TEST_DIR/disk.img" \
        > "$TEST_DIR/qemu-nbd.log" 2>&1 &
    track_pid $!
    URI=$(nbd_uri "$port" r0)
    EXPORT_NAME=r0
    wait_nbd "$URI" 20 || fail "qemu-nbd did not start"
    nbdc_export
}

setup_nbdc_rbagent() {
    make_disk "$TEST_DIR/disk.img" "$NBDC_DISK_SIZE"
    rb_primary_export alpha "$TEST_DIR/disk.img"
    nbdc_export
}

# --- #1–#5 nbdinfo ---------------------------------------------------------------------------

nc_connect() { expect_ok nbdinfo --can connect "$URI"; }

nc_list() {
    local names
    names=$(nbdinfo --list --json "$URI" | jq -r '.exports[]."export-name"')
    grep -qxF -- "$EXPORT_NAME" <<< "$names" || fail "export '$EXPORT_NAME' not in list: $(tr '\n' ' ' <<< "$names")"
}

nc_size_info_eq_go() {
    local info_size go_size
    info_size=$(nbdinfo --json "$URI" | jq -r '.exports[0]."export-size"')
    go_size=$(nbdinfo --size "$URI")
    assert_eq "$info_size" "$go_size" "size from NBD_OPT_INFO (--json) vs NBD_OPT_GO (--size)"
    (( go_size > 0 )) || fail "export size is $go_size"
}

nc_can() {
    local what=$1 rc=0
    nbdinfo --can "$what" "$URI" || rc=$?
    case $rc in
        0) ;;
        2) fail "server does not advertise $what" ;;
        *) fail "nbdinfo --can $what exited $rc" ;;
    esac
}
nc_can_flush() { nc_can flush; }
nc_can_fua() { nc_can fua; }
nc_can_trim() { nc_can trim; }
nc_can_zero() { nc_can zero; }
nc_can_fast_zero() { nc_can fast-zero; }
nc_can_multi_conn() { nc_can multi-conn; }
nc_can_cache() { nc_can cache; }
nc_can_df() { nc_can df; }
nc_can_structured_reply() { nc_can structured-reply; }

nc_map_totals() {
    local total
    expect_ok nbdinfo --map --totals "$URI"
    total=$(awk '{ s += $1 } END { print s }' <<< "$OUTPUT")
    assert_eq "$total" "$EXPORT_SIZE" "sum of --map --totals extents"
}

# --- #6–#15 qemu-io patterns -----------------------------------------------------------------

# qio ARGS... — qemu-io on the export; fails on a non-zero exit or any reported failure.
qio() {
    local args=() c rc=0
    for c in "$@"; do args+=(-c "$c"); done
    OUTPUT=$(qemu-io -f raw "${args[@]}" "$URI" 2>&1) || rc=$?
    [[ $rc -eq 0 ]] || fail "qemu-io exited $rc: $(tail -n 3 <<< "$OUTPUT" | tr '\n' ' ')"
    if grep -Eiq 'verification failed|error|failed|refused|Invalid' <<< "$OUTPUT"; then
        fail "qemu-io: $(grep -Ei 'verification failed|error|failed|refused|Invalid' <<< "$OUTPUT" | head -n 2 | tr '\n' ' ')"
    fi
    echo "$OUTPUT"
}

nc_qio_aligned() { qio 'write -P 0xa5 0 1M' 'read -P 0xa5 0 1M'; }

nc_qio_unaligned() {
    # 513..1512 inside a 4 KiB block: neighbours must keep their bytes (read-modify-write).
    qio 'write -P 0x22 0 4k' 'write -P 0x11 513 1000' \
        'read -P 0x22 0 513' 'read -P 0x11 513 1000' 'read -P 0x22 1513 2583'
}

nc_qio_write_zeroes() { qio 'write -P 0x33 1M 1M' 'write -z 1M 1M' 'read -P 0 1M 1M'; }

nc_qio_write_zeroes_unmap() { qio 'write -P 0x44 2M 1M' 'write -z -u 2M 1M' 'read -P 0 2M 1M'; }

nc_qio_discard() { qio 'write -P 0x55 3M 1M' 'discard 3M 1M' 'read -P 0 3M 1M'; }

nc_qio_fua() { qio 'write -f -P 0x66 4M 1M' 'read -P 0x66 4M 1M'; }

nc_qio_flush() { qio 'write -P 0x77 5M 64k' 'flush' 'read -P 0x77 5M 64k'; }

nc_qio_aio_flush() {
    qio 'aio_write -P 0x81 6144k 64k' 'aio_write -P 0x82 6208k 64k' 'aio_write -P 0x83 6272k 64k' \
        'aio_flush' 'flush' 'read -P 0x81 6144k 64k' 'read -P 0x82 6208k 64k' 'read -P 0x83 6272k 64k'
}

nc_qio_last_4k() {
    local off=$((EXPORT_SIZE - 4096))
    qio "write -P 0x99 $off 4k" "read -P 0x99 $off 4k"
}

nc_qio_32m() { qio 'write -P 0xc3 16M 32M' 'read -P 0xc3 16M 32M'; }

# --- #16–#21 qemu-img, nbdcopy ---------------------------------------------------------------

nc_qemu_img_info() {
    local size
    size=$(qemu-img info --output=json "$URI" | jq -r '."virtual-size"')
    assert_eq "$size" "$EXPORT_SIZE" "qemu-img info virtual-size"
}

# src_image PATH — export-sized image: random 8 MiB at three places, zeros elsewhere.
src_image() {
    truncate -s "$EXPORT_SIZE" "$1"
    local mib
    for mib in 0 100 $(( EXPORT_SIZE / 1048576 - 8 )); do
        head -c 8M /dev/urandom | dd of="$1" bs=1M seek="$mib" conv=notrunc status=none
    done
}

nc_qemu_img_convert_compare() {
    src_image "$TEST_DIR/src.img"
    expect_ok qemu-img convert -n -f raw -O raw "$TEST_DIR/src.img" "$URI"
    expect_ok qemu-img compare -f raw -F raw "$TEST_DIR/src.img" "$URI"
    assert_match "$OUTPUT" "Images are identical" "qemu-img compare"
}

nc_qemu_img_map() {
    local covered
    covered=$(qemu-img map -f raw --output=json "$URI" | jq '[.[].length] | add')
    assert_eq "$covered" "$EXPORT_SIZE" "qemu-img map extents total"
}

nc_nbdcopy_both_ways() {
    head -c 64M /dev/urandom > "$TEST_DIR/src.img"
    expect_ok nbdcopy --connections=4 --requests=64 --flush "$TEST_DIR/src.img" "$URI"
    expect_ok nbdcopy -C 4 "$URI" "$TEST_DIR/dst.img"
    assert_eq "$(stat -c %s "$TEST_DIR/dst.img")" "$EXPORT_SIZE" "size of the copied-out image"
    cmp -n 64M "$TEST_DIR/src.img" "$TEST_DIR/dst.img" || fail "data copied out differs from data copied in"
}

# --- #22–#28 libnbd with strict mode off -----------------------------------------------------

nbdsh_check() { expect_ok "$PYTHON" "$NBDTOOL" check "$URI" "$1"; echo "$OUTPUT"; }
nc_nbdsh_pread_past_end() { nbdsh_check pread-past-end; }
nc_nbdsh_pwrite_past_end() { nbdsh_check pwrite-past-end; }
nc_nbdsh_unknown_flag() { nbdsh_check unknown-flag; }
nc_nbdsh_zero_length() { nbdsh_check zero-length; }
nc_nbdsh_oversize_write() { nbdsh_check oversize-write; }
nc_nbdsh_multi_conn() { nbdsh_check multi-conn; }

# --- #29 fio, #30 filesystem -----------------------------------------------------------------

nc_fio_verify() {
    expect_ok fio --name=verify --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --iodepth=16 \
        --offset=64m --size=32m --verify=crc32c --do_verify=1 --verify_fatal=1 --randrepeat=0 \
        --output-format=json --output="$TEST_DIR/fio.json"
    local errors written
    errors=$(jq '.jobs[0].error' "$TEST_DIR/fio.json")
    written=$(jq '.jobs[0].write.io_bytes' "$TEST_DIR/fio.json")
    assert_eq "$errors" 0 "fio job error"
    (( written >= 32 * 1024 * 1024 )) || fail "fio wrote only $written bytes"
}

nc_nbdfuse_ext4() { fs_roundtrip "$URI"; }

NBDC_CASES=(
    connect:nc_connect list:nc_list size-info-eq-go:nc_size_info_eq_go
    can-flush:nc_can_flush can-fua:nc_can_fua can-trim:nc_can_trim can-zero:nc_can_zero
    can-fast-zero:nc_can_fast_zero can-multi-conn:nc_can_multi_conn can-cache:nc_can_cache
    can-df:nc_can_df can-structured-reply:nc_can_structured_reply map-totals:nc_map_totals
    qemu-io-aligned:nc_qio_aligned qemu-io-unaligned:nc_qio_unaligned
    qemu-io-write-zeroes:nc_qio_write_zeroes qemu-io-write-zeroes-unmap:nc_qio_write_zeroes_unmap
    qemu-io-discard:nc_qio_discard qemu-io-fua:nc_qio_fua qemu-io-flush:nc_qio_flush
    qemu-io-aio-flush:nc_qio_aio_flush qemu-io-last-4k:nc_qio_last_4k qemu-io-32m:nc_qio_32m
    qemu-img-info:nc_qemu_img_info qemu-img-convert-compare:nc_qemu_img_convert_compare
    qemu-img-map:nc_qemu_img_map nbdcopy-both-ways:nc_nbdcopy_both_ways
    nbdsh-pread-past-end:nc_nbdsh_pread_past_end nbdsh-pwrite-past-end:nc_nbdsh_pwrite_past_end
    nbdsh-unknown-flag:nc_nbdsh_unknown_flag nbdsh-zero-length:nc_nbdsh_zero_length
    nbdsh-oversize-write:nc_nbdsh_oversize_write nbdsh-multi-conn:nc_nbdsh_multi_conn
    fio-verify:nc_fio_verify nbdfuse-ext4:nc_nbdfuse_ext4
)

it_suite --ref nbdkit/nbd-clients setup_nbdc_nbdkit 600 "${NBDC_CASES[@]}"
it_suite --ref qemu-nbd/nbd-clients setup_nbdc_qemu 600 "${NBDC_CASES[@]}"
it_suite rbagent/nbd-clients setup_nbdc_rbagent 600 "${NBDC_CASES[@]}"

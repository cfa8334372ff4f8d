# shellcheck shell=bash
# compression.test.sh — `net { compression lz4; }` (our extension) between two agents on loopback.
# Both sides configure it, so they agree on LZ4 in the handshake and alpha's writes and resync
# replies cross the replication connection compressed whenever that is smaller. Compressible
# (text) and incompressible (random) patterns are written on alpha; the bytes alpha's socket to
# beta had acknowledged (ss's tcp_info bytes_acked) show what crossed the wire; after a
# switch-over beta must serve exactly what was written. Reuses rp_synced & co. from
# replication.test.sh.

# shellcheck source=tests/integration/replication.test.sh
source "$IT_DIR/replication.test.sh"

CP_OPTIONS='net { protocol C; connect-int 1; ping-int 1; compression lz4; } disk { c-plan-ahead 0; resync-rate 400M; }'

setup_compression_suite() {
    require_built
    command -v ss > /dev/null || fail "ss (iproute2) is needed to measure the replication connection"
}

# cp_port NODE — NODE's replication port, from $RB_CONFIG.
cp_port() {
    awk -v node="$1" '$1 == "on" && $2 == node { inside = 1 }
        inside && $1 == "address" { sub(/;$/, "", $2); sub(/.*:/, "", $2); print $2; exit }' "$RB_CONFIG"
}

# cp_acked_bytes — bytes alpha sent to beta's replication port that beta's TCP acknowledged, on
# the current connection (alpha, the lower node-id, dials).
cp_acked_bytes() {
    local bytes
    bytes=$(ss -tinH state established "( dport = :$(cp_port beta) )" | grep -o 'bytes_acked:[0-9]*' | head -n 1)
    [[ -n $bytes ]] || fail "no established replication connection from alpha to beta's port $(cp_port beta)"
    echo "${bytes#bytes_acked:}"
}

cp_synced() {
    RB_RESOURCE_EXTRA=$CP_OPTIONS rp_synced
    grep -q "LZ4 compression agreed with the peer" "$TEST_DIR/agent-alpha.log" \
        || fail "alpha did not log the LZ4 agreement: $(grep -i -E 'lz4|compression' "$TEST_DIR/agent-alpha.log" | tail -n 3 | tr '\n' ' ')"
}

cp_writes_compressed_and_random() {
    cp_synced
    local before text_bytes random_bytes
    before=$(cp_acked_bytes)
    write_on "$URI_A" 0 8M text:cp-text
    text_bytes=$(( $(cp_acked_bytes) - before ))
    before=$(cp_acked_bytes)
    write_on "$URI_A" 16M 8M cp-random
    random_bytes=$(( $(cp_acked_bytes) - before ))
    echo "wire bytes for 8 MiB written: text $text_bytes, random $random_bytes"
    (( text_bytes < 4 * 1024 * 1024 )) || fail "8 MiB of text took $text_bytes bytes on the wire (want < 4 MiB)"
    (( random_bytes >= 8 * 1024 * 1024 )) || fail "8 MiB of random data took only $random_bytes bytes on the wire"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 0 8M text:cp-text
    verify_on "$URI_B" 16M 8M cp-random
    verify_on "$URI_B" 8M 8M zero
}

cp_resync_compressed() {
    cp_synced
    expect_ok rbadm beta disconnect r0
    wait_for "[[ \$(rbadm alpha cstate r0) != Connected ]]" 20 || fail "alpha did not notice the disconnect"
    write_on "$URI_A" 4M 8M text:cp-apart
    write_on "$URI_A" 32M 2M cp-apart-random
    expect_ok rbadm beta connect r0
    expect_ok rbadm alpha wait-sync r0 --timeout 60
    expect_ok rbadm beta wait-sync r0 --timeout 20
    grep -q "bitmap resync" "$TEST_DIR/agent-alpha.log" || fail "the reconnect did not resync by bitmap"
    # The whole new connection: handshake, bitmap and 10 MiB of resync replies, 8 MiB of them text.
    local sent
    sent=$(cp_acked_bytes)
    echo "wire bytes of the reconnect and resync of 8 MiB text + 2 MiB random: $sent"
    (( sent < 5 * 1024 * 1024 )) || fail "the resync took $sent bytes on the wire (want < 5 MiB)"
    switch_to beta alpha
    wait_nbd "$URI_B" 20 || fail "beta's export not reachable after the switch-over"
    verify_on "$URI_B" 4M 8M text:cp-apart
    verify_on "$URI_B" 32M 2M cp-apart-random
}

it_suite compression setup_compression_suite 600 \
    writes-compressed-and-random:cp_writes_compressed_and_random \
    resync-compressed:cp_resync_compressed

# shellcheck shell=bash
# security.test.sh — what an untrusted peer or local user can do to a running node: nothing.
# One agent (alpha, node-id 0) whose resource names a peer beta (node-id 1) with cram-hmac-alg and a
# shared-secret; beta is never started. A hostile client (rawpeer.py) speaks the peer framing over raw
# TCP to alpha's peer port: without the secret it can neither write (the backing disk's checksum is
# unchanged) nor read (no frame carrying data or state comes back); claiming a node-id that is not a
# configured peer is refused with a log line naming it; oversize and malformed frames drop the
# connection without the agent's memory growing. The control socket is mode 0600, owned by root, and
# the agent checks the caller's uid (SO_PEERCRED): a non-root rbadm gets a clear refusal either way.

setup_security_suite() { require_built; }

SEC_SECRET=not-known-to-the-attacker-42
SEC_OPTIONS="net { protocol C; cram-hmac-alg sha256; shared-secret \"$SEC_SECRET\"; connect-int 1; ping-int 1; } disk { c-plan-ahead 0; resync-rate 400M; }"

# sec_alpha — alpha's disk, config (beta configured, not running), agent, create-md, up. Sets
# PEER_A (alpha's peer address) and DISK_A.
sec_alpha() {
    DISK_A=$TEST_DIR/alpha.img
    make_disk "$DISK_A" 64M
    make_disk "$TEST_DIR/beta.img" 64M
    local port_a
    port_a=$(free_port)
    PEER_A=127.0.0.1:$port_a
    RB_RESOURCE_EXTRA=$SEC_OPTIONS write_config r0 \
        "alpha 0 $port_a $(free_port) $DISK_A" \
        "beta 1 $(free_port) $(free_port) $TEST_DIR/beta.img"
    start_agent alpha
    expect_ok rbadm alpha create-md r0
    expect_ok rbadm alpha up r0
}

rawpeer() { "$PYTHON" "$IT_DIR/rawpeer.py" "$@"; }

json() { printf '%s' "$1" | jq -r "$2"; } # json TEXT JQ

agent_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/${AGENT_PID[alpha]}/status"; }

disk_sha() { sha256sum "$DISK_A" | cut -d' ' -f1; }

# sec_reconnect — alpha's link to beta back to Connecting (a refused secret leaves it StandAlone, as DRBD).
sec_reconnect() {
    if [[ $(rbadm alpha cstate r0) == StandAlone ]]; then
        expect_ok rbadm alpha connect r0
    fi
    wait_for "[[ \$(rbadm alpha cstate r0) == Connecting ]]" 10 || fail "alpha's link to beta is not Connecting: $(rbadm alpha cstate r0)"
}

# --- cases ---------------------------------------------------------------------------------------

# Without the secret: Data frames (with and without a forged AuthResponse, and from a peer that does
# not authenticate at all) write nothing, and read requests return nothing.
sec_no_secret_no_access() {
    sec_alpha
    local before out attempt
    # Make the disk hold something worth reading: Primary for a moment, a pattern, back to Secondary.
    expect_ok rbadm alpha primary r0 --force
    local uri
    uri=$(nbd_uri "$(awk '/nbd-address/ { sub(/.*:/, ""); sub(/;/, ""); print; exit }' "$RB_CONFIG")" r0)
    wait_nbd "$uri" 20 || fail "alpha's export not reachable"
    expect_ok "$PYTHON" "$NBDTOOL" write "$uri" 0 1M secret-data
    wait_for "rbadm alpha secondary r0" 10 || expect_ok rbadm alpha secondary r0
    before=$(disk_sha)
    local forged
    forged=$(printf '%064d' 0) # a 32-byte HMAC-SHA256 made without the secret
    for attempt in "--response $forged" "--response none" "--no-auth-flag --response none"; do
        sec_reconnect
        # shellcheck disable=SC2086  # attempt holds several options
        out=$(rawpeer attack "$PEER_A" --sender 1 --receiver 0 --node beta $attempt \
            --data 0 65536 evil-1 --data 1048576 4096 evil-2 --read 0 65536) || fail "rawpeer attack failed: $out"
        echo "attack ($attempt): $out"
        assert_eq "$(json "$out" .closed)" true "alpha closed the unauthenticated connection ($attempt)"
        assert_eq "$(json "$out" .data_replies)" 0 "frames carrying data or state sent to an unauthenticated peer ($attempt): $(json "$out" '.received|join(",")')"
        assert_match "$(json "$out" '.received|join(",")')" '^(Features(,Hello(,AuthChallenge)?)?(,Disconnect)?)?$' "frames alpha sent before refusing ($attempt)"
    done
    assert_eq "$(disk_sha)" "$before" "sha256 of alpha's backing disk after three unauthenticated write attempts"
    local log=$TEST_DIR/agent-alpha.log
    assert_match "$(cat "$log")" 'authentication of peer failed \(wrong shared-secret\?\)' "log line for the forged response"
    assert_match "$(cat "$log")" 'peer does not authenticate but we have cram-hmac-alg' "log line for the peer without a secret"
    assert_match "$(cat "$log")" 'protocol error: Data is not allowed during Handshake' "log line for Data sent without answering the challenge"
    # The pattern is still there, untouched.
    expect_ok rbadm alpha primary r0
    wait_nbd "$uri" 20 || fail "alpha's export not reachable after the attacks"
    expect_ok "$PYTHON" "$NBDTOOL" verify "$uri" 0 1M secret-data
    # The real beta, with the secret, is let in: the refusals above were the secret's doing.
    sec_reconnect
    start_agent beta
    expect_ok rbadm beta create-md r0
    expect_ok rbadm beta up r0
    expect_ok rbadm alpha wait-connect r0 --timeout 20
    assert_match "$(cat "$log")" 'peer authenticated using sha256' "alpha's log line for beta's authentication"
    expect_ok rbadm beta wait-sync r0 --timeout 60
    assert_eq "$(rbadm beta dstate r0)" UpToDate/UpToDate "beta's disk states after the sync"
}

# A Hello claiming a node-id that is not a configured peer (or alpha's own) is refused at the
# listener, with the log line saying which node-id; one expecting another node-id is refused too.
sec_wrong_node_id() {
    sec_alpha
    local out id log=$TEST_DIR/agent-alpha.log
    local -A expected_line=(
        [7]="refused: unknown node-id 7, not a configured peer"
        [0]="dropped before its Hello: invalid Hello: Hello sender and receiver node-id are both 0"
    )
    for id in 7 0; do
        out=$(rawpeer attack "$PEER_A" --sender "$id" --receiver 0 --node mallory --response none --data 0 4096 evil) || fail "rawpeer failed: $out"
        echo "claiming node-id $id: $out"
        assert_eq "$(json "$out" .closed)" true "connection claiming node-id $id closed"
        assert_eq "$(json "$out" '.received|length')" 0 "frames sent to a peer claiming node-id $id"
        wait_for "grep -qF '${expected_line[$id]}' '$log'" 5 \
            || fail "no log line '${expected_line[$id]}': $(grep -iE 'refused|dropped' "$log" | tail -n 2 | tr '\n' ' ')"
    done
    out=$(rawpeer attack "$PEER_A" --sender 1 --receiver 5 --response none) || fail "rawpeer failed: $out"
    assert_eq "$(json "$out" .closed)" true "connection expecting node-id 5 closed"
    assert_eq "$(json "$out" .data_replies)" 0 "frames carrying data sent to a peer expecting node-id 5"
    wait_for "grep -q 'peer expects node-id 5, this node is node-id 0' '$log'" 5 || fail "no log line refusing a Hello for node-id 5"
    out=$(rawpeer attack "$PEER_A" --sender 1 --receiver 0 --resource other --response none) || fail "rawpeer failed: $out"
    assert_eq "$(json "$out" .closed)" true "connection for an unknown resource closed"
    wait_for "grep -q \"refused: unknown resource 'other'\" '$log'" 5 || fail "no log line refusing resource 'other'"
}

# Frame headers claiming huge payloads (before the Hello and after it) and malformed frames are
# refused from the header alone: the connection is dropped and the agent's memory stays bounded.
sec_oversize_and_malformed_frames() {
    sec_alpha
    local out rss_warm rss_after kind
    SEC_SENT_BYTES=0
    # Warm-up: the first refusals load and compile their code paths and size the GC heap (measured:
    # VmRSS rises for about 40 attempts, then stays flat).
    sec_oversize_round 20
    rss_warm=$(agent_rss_kib)
    SEC_SENT_BYTES=0
    sec_oversize_round 20
    for kind in magic crc flags short-hello; do
        out=$(rawpeer garbage "$PEER_A" --kind "$kind") || fail "rawpeer garbage failed: $out"
        assert_eq "$(json "$out" .closed)" true "connection with a malformed frame ($kind) closed"
        assert_eq "$(json "$out" '.received|length')" 0 "frames sent after a malformed frame ($kind)"
    done
    rss_after=$(agent_rss_kib)
    echo "agent VmRSS: ${rss_warm} KiB after 40 warm-up oversize frames, ${rss_after} KiB after 40 more" \
        "(their senders pushed $(( SEC_SENT_BYTES / 1048576 )) MiB before being cut off) and 4 malformed ones;" \
        "$(grep VmHWM "/proc/${AGENT_PID[alpha]}/status" | tr -s ' \t' ' ')"
    (( rss_after - rss_warm < 32 * 1024 )) || fail "agent VmRSS grew from ${rss_warm} KiB to ${rss_after} KiB"
    pid_alive "${AGENT_PID[alpha]}" || fail "rbagent died"
    expect_ok rbadm alpha status r0
}

# sec_oversize_round N — N times: a 4 GiB frame header before the Hello and one after it; each must
# close the connection long before the claimed payload could be buffered. Adds to SEC_SENT_BYTES.
sec_oversize_round() {
    local i hello out sent
    for ((i = 0; i < $1; i++)); do
        for hello in "" --hello; do
            [[ -n $hello ]] && sec_reconnect
            # shellcheck disable=SC2086  # empty or one option
            out=$(rawpeer oversize "$PEER_A" --length 0xFFFFFFF0 $hello --timeout 10) || fail "rawpeer oversize failed: $out"
            assert_eq "$(json "$out" .closed)" true "connection with a 4 GiB frame header ${hello:-before the Hello} closed"
            sent=$(json "$out" .sent_bytes)
            (( sent < 32 * 1024 * 1024 )) || fail "alpha took $sent bytes of a frame it must refuse from its header"
            SEC_SENT_BYTES=$(( SEC_SENT_BYTES + sent ))
        done
    done
    echo "oversize (last, ${hello:-before the Hello}): $out"
}

# The control socket: mode 0600, owned by root; a non-root rbadm is refused by the file mode with a
# clear message, and (socket opened up by root on purpose) by the agent's SO_PEERCRED check.
sec_control_socket_root_only() {
    # The socket's directory must be reachable by nobody for the second half (the case dir is 0700).
    SEC_SOCK_DIR=$(mktemp -d /tmp/rbsec.XXXXXX)
    track_dir "$SEC_SOCK_DIR"
    chmod 0711 "$SEC_SOCK_DIR"
    control_path() { printf '%s/%s.sock\n' "$SEC_SOCK_DIR" "$1"; }
    sec_alpha
    local sock out rc conf=$SEC_SOCK_DIR/rb.conf
    sock=$(control_path alpha)
    install -m 0644 "$RB_CONFIG" "$conf" # readable by nobody: rbadm reads the config before it connects
    assert_eq "$(stat -c '%a %U %G %F' "$sock")" "600 root root socket" "control socket mode, owner and type"
    as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp DOTNET_CLI_HOME=/tmp "$@"; }
    rc=0
    out=$(as_nobody "$RB_OUT/rbadm" -c "$conf" --node alpha --control "$sock" status r0 2>&1) || rc=$?
    echo "nobody, socket 0600: rc $rc: $out"
    [[ $rc -ne 0 ]] || fail "rbadm as nobody succeeded on a 0600 socket: $out"
    assert_match "$out" "permission denied on rbagent's control socket .*only root may use it" "rbadm's message to a non-root user"
    # The agent's own check: even a socket anyone may open only answers root.
    chmod 0666 "$sock"
    rc=0
    out=$(as_nobody "$RB_OUT/rbadm" -c "$conf" --node alpha --control "$sock" down r0 2>&1) || rc=$?
    echo "nobody, socket 0666: rc $rc: $out"
    chmod 0600 "$sock"
    [[ $rc -ne 0 ]] || fail "rbadm down as nobody succeeded: $out"
    assert_match "$out" 'permission denied: only root' "the agent's refusal (SO_PEERCRED)"
    assert_eq "$(rbadm alpha dstate r0)" Inconsistent/DUnknown "alpha's disk state after the refused down (still up)"
}

SECURITY_CASES=(
    no-secret-no-access:sec_no_secret_no_access:180
    wrong-node-id:sec_wrong_node_id
    oversize-and-malformed-frames:sec_oversize_and_malformed_frames:300
    control-socket-root-only:sec_control_socket_root_only
)
it_suite security/peer setup_security_suite 600 "${SECURITY_CASES[@]}"

#!/usr/bin/python3
"""nbdtool.py - libnbd helper for the integration tests.

Writes and verifies deterministic data patterns, holds a connection open, and runs the
nbdsh checks #22-#28 of nbd.md section 3 (set_strict_mode(0) cases libnbd normally refuses).
Uses python3-libnbd, so run it with /usr/bin/python3 (a pyenv python has no `nbd` module).

  nbdtool.py write  URI OFFSET LENGTH SEED     write pattern(SEED) then flush (sizes: 4096, 4K, 8M);
                                               SEED "zero" is zeroes, "text:NAME" compressible text
  nbdtool.py verify URI OFFSET LENGTH SEED     exit 1 naming the first differing offset
  nbdtool.py size   URI                        print the export size
  nbdtool.py hold   URI STATUSFILE             connect, write "connected" to STATUSFILE, then
                                               read every 0.2 s; on error write "dropped: ..."
  nbdtool.py check  URI NAME                   one of: pread-past-end pwrite-past-end
                                               unknown-flag zero-length oversize-write multi-conn
"""

import random
import sys
import time

import nbd

CHUNK_BYTES = 4 * 1024 * 1024


def pattern(seed, offset, length):
    """Deterministic bytes for [offset, offset+length) of a pattern named by seed.

    Generated per 4 MiB chunk index so any sub-range can be regenerated independently.
    The seed "zero" stands for zeroes (a range never written); a seed "text:NAME" gives
    text-like lines (compressible several-fold, as logs are) instead of random bytes."""
    if seed == "zero":
        return bytes(length)
    make = text_chunk if seed.startswith("text:") else random_chunk
    out = bytearray()
    pos = offset
    end = offset + length
    while pos < end:
        chunk_index = pos // CHUNK_BYTES
        chunk = make(seed, chunk_index)
        lo = pos - chunk_index * CHUNK_BYTES
        hi = min(CHUNK_BYTES, end - chunk_index * CHUNK_BYTES)
        out += chunk[lo:hi]
        pos = chunk_index * CHUNK_BYTES + hi
    return bytes(out)


def random_chunk(seed, chunk_index):
    return random.Random(f"{seed}:{chunk_index}").randbytes(CHUNK_BYTES)


def text_chunk(seed, chunk_index):
    """CHUNK_BYTES of lines like "text:a 3 00001234 key=90210 status=ok owner=alpha"."""
    rng = random.Random(f"{seed}:{chunk_index}")
    lines = []
    size = 0
    line_number = 0
    while size < CHUNK_BYTES:
        line = f"{seed} {chunk_index} {line_number:08d} key={rng.randrange(100000)} status=ok owner=alpha\n"
        lines.append(line)
        size += len(line)
        line_number += 1
    return "".join(lines).encode("ascii")[:CHUNK_BYTES]


def parse_size(text):
    """Bytes from "4096", "4K", "8M" or "1G" (binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h


def cmd_write(uri, offset, length, seed):
    h = connect(uri)
    pos = offset
    while pos < offset + length:
        n = min(CHUNK_BYTES - pos % CHUNK_BYTES, offset + length - pos)
        h.pwrite(pattern(seed, pos, n), pos)
        pos += n
    h.flush()
    h.shutdown()
    return 0


def cmd_verify(uri, offset, length, seed):
    h = connect(uri)
    pos = offset
    while pos < offset + length:
        n = min(CHUNK_BYTES - pos % CHUNK_BYTES, offset + length - pos)
        got = h.pread(n, pos)
        want = pattern(seed, pos, n)
        if got != want:
            first = next(i for i in range(n) if got[i] != want[i])
            print(f"verify: mismatch at offset {pos + first} (seed {seed}): "
                  f"got 0x{got[first]:02x}, want 0x{want[first]:02x}", file=sys.stderr)
            return 1
        pos += n
    h.shutdown()
    return 0


def cmd_hold(uri, status_path):
    h = connect(uri)
    with open(status_path, "w", encoding="utf-8") as f:
        f.write("connected\n")
    while True:
        time.sleep(0.2)
        try:
            h.pread(512, 0)
        except nbd.Error as e:
            with open(status_path, "w", encoding="utf-8") as f:
                f.write(f"dropped: {e}\n")
            return 0


def expect_error(what, fn, allowed):
    """Run fn, which must fail with one of the allowed errno names."""
    try:
        fn()
    except nbd.Error as e:
        if e.errno in allowed:
            return True
        print(f"{what}: got {e.errno} ({e}), want {'/'.join(allowed)}", file=sys.stderr)
        return False
    print(f"{what}: succeeded, want {'/'.join(allowed)}", file=sys.stderr)
    return False


def alive(h, what):
    try:
        h.pread(512, 0)
        return True
    except nbd.Error as e:
        print(f"{what}: connection not usable afterwards: {e}", file=sys.stderr)
        return False


def check_pread_past_end(uri):
    h = connect(uri)
    h.set_strict_mode(0)
    size = h.get_size()
    ok = expect_error("pread(512, size)", lambda: h.pread(512, size), ["EINVAL"])
    return ok and alive(h, "after pread past end")


def check_pwrite_past_end(uri):
    h = connect(uri)
    h.set_strict_mode(0)
    size = h.get_size()
    before = h.pread(512, size - 512)
    ok = expect_error("pwrite(4096, size-512)", lambda: h.pwrite(b"\x5a" * 4096, size - 512),
                      ["ENOSPC", "EINVAL"])
    if ok and alive(h, "after pwrite past end"):
        after = h.pread(512, size - 512)
        if after != before:
            # A server may write the in-range part before failing, but it must not
            # claim an error after a whole write; tolerate either, report it.
            print("note: the in-range 512 bytes were written before the error", file=sys.stderr)
        return True
    return False


def check_unknown_flag(uri):
    h = connect(uri)
    h.set_strict_mode(0)
    ok = expect_error("pread(512, 0, flags=0x40)", lambda: h.pread(512, 0, flags=0x40), ["EINVAL"])
    return ok and alive(h, "after unknown flag")


def check_zero_length(uri):
    h = connect(uri)
    h.set_strict_mode(0)
    try:
        h.pread(0, 0)
    except nbd.Error as e:
        print(f"note: zero-length read answered with {e.errno}", file=sys.stderr)
    return alive(h, "after zero-length read")


def check_oversize_write(uri):
    h = connect(uri)
    h.set_strict_mode(0)
    size = h.get_size()
    length = 48 * 1024 * 1024
    if size < length:
        print(f"export too small ({size}) for a 48 MiB write", file=sys.stderr)
        return False
    try:
        h.pwrite(b"\xa5" * length, 0)
        print("note: 48 MiB write accepted", file=sys.stderr)
    except nbd.Error as e:
        print(f"note: 48 MiB write failed with {e.errno}: {e}", file=sys.stderr)
    # Whatever happened to that connection, the server must still serve a new one.
    h2 = connect(uri)
    data = h2.pread(4096, 0)
    h2.shutdown()
    return len(data) == 4096


def check_multi_conn(uri):
    a, b, c = connect(uri), connect(uri), connect(uri)
    if not a.can_multi_conn():
        print("server does not advertise multi-conn", file=sys.stderr)
        return False
    offset = 5 * 1024 * 1024
    for seed in ("mc-1", "mc-2"):
        data = pattern(seed, offset, 65536)
        c.pread(65536, offset)  # c may have stale data in any cache; flush must cover it
        a.pwrite(data, offset)
        b.flush()
        got = c.pread(65536, offset)
        if got != data:
            print(f"read on C after write on A + flush on B returned old data ({seed})",
                  file=sys.stderr)
            return False
    for h in (a, b, c):
        h.shutdown()
    return True


CHECKS = {
    "pread-past-end": check_pread_past_end,
    "pwrite-past-end": check_pwrite_past_end,
    "unknown-flag": check_unknown_flag,
    "zero-length": check_zero_length,
    "oversize-write": check_oversize_write,
    "multi-conn": check_multi_conn,
}


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, uri = argv[1], argv[2]
    try:
        if cmd == "write":
            return cmd_write(uri, parse_size(argv[3]), parse_size(argv[4]), argv[5])
        if cmd == "verify":
            return cmd_verify(uri, parse_size(argv[3]), parse_size(argv[4]), argv[5])
        if cmd == "size":
            print(connect(uri).get_size())
            return 0
        if cmd == "hold":
            return cmd_hold(uri, argv[3])
        if cmd == "check":
            return 0 if CHECKS[argv[3]](uri) else 1
    except nbd.Error as e:
        print(f"nbdtool {cmd}: {e}", file=sys.stderr)
        return 1
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

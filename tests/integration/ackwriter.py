#!/usr/bin/python3
"""ackwriter.py - records which writes a server acknowledged, to check them on another node later.

A failover is only correct if every write the old Primary acknowledged is on the new one. The
writer keeps several 4 KiB writes in flight at random block offsets; each block's content names
itself (block number, a global sequence number, a random token; the rest is derived from those),
and a write is appended to the log only after the server acknowledged it (the log is flushed and
fsync'ed after every batch of acknowledgements). Two writes to the same block are never in flight
together, so a block's last acknowledged write is the one with the highest sequence number.

  ackwriter.py write URI LOG [--seconds N] [--inflight K] [--offset OFF] [--length LEN] [--seed S]
      Writes until SIGTERM/SIGINT or for N seconds, then waits for the writes in flight.
      Exit 0 when stopped as asked, 3 when the connection to the server was lost (a killed
      server), 1 when the server failed a write. Prints "acknowledged N writes, E failed".
  ackwriter.py check URI LOG
      For every block in LOG, its last acknowledged content must be on URI. A block may instead
      hold a later write of this writer that was never acknowledged (it was in flight when the
      writer stopped or the server died): that is counted, not missing.
      Prints "checked N acknowledged writes, M missing (B blocks, U holding a newer unacknowledged
      write)"; exit 0 when M is 0 and N > 0.

Sizes accept K/M/G suffixes. Uses python3-libnbd: run it with /usr/bin/python3.
"""

import os
import random
import signal
import struct
import sys
import time

import nbd

BLOCK_BYTES = 4096
MAGIC = b"ACKWRITE"
HEADER = struct.Struct(">8sQQQ")  # magic, block number, sequence, token


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def content(block, seq, token):
    """The 4 KiB a write of (block, seq, token) puts on the disk."""
    head = HEADER.pack(MAGIC, block, seq, token)
    fill = random.Random(f"{block}:{seq}:{token}").randbytes(BLOCK_BYTES - len(head))
    return head + fill


def parse_options(args, defaults):
    opts = dict(defaults)
    i = 0
    while i < len(args):
        key = args[i].lstrip("-")
        if key not in opts or i + 1 >= len(args):
            raise SystemExit(f"ackwriter: unknown or incomplete option {args[i]}\n{__doc__}")
        opts[key] = args[i + 1]
        i += 2
    return opts


class Writer:
    """Keeps K writes in flight on one connection and logs each one the server acknowledged."""

    def __init__(self, uri, log_path, inflight, first_block, block_count, rng):
        self.h = nbd.NBD()
        self.h.connect_uri(uri)
        self.log = open(log_path, "a", encoding="ascii")
        self.inflight = inflight
        self.first_block = first_block
        self.block_count = block_count
        self.rng = rng
        self.pending = {}  # cookie -> (block, seq, token, buffer)
        self.busy_blocks = set()
        self.next_seq = 1
        self.acked = 0
        self.failed = 0
        self.lost = None

    def submit(self):
        while len(self.pending) < self.inflight:
            block = self.first_block + self.rng.randrange(self.block_count)
            if block in self.busy_blocks:
                continue
            seq, token = self.next_seq, self.rng.getrandbits(64)
            self.next_seq += 1
            buf = nbd.Buffer.from_bytearray(bytearray(content(block, seq, token)))
            cookie = self.h.aio_pwrite(buf, block * BLOCK_BYTES)
            self.pending[cookie] = (block, seq, token, buf)
            self.busy_blocks.add(block)

    def reap(self):
        """Retires finished writes; the acknowledged ones go to the log (fsync'ed) before returning."""
        lines = []
        for cookie in list(self.pending):
            try:
                if not self.h.aio_command_completed(cookie):
                    continue
                block, seq, token, _ = self.pending[cookie]
                lines.append(f"{block} {seq} {token}\n")
                self.acked += 1
            except nbd.Error as e:
                self.failed += 1
                if self.lost is None and e.errno not in ("ENOTCONN", "ESHUTDOWN"):
                    print(f"ackwriter: write {self.pending[cookie][1]} failed: {e}", file=sys.stderr)
            block = self.pending.pop(cookie)[0]
            self.busy_blocks.discard(block)
        if lines:
            self.log.write("".join(lines))
            self.log.flush()
            os.fsync(self.log.fileno())

    def step(self, timeout_ms):
        try:
            self.h.poll(timeout_ms)
        except nbd.Error as e:
            self.lost = str(e)
        self.reap()

    def dead(self):
        return self.lost is not None or self.h.aio_is_dead() or self.h.aio_is_closed()


def cmd_write(uri, log_path, opts):
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    seed = opts["seed"] or f"{os.getpid()}:{time.time_ns()}"
    offset = parse_size(opts["offset"])
    w = Writer(uri, log_path, int(opts["inflight"]), offset // BLOCK_BYTES, 0, random.Random(seed))
    length = parse_size(opts["length"]) if opts["length"] else w.h.get_size() - offset
    w.block_count = length // BLOCK_BYTES
    if w.block_count < 2 * w.inflight:
        raise SystemExit(f"ackwriter: {length} bytes is too small for {w.inflight} writes in flight")
    deadline = time.monotonic() + float(opts["seconds"]) if opts["seconds"] else None
    while not stop["now"] and (deadline is None or time.monotonic() < deadline):
        try:
            w.submit()
        except nbd.Error as e:
            w.lost = str(e)
        w.step(100)
        if w.dead():
            break
    # Stopping: nothing new; collect the answers to what is in flight (not forever).
    drain_until = time.monotonic() + 30
    while w.pending and not w.dead() and time.monotonic() < drain_until:
        w.step(100)
    w.reap()
    print(f"acknowledged {w.acked} writes, {w.failed} failed"
          + (f"; connection lost: {w.lost or 'closed'}" if w.dead() else ""))
    if w.dead():
        return 3
    w.h.shutdown()
    return 1 if w.failed else 0


def read_log(log_path):
    """Last acknowledged (seq, token) per block, and the number of acknowledged writes."""
    last = {}
    count = 0
    with open(log_path, encoding="ascii") as f:
        for line in f:
            fields = line.split()
            if len(fields) != 3 or not line.endswith("\n"):
                continue  # a torn last line cannot be an acknowledged write: it was never complete
            block, seq, token = (int(x) for x in fields)
            count += 1
            if block not in last or last[block][0] < seq:
                last[block] = (seq, token)
    return last, count


def cmd_check(uri, log_path):
    last, count = read_log(log_path)
    h = nbd.NBD()
    h.connect_uri(uri)
    missing = newer = 0
    for block in sorted(last):
        seq, token = last[block]
        got = h.pread(BLOCK_BYTES, block * BLOCK_BYTES)
        if got == content(block, seq, token):
            continue
        magic, got_block, got_seq, got_token = HEADER.unpack_from(got)
        if magic == MAGIC and got_block == block and got_seq > seq and got == content(block, got_seq, got_token):
            newer += 1
            continue
        missing += 1
        if missing <= 5:
            what = f"seq {got_seq}" if magic == MAGIC and got_block == block else "other data"
            print(f"check: block {block} (offset {block * BLOCK_BYTES}) lacks acknowledged seq {seq}: holds {what}",
                  file=sys.stderr)
    h.shutdown()
    print(f"checked {count} acknowledged writes, {missing} missing "
          f"({len(last)} blocks, {newer} holding a newer unacknowledged write)")
    return 0 if missing == 0 and count > 0 else 1


def main(argv):
    if len(argv) < 4 or argv[1] not in ("write", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, uri, log_path = argv[1], argv[2], argv[3]
    try:
        if cmd == "write":
            opts = parse_options(argv[4:], {"seconds": "", "inflight": "16", "offset": "0", "length": "", "seed": ""})
            return cmd_write(uri, log_path, opts)
        return cmd_check(uri, log_path)
    except nbd.Error as e:
        print(f"ackwriter {cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/python3
"""ackwriter.py - records which writes a server acknowledged, to check them on another node later.

A failover is only correct if every write the old Primary acknowledged is on the new one. The
writer keeps several 4 KiB writes in flight at random block offsets; each block's content names
itself (block number, a global sequence number, a random token; the rest is derived from those),
and a write is appended to the log only after the server acknowledged it (the log is flushed and
fsync'ed after every batch of acknowledgements). Two writes to the same block are never in flight
together, so a block's last acknowledged write is the one with the highest sequence number.

  ackwriter.py write URI LOG [--seconds N] [--inflight K] [--offset OFF] [--length LEN] [--seed S]
                             [--flush-seconds F]
      Writes until SIGTERM/SIGINT or for N seconds, then waits for the writes in flight.
      Appends to LOG: a writer started on a LOG that already holds writes (an earlier writer,
      e.g. before a failover) numbers its writes after every sequence number in it, so one LOG
      can follow a volume across many writers. With --flush-seconds, an NBD FLUSH is sent every
      F seconds; when it completed, "durable N" is logged: the first N acknowledged writes of LOG
      are on every connected peer (protocol A acknowledges a write before the peer has it; a FLUSH
      waits for the peers under every protocol).
      Exit 0 when stopped as asked, 3 when the connection to the server was lost (a killed
      server), 1 when the server failed a write. Prints "acknowledged N writes, E failed".
  ackwriter.py check URI LOG [--durable-only] [--mark-durable]
      For every block in LOG, its last acknowledged content must be on URI. A block may instead
      hold a later write of this writer that was never acknowledged (it was in flight when the
      writer stopped or the server died): that is counted, not missing.
      --durable-only: a write logged after the last "durable N" need not be there (protocol A
      after the Primary died); the block must then hold its last durable write or a later one,
      and what it holds is logged ("holds BLOCK SEQ SHA256") as the block's content from now on.
      --mark-durable: when nothing is missing, log "durable N" (every write logged so far).
      Prints "checked N acknowledged writes, M missing (B blocks, U holding a newer unacknowledged
      write, L not durable and not kept)"; exit 0 when M is 0 and N > 0.

Sizes accept K/M/G suffixes. Uses python3-libnbd: run it with /usr/bin/python3.
"""

import hashlib
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
SEQ_GAP = 1 << 24  # between writers: more than one writer issues, above seqs it never logged


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
        if key in opts and isinstance(opts[key], bool):
            opts[key] = True
            i += 1
            continue
        if key not in opts or i + 1 >= len(args):
            raise SystemExit(f"ackwriter: unknown or incomplete option {args[i]}\n{__doc__}")
        opts[key] = args[i + 1]
        i += 2
    return opts


class Writer:
    """Keeps K writes in flight on one connection and logs each one the server acknowledged."""

    def __init__(self, uri, log_path, inflight, first_block, block_count, rng):
        state = read_log(log_path) if os.path.exists(log_path) else LogState()
        self.h = nbd.NBD()
        self.h.connect_uri(uri)
        self.log = open(log_path, "a", encoding="ascii")
        self.logged = state.count  # acknowledged writes in the log, this writer's included
        self.flush_cookie = None
        self.flush_covers = 0
        self.inflight = inflight
        self.first_block = first_block
        self.block_count = block_count
        self.rng = rng
        self.pending = {}  # cookie -> (block, seq, token, buffer)
        self.busy_blocks = set()
        self.next_seq = state.max_seq + SEQ_GAP if state.max_seq else 1
        self.log.write(f"begin {self.next_seq}\n")
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
                self.logged += 1
            except nbd.Error as e:
                self.failed += 1
                if self.lost is None and e.errno not in ("ENOTCONN", "ESHUTDOWN"):
                    print(f"ackwriter: write {self.pending[cookie][1]} failed: {e}", file=sys.stderr)
            block = self.pending.pop(cookie)[0]
            self.busy_blocks.discard(block)
        lines += self.reap_flush()
        if lines:
            self.log.write("".join(lines))
            self.log.flush()
            os.fsync(self.log.fileno())

    def flush(self):
        """FLUSH covering every write logged so far (reaped first); one at a time."""
        if self.flush_cookie is not None:
            return
        self.reap()
        self.flush_covers = self.logged
        self.flush_cookie = self.h.aio_flush()

    def reap_flush(self):
        if self.flush_cookie is None:
            return []
        try:
            if not self.h.aio_command_completed(self.flush_cookie):
                return []
            line = [f"durable {self.flush_covers}\n"]
        except nbd.Error as e:
            line = []
            if self.lost is None and e.errno not in ("ENOTCONN", "ESHUTDOWN"):
                print(f"ackwriter: flush failed: {e}", file=sys.stderr)
        self.flush_cookie = None
        return line

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
    flush_every = float(opts["flush-seconds"]) if opts["flush-seconds"] else None
    next_flush = time.monotonic() + flush_every if flush_every else None
    while not stop["now"] and (deadline is None or time.monotonic() < deadline):
        try:
            w.submit()
            if next_flush is not None and time.monotonic() >= next_flush:
                w.flush()
                next_flush = time.monotonic() + flush_every
        except nbd.Error as e:
            w.lost = str(e)
        w.step(100)
        if w.dead():
            break
    # Stopping: nothing new; collect the answers to what is in flight (not forever).
    drain_until = time.monotonic() + 30
    while (w.pending or w.flush_cookie is not None) and not w.dead() and time.monotonic() < drain_until:
        w.step(100)
    w.reap()
    print(f"acknowledged {w.acked} writes, {w.failed} failed"
          + (f"; connection lost: {w.lost or 'closed'}" if w.dead() else ""))
    if w.dead():
        return 3
    w.h.shutdown()
    return 1 if w.failed else 0


class Entry:
    """One acknowledged write of a block (ordinal: its place among the log's writes), or what a
    block was found to hold after writes that were not durable were lost (holds: its SHA-256)."""

    def __init__(self, ordinal, seq, token=0, holds=None):
        self.ordinal, self.seq, self.token, self.holds = ordinal, seq, token, holds

    def matches(self, block, got):
        if self.holds is not None:
            return hashlib.sha256(got).hexdigest() == self.holds
        return got == content(block, self.seq, self.token)


class LogState:
    """The log read back: each block's writes in order, the count of writes, the durable mark."""

    def __init__(self):
        self.history = {}  # block -> [Entry], oldest first; a "holds" line starts it afresh
        self.count = 0
        self.durable = 0
        self.max_seq = 0


def read_log(log_path):
    state = LogState()
    with open(log_path, encoding="ascii") as f:
        for line in f:
            fields = line.split()
            if not line.endswith("\n") or not fields:
                continue  # a torn last line cannot be an acknowledged write: it was never complete
            if fields[0] == "durable" and len(fields) == 2:
                state.durable = max(state.durable, int(fields[1]))
            elif fields[0] == "begin" and len(fields) == 2:
                state.max_seq = max(state.max_seq, int(fields[1]))
            elif fields[0] == "holds" and len(fields) == 4:
                block, seq = int(fields[1]), int(fields[2])
                state.history[block] = [Entry(-1, seq, holds=fields[3])]
            elif len(fields) == 3:
                block, seq, token = (int(x) for x in fields)
                state.history.setdefault(block, []).append(Entry(state.count, seq, token))
                state.count += 1
                state.max_seq = max(state.max_seq, seq)
    return state


def writer_seq(block, got):
    """The sequence number if GOT is a complete write of this writer to BLOCK, else None."""
    magic, got_block, got_seq, got_token = HEADER.unpack_from(got)
    if magic == MAGIC and got_block == block and got == content(block, got_seq, got_token):
        return got_seq
    return None


def holds_durable(block, history, durable, got):
    """Durable-only: GOT is the block's last durable write or a later one (acknowledged or not)."""
    base = max((i for i, e in enumerate(history) if e.ordinal < durable), default=None)
    if base is None:  # no durable write of this block: it holds what it held before (zeros) or one of its writes
        return got == bytes(BLOCK_BYTES) or writer_seq(block, got) is not None
    if any(e.matches(block, got) for e in history[base:]):
        return True
    seq = writer_seq(block, got)
    return seq is not None and seq > history[base].seq


def cmd_check(uri, log_path, opts):
    state = read_log(log_path)
    h = nbd.NBD()
    h.connect_uri(uri)
    missing = newer = dropped = 0
    holds = []
    for block in sorted(state.history):
        history = state.history[block]
        last = history[-1]
        got = h.pread(BLOCK_BYTES, block * BLOCK_BYTES)
        if last.matches(block, got):
            continue
        seq = writer_seq(block, got)
        if seq is not None and seq > last.seq:
            newer += 1
            continue
        if opts["durable-only"] and last.ordinal >= state.durable and holds_durable(block, history, state.durable, got):
            dropped += 1
            holds.append(f"holds {block} {seq or 0} {hashlib.sha256(got).hexdigest()}\n")
            continue
        missing += 1
        if missing <= 5:
            what = f"seq {seq}" if seq is not None else "other data"
            print(f"check: block {block} (offset {block * BLOCK_BYTES}) lacks acknowledged seq {last.seq}: holds {what}",
                  file=sys.stderr)
    h.shutdown()
    with open(log_path, "a", encoding="ascii") as log:
        log.write("".join(holds))
        if opts["mark-durable"] and missing == 0:
            log.write(f"durable {state.count}\n")
        log.flush()
        os.fsync(log.fileno())
    print(f"checked {state.count} acknowledged writes, {missing} missing "
          f"({len(state.history)} blocks, {newer} holding a newer unacknowledged write, "
          f"{dropped} not durable and not kept)")
    return 0 if missing == 0 and state.count > 0 else 1


def main(argv):
    if len(argv) < 4 or argv[1] not in ("write", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, uri, log_path = argv[1], argv[2], argv[3]
    try:
        if cmd == "write":
            opts = parse_options(argv[4:], {"seconds": "", "inflight": "16", "offset": "0", "length": "", "seed": "",
                                            "flush-seconds": ""})
            return cmd_write(uri, log_path, opts)
        return cmd_check(uri, log_path, parse_options(argv[4:], {"durable-only": False, "mark-durable": False}))
    except nbd.Error as e:
        print(f"ackwriter {cmd}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))

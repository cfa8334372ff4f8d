#!/usr/bin/env python3
"""nbdprobe.py — raw-socket NBD conformance probes (stdlib only).

Sends what libnbd refuses to send (reference/nbd.md section 3, R1-R9, plus a few more) and
checks the server's answers byte by byte:

  R1a unknown option -> NBD_REP_ERR_UNSUP, and the next option still works
  R1b NBD_OPT_ABORT -> NBD_REP_ACK
  R2  NBD_OPT_LIST with data -> NBD_REP_ERR_INVALID, stream stays in sync
  R3  unknown command -> EINVAL, stream in sync
  R4  write past the end -> ENOSPC, payload consumed (next request works)
  R5a read past the end -> EINVAL        R5b offset+length wrapping 2^64 -> EINVAL
  R5c read past the end with structured replies -> an error chunk, never a simple reply
  R6  unknown command flag -> EINVAL
  R7  128 pipelined writes then 128 pipelined reads: every cookie answered once, data right
  R7s the same with structured replies negotiated
  R8  NBD_CMD_DISC right behind 16 unacknowledged writes, 20 trials: every write lands
  R9  bad request magic -> the server disconnects
  R10 oversized write (33 MiB) -> error with payload consumed, or a clean disconnect, or
      success if the server allows it; the server still accepts new connections
  R11 unknown client flags in the handshake -> the server drops the connection
  R12 (only with --idle-timeout S) a client that sends nothing is dropped within S seconds

Usage: nbdprobe.py HOST PORT [EXPORT] [--only R3,R7] [--idle-timeout S] [--strict]
--strict requires ENOSPC (the spec's SHOULD) for R4; without it EINVAL is tolerated there.
Prints one PASS/FAIL line per probe; exits 1 if any probe failed. The export is overwritten
in its first 48 MiB.
"""

import os
import socket
import struct
import sys
import threading
import time

NBDMAGIC = b"NBDMAGIC"
IHAVEOPT = 0x49484156454F5054
OPT_REPLY_MAGIC = 0x3E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

FLAG_FIXED_NEWSTYLE = 1
FLAG_NO_ZEROES = 2

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY = 1, 2, 3, 6, 7, 8
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
REP_ERR_UNSUP, REP_ERR_INVALID = 0x80000001, 0x80000003
INFO_EXPORT, INFO_BLOCK_SIZE = 0, 3

CMD_READ, CMD_WRITE, CMD_DISC = 0, 1, 2
EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW = 1, 5, 12, 22, 28, 75

CHUNK_NONE, CHUNK_OFFSET_DATA, CHUNK_OFFSET_HOLE = 0, 1, 2
CHUNK_FLAG_DONE = 1

MIB = 1024 * 1024


class ProbeError(Exception):
    """A probe's expectation did not hold."""


class Disconnected(Exception):
    """The server closed (or reset) the connection."""


class Conn:
    """One NBD connection driven byte by byte."""

    def __init__(self, host, port, timeout_s=15.0):
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.structured = False
        self.size = None
        self.tflags = None
        self.block_size = None
        self.read_base = {}  # cookie -> offset of an outstanding READ

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                part = self.sock.recv(min(n - len(buf), 1 << 20))
            except (ConnectionResetError, BrokenPipeError) as e:
                raise Disconnected(str(e)) from e
            if not part:
                raise Disconnected(f"EOF after {len(buf)} of {n} bytes")
            buf += part
        return bytes(buf)

    def send(self, data):
        try:
            self.sock.sendall(data)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Disconnected(str(e)) from e

    def wait_eof(self, timeout_s):
        """True if the server closes the connection within timeout_s (discarding any data)."""
        self.sock.settimeout(timeout_s)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if not self.sock.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
        return False

    # --- handshake ----------------------------------------------------------------------

    def greeting(self):
        hello = self.recv_exact(18)
        magic, opt_magic, server_flags = struct.unpack(">8sQH", hello)
        if magic != NBDMAGIC or opt_magic != IHAVEOPT:
            raise ProbeError(f"not a fixed-newstyle server: {hello!r}")
        if not server_flags & FLAG_FIXED_NEWSTYLE:
            raise ProbeError("server lacks NBD_FLAG_FIXED_NEWSTYLE")
        return server_flags

    def handshake(self, client_flags=None):
        server_flags = self.greeting()
        if client_flags is None:
            client_flags = FLAG_FIXED_NEWSTYLE | (server_flags & FLAG_NO_ZEROES)
        self.send(struct.pack(">I", client_flags))

    def send_opt(self, opt, data=b""):
        self.send(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)

    def recv_opt_reply(self):
        magic, opt, rtype, length = struct.unpack(">QIII", self.recv_exact(20))
        if magic != OPT_REPLY_MAGIC:
            raise ProbeError(f"bad option reply magic 0x{magic:x}")
        return opt, rtype, self.recv_exact(length)

    def structured_reply(self):
        self.send_opt(OPT_STRUCTURED_REPLY)
        _, rtype, _ = self.recv_opt_reply()
        if rtype != REP_ACK:
            raise ProbeError(f"NBD_OPT_STRUCTURED_REPLY answered 0x{rtype:x}")
        self.structured = True

    def go(self, export):
        name = export.encode()
        self.send_opt(OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">HH", 1, INFO_BLOCK_SIZE))
        while True:
            _, rtype, data = self.recv_opt_reply()
            if rtype == REP_ACK:
                break
            if rtype & 0x80000000:
                raise ProbeError(f"NBD_OPT_GO refused (0x{rtype:x}): {data[4:]!r}")
            if rtype == REP_INFO:
                (info,) = struct.unpack(">H", data[:2])
                if info == INFO_EXPORT:
                    self.size, self.tflags = struct.unpack(">QH", data[2:12])
                elif info == INFO_BLOCK_SIZE:
                    self.block_size = struct.unpack(">III", data[2:14])
        if self.size is None:
            raise ProbeError("NBD_OPT_GO ended without NBD_INFO_EXPORT")

    # --- transmission -------------------------------------------------------------------

    @staticmethod
    def request(cmd, offset, length, cookie, flags=0, magic=REQUEST_MAGIC):
        return struct.pack(">IHHQQI", magic, flags, cmd, cookie, offset & 0xFFFFFFFFFFFFFFFF, length)

    def recv_reply(self, read_lengths):
        """Next complete reply: (cookie, error, data). read_lengths maps the cookies of
        successful-read candidates to their lengths (a simple reply carries no length)."""
        (magic,) = struct.unpack(">I", self.recv_exact(4))
        if magic == SIMPLE_REPLY_MAGIC:
            error, cookie = struct.unpack(">IQ", self.recv_exact(12))
            data = b""
            if error == 0 and cookie in read_lengths:
                if self.structured:
                    raise ProbeError("simple reply to a READ after structured replies were negotiated")
                data = self.recv_exact(read_lengths[cookie])
            return cookie, error, data
        if magic == STRUCTURED_REPLY_MAGIC:
            return self._recv_structured(read_lengths)
        raise ProbeError(f"bad reply magic 0x{magic:08x}")

    def _recv_structured(self, read_lengths):
        first = True
        error = 0
        buf = None
        while True:
            if not first:
                (magic,) = struct.unpack(">I", self.recv_exact(4))
                if magic != STRUCTURED_REPLY_MAGIC:
                    raise ProbeError(f"bad chunk magic 0x{magic:08x}")
            first = False
            flags, ctype, cookie, length = struct.unpack(">HHQI", self.recv_exact(16))
            payload = self.recv_exact(length)
            if cookie in read_lengths and buf is None:
                buf = bytearray(read_lengths[cookie])
            if ctype == CHUNK_OFFSET_DATA:
                (offset,) = struct.unpack(">Q", payload[:8])
                start = offset - self.read_base[cookie]
                if start < 0 or start + len(payload) - 8 > len(buf):
                    raise ProbeError(f"data chunk at {offset} outside the request")
                buf[start:start + len(payload) - 8] = payload[8:]
            elif ctype == CHUNK_OFFSET_HOLE:
                pass  # buf is zero-initialised
            elif ctype & 0x8000:
                (error,) = struct.unpack(">I", payload[:4])
            elif ctype != CHUNK_NONE:
                raise ProbeError(f"unexpected chunk type {ctype}")
            if flags & CHUNK_FLAG_DONE:
                return cookie, error, bytes(buf) if (buf is not None and error == 0) else b""

    def read(self, offset, length, cookie=1, flags=0):
        self.read_base[cookie] = offset
        self.send(self.request(CMD_READ, offset, length, cookie, flags))
        got_cookie, error, data = self.recv_reply({cookie: length})
        if got_cookie != cookie:
            raise ProbeError(f"reply cookie {got_cookie:#x}, want {cookie:#x}")
        return error, data

    def write(self, offset, data, cookie=2, flags=0):
        self.send(self.request(CMD_WRITE, offset, len(data), cookie, flags) + data)
        got_cookie, error, _ = self.recv_reply({})
        if got_cookie != cookie:
            raise ProbeError(f"reply cookie {got_cookie:#x}, want {cookie:#x}")
        return error


class Prober:
    def __init__(self, host, port, export, idle_timeout_s, strict):
        self.host, self.port, self.export = host, port, export
        self.strict = strict
        self.idle_timeout_s = idle_timeout_s

    def open(self, structured=False):
        c = Conn(self.host, self.port)
        c.handshake()
        if structured:
            c.structured_reply()
        c.go(self.export)
        return c

    def check_in_sync(self, c, what):
        """A write then a read of the same bytes must round-trip on this connection."""
        data = os.urandom(4096)
        err = c.write(40 * MIB, data, cookie=0xAAAA)
        if err:
            raise ProbeError(f"{what}: follow-up write failed with {err}")
        err, got = c.read(40 * MIB, 4096, cookie=0xBBBB)
        if err or got != data:
            raise ProbeError(f"{what}: follow-up read error {err} or wrong data")

    # --- probes ---------------------------------------------------------------------------

    def r1a_unknown_option(self):
        c = Conn(self.host, self.port)
        c.handshake()
        c.send_opt(0x7FFE, b"hello")
        opt, rtype, _ = c.recv_opt_reply()
        if rtype != REP_ERR_UNSUP or opt != 0x7FFE:
            raise ProbeError(f"unknown option answered type 0x{rtype:x} for opt 0x{opt:x}, want ERR_UNSUP")
        c.go(self.export)
        self.check_in_sync(c, "after ERR_UNSUP")
        c.close()
        return "ERR_UNSUP, then NBD_OPT_GO works"

    def r1b_abort(self):
        c = Conn(self.host, self.port)
        c.handshake()
        c.send_opt(OPT_ABORT)
        _, rtype, _ = c.recv_opt_reply()
        c.close()
        if rtype != REP_ACK:
            raise ProbeError(f"NBD_OPT_ABORT answered 0x{rtype:x}, want ACK")
        return "ACK"

    def r2_list_with_data(self):
        c = Conn(self.host, self.port)
        c.handshake()
        c.send_opt(OPT_LIST, b"junk")
        _, rtype, _ = c.recv_opt_reply()
        if rtype != REP_ERR_INVALID:
            raise ProbeError(f"LIST with data answered 0x{rtype:x}, want ERR_INVALID")
        c.send_opt(OPT_LIST)
        names = []
        while True:
            _, rtype, data = c.recv_opt_reply()
            if rtype == REP_ACK:
                break
            if rtype != REP_SERVER:
                raise ProbeError(f"LIST answered 0x{rtype:x}")
            (n,) = struct.unpack(">I", data[:4])
            names.append(data[4:4 + n].decode(errors="replace"))
        if self.export not in names:
            raise ProbeError(f"export {self.export!r} not in LIST {names}")
        c.go(self.export)
        c.close()
        return f"ERR_INVALID, then LIST {names} and GO"

    def r3_unknown_command(self):
        c = self.open()
        c.send(c.request(0x55, 0, 0, 7))
        _, err, _ = c.recv_reply({})
        if err != EINVAL:
            raise ProbeError(f"unknown command answered error {err}, want EINVAL")
        self.check_in_sync(c, "after unknown command")
        c.close()
        return "EINVAL"

    def r4_write_past_end(self):
        c = self.open()
        err = c.write(c.size - 512, b"\x5a" * 4096, cookie=9)
        allowed = (ENOSPC,) if self.strict else (ENOSPC, EINVAL)
        if err not in allowed:
            raise ProbeError(f"write past end answered {err}, want {' or '.join(map(str, allowed))}")
        self.check_in_sync(c, "after write past end (payload not consumed?)")
        c.close()
        note = "" if err == ENOSPC else " (EINVAL: the spec says SHOULD be ENOSPC; tolerated without --strict)"
        return f"error {err}, payload consumed{note}"

    def r5a_read_past_end(self):
        c = self.open()
        err, _ = c.read(c.size, 512, cookie=3)
        if err != EINVAL:
            raise ProbeError(f"read at size answered {err}, want EINVAL")
        self.check_in_sync(c, "after read past end")
        c.close()
        return "EINVAL"

    def r5b_offset_wrap(self):
        c = self.open()
        err, _ = c.read((1 << 64) - 512, 1024, cookie=4)
        if err != EINVAL:
            raise ProbeError(f"read wrapping 2^64 answered {err}, want EINVAL")
        self.check_in_sync(c, "after wrapping read")
        c.close()
        return "EINVAL"

    def r5c_structured_read_past_end(self):
        c = self.open(structured=True)
        err, _ = c.read(c.size, 512, cookie=5)
        if err != EINVAL:
            raise ProbeError(f"structured read past end answered {err}, want EINVAL")
        self.check_in_sync(c, "after structured read past end")
        c.close()
        return "error chunk EINVAL"

    def r6_unknown_flag(self):
        c = self.open()
        err, _ = c.read(0, 512, cookie=6, flags=0x8000)
        if err != EINVAL:
            raise ProbeError(f"read with flag 0x8000 answered {err}, want EINVAL")
        self.check_in_sync(c, "after unknown flag")
        c.close()
        return "EINVAL"

    def r7s_pipeline_structured(self):
        return self.r7_pipeline(structured=True)

    def r7_pipeline(self, structured=False):
        c = self.open(structured=structured)
        n, bs, base = 128, 4096, 8 * MIB
        blocks = [os.urandom(bs) for _ in range(n)]
        cookies = [int.from_bytes(os.urandom(8), "big") | 1 for _ in range(n)]
        c.send(b"".join(c.request(CMD_WRITE, base + i * bs, bs, cookies[i]) + blocks[i] for i in range(n)))
        seen = set()
        for _ in range(n):
            cookie, err, _ = c.recv_reply({})
            if cookie not in cookies or cookie in seen or err:
                raise ProbeError(f"write reply cookie {cookie:#x} (seen: {cookie in seen}) error {err}")
            seen.add(cookie)
        read_cookies = [ck ^ 0xFF00 for ck in cookies]
        for i in range(n):
            c.read_base[read_cookies[i]] = base + i * bs
        c.send(b"".join(c.request(CMD_READ, base + i * bs, bs, read_cookies[i]) for i in range(n)))
        lengths = {ck: bs for ck in read_cookies}
        index = {ck: i for i, ck in enumerate(read_cookies)}
        for _ in range(n):
            cookie, err, data = c.recv_reply(lengths)
            if cookie not in index or err:
                raise ProbeError(f"read reply cookie {cookie:#x} error {err}")
            if data != blocks[index.pop(cookie)]:
                raise ProbeError("read data does not match the pipelined write")
        c.close()
        return f"{n} writes and {n} reads, cookies and data right"

    def r8_disc_after_writes(self, trials=20, n=16):
        lost = []
        for t in range(trials):
            base = 16 * MIB + t * n * 4096
            blocks = [os.urandom(4096) for _ in range(n)]
            c = self.open()
            c.send(b"".join(c.request(CMD_WRITE, base + i * 4096, 4096, 100 + i) + blocks[i] for i in range(n))
                   + c.request(CMD_DISC, 0, 0, 999))
            if not c.wait_eof(15):
                raise ProbeError(f"trial {t}: server did not close within 15 s after DISC")
            c.close()
            r = self.open()
            err, data = r.read(base, n * 4096, cookie=1)
            r.close()
            if err:
                raise ProbeError(f"trial {t}: read back failed with {err}")
            bad = [i for i in range(n) if data[i * 4096:(i + 1) * 4096] != blocks[i]]
            if bad:
                lost.append(f"trial {t}: {len(bad)} of {n} writes lost")
        if lost:
            raise ProbeError("; ".join(lost))
        return f"{trials} trials x {n} writes all landed"

    def r9_bad_magic(self):
        c = self.open()
        c.send(c.request(CMD_READ, 0, 512, 1, magic=0xDEADBEEF))
        if not c.wait_eof(10):
            raise ProbeError("server kept the connection after a bad request magic")
        c.close()
        return "disconnected"

    def r10_oversize_write(self):
        c = self.open()
        length = 33 * MIB
        payload = os.urandom(length)
        sent = {}

        def sender():
            try:
                c.sock.sendall(c.request(CMD_WRITE, 0, length, 77) + payload)
                sent["ok"] = True
            except OSError as e:
                sent["error"] = e

        th = threading.Thread(target=sender, daemon=True)
        th.start()
        c.sock.settimeout(30)
        try:
            cookie, err, _ = c.recv_reply({})
            th.join(30)
            if cookie != 77:
                raise ProbeError(f"reply cookie {cookie:#x}, want 0x4d")
            if err == 0:
                got = self.open()
                e2, data = got.read(0, 4096, cookie=2)
                got.close()
                if e2 or data != payload[:4096]:
                    raise ProbeError("33 MiB write acknowledged but its data is not there")
                outcome = "accepted (server allows 33 MiB)"
            else:
                self.check_in_sync(c, f"after oversize write error {err}")
                outcome = f"error {err}, payload consumed"
        except Disconnected:
            outcome = "clean disconnect"
        c.close()
        probe = self.open()
        err, _ = probe.read(0, 512, cookie=3)
        probe.close()
        if err:
            raise ProbeError(f"new connection after the oversize write: read failed {err}")
        bs = f", advertised block sizes {c.block_size}" if c.block_size else ""
        return outcome + ", server still serving" + bs

    def r11_bad_client_flags(self):
        c = Conn(self.host, self.port)
        c.handshake(client_flags=FLAG_FIXED_NEWSTYLE | 0x80000000)
        try:
            c.send_opt(OPT_LIST)
        except Disconnected:
            return "dropped"
        if not c.wait_eof(10):
            raise ProbeError("server kept the connection after unknown client flags")
        c.close()
        return "dropped"

    def r12_idle_handshake(self):
        c = Conn(self.host, self.port, timeout_s=self.idle_timeout_s + 5)
        c.greeting()
        start = time.monotonic()
        if not c.wait_eof(self.idle_timeout_s + 3):
            raise ProbeError(f"silent client still connected after {self.idle_timeout_s + 3} s")
        return f"dropped after {time.monotonic() - start:.1f} s"


PROBES = [
    ("R1a", "unknown option -> ERR_UNSUP, next option works", "r1a_unknown_option"),
    ("R1b", "NBD_OPT_ABORT -> ACK", "r1b_abort"),
    ("R2", "LIST with data -> ERR_INVALID, in sync", "r2_list_with_data"),
    ("R3", "unknown command -> EINVAL", "r3_unknown_command"),
    ("R4", "write past end -> ENOSPC, payload consumed", "r4_write_past_end"),
    ("R5a", "read past end -> EINVAL", "r5a_read_past_end"),
    ("R5b", "offset+length wrapping 2^64 -> EINVAL", "r5b_offset_wrap"),
    ("R5c", "structured read past end -> error chunk", "r5c_structured_read_past_end"),
    ("R6", "unknown command flag -> EINVAL", "r6_unknown_flag"),
    ("R7", "128 pipelined requests", "r7_pipeline"),
    ("R7s", "128 pipelined requests with structured replies", "r7s_pipeline_structured"),
    ("R8", "DISC behind 16 unacknowledged writes, 20 trials", "r8_disc_after_writes"),
    ("R9", "bad request magic -> disconnect", "r9_bad_magic"),
    ("R10", "33 MiB write -> error+consumed or clean drop; still serving", "r10_oversize_write"),
    ("R11", "unknown client flags -> dropped", "r11_bad_client_flags"),
    ("R12", "silent client dropped by the handshake timeout", "r12_idle_handshake"),
]


def main(argv):
    args, only, idle, strict = [], None, None, False
    it = iter(argv[1:])
    for a in it:
        if a == "--only":
            only = set(next(it).split(","))
        elif a == "--strict":
            strict = True
        elif a == "--idle-timeout":
            idle = float(next(it))
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            args.append(a)
    if len(args) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    prober = Prober(args[0], int(args[1]), args[2] if len(args) == 3 else "", idle, strict)
    failed = ran = 0
    for pid, title, method in PROBES:
        if only is not None and pid not in only:
            continue
        if pid == "R12" and idle is None:
            continue
        ran += 1
        try:
            detail = getattr(prober, method)()
            print(f"PASS {pid} {title}: {detail}", flush=True)
        except (ProbeError, Disconnected, OSError) as e:
            failed += 1
            print(f"FAIL {pid} {title}: {type(e).__name__}: {e}", flush=True)
    if ran == 0:
        print("no probe selected", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

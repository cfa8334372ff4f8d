#!/usr/bin/env python3
"""rawpeer.py — a hostile peer for the security tests: speaks the Redundancy.Block peer framing
(src/engine/Peers/Protocol/FrameHeader.cs: 20-byte big-endian header with a CRC32C) over raw TCP,
without the shared secret, and reports what the node answered.

  rawpeer.py attack HOST:PORT --sender ID --receiver ID [--resource r0] [--node NAME]
             [--no-auth-flag] [--response HEX|none] [--data OFFSET LENGTH SEED]... [--read OFFSET LENGTH]...
      Features, Hello, (a forged AuthResponse), ProtocolSettings-free data path attempts: Data frames
      carrying a pattern and DataRequest/RsDataRequest frames. Then reads until the node closes (or
      --timeout). Prints one JSON line: {"closed": bool, "received": [type names], "payload_bytes": N,
      "data_replies": N}.
  rawpeer.py oversize HOST:PORT --length N [--hello ...same identity options]
      A frame header claiming an N-byte payload (after a valid Features and Hello with --hello), then
      keeps sending filler; prints {"closed": bool, "sent_bytes": N, "seconds": S}.
  rawpeer.py garbage HOST:PORT --kind magic|crc|flags|short-hello
      One malformed frame; prints {"closed": bool, "received": [...]}.
"""
import argparse
import json
import random
import socket
import struct
import sys
import time

MAGIC = 0x52425046
TYPES = {
    0x0001: "Features", 0x0002: "Hello", 0x0003: "AuthChallenge", 0x0004: "AuthResponse",
    0x0005: "ProtocolSettings", 0x0006: "ProtocolUpdate", 0x0010: "Sizes", 0x0011: "Uuids", 0x0012: "State",
    0x0013: "StateChangeRequest", 0x0014: "StateChangeReply", 0x0015: "SyncUuid", 0x0016: "StateChangeAbort",
    0x0020: "Data", 0x0021: "Ack", 0x0022: "Barrier", 0x0023: "BarrierAck", 0x0024: "OutOfSync",
    0x0025: "DataRequest", 0x0026: "DataReply", 0x0027: "NegDReply", 0x0030: "Ping", 0x0031: "PingAck",
    0x0040: "BitmapChunk", 0x0050: "RsDataRequest", 0x0051: "RsDataReply", 0x0052: "RsWriteAck",
    0x0060: "OvRequest", 0x0061: "OvReply", 0x0070: "Disconnect",
}
# Frames that would carry disk contents (or facts about them) back to an unauthenticated peer.
DATA_BEARING = {"DataReply", "RsDataReply", "OvReply", "BitmapChunk", "Sizes", "Uuids", "State"}
AUTHENTICATION = 1 << 31


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def header(msg_type, length, volume=0, flags=0, magic=MAGIC, bad_crc=False):
    head = struct.pack(">IHHIHH", magic, msg_type, volume, length, flags, 0)
    crc = crc32c(head) ^ (1 if bad_crc else 0)
    return head + struct.pack(">I", crc)


def frame(msg_type, payload, volume=0):
    return header(msg_type, len(payload), volume) + payload


def text(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def features(auth):
    return frame(0x0001, struct.pack(">HHIII", 1, 1, AUTHENTICATION if auth else 0, 1 << 20, 0))


def hello(sender, receiver, resource, node):
    return frame(0x0002, struct.pack(">BBH", sender, receiver, 0) + text(resource) + text(node))


def pattern(length, seed):
    return random.Random(seed).randbytes(length)


def data_frame(offset, length, seed, request_id):
    fixed = struct.pack(">QQQII", offset, request_id, request_id, length, 32) + bytes(8)  # SendWriteAck
    return frame(0x0020, fixed + pattern(length, seed))


def read_request(msg_type, offset, length, request_id):
    return frame(msg_type, struct.pack(">QQII", offset, request_id, length, 0))


def connect(address):
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def drain(sock, timeout):
    """Reads frames until the node closes or `timeout` passes: (closed, [type names], payload bytes)."""
    sock.settimeout(0.5)
    buf = b""
    received, payload_bytes, closed = [], 0, False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        buf += chunk
        while len(buf) >= 20:
            _, msg_type, _, length, _, _, _ = struct.unpack(">IHHIHHI", buf[:20])
            if len(buf) < 20 + length:
                break
            received.append(TYPES.get(msg_type, hex(msg_type)))
            payload_bytes += length
            buf = buf[20 + length:]
    return closed, received, payload_bytes


def send_all(sock, frames):
    for f in frames:
        try:
            sock.sendall(f)
        except (ConnectionResetError, BrokenPipeError):
            return False
    return True


def cmd_attack(args):
    sock = connect(args.address)
    frames = [features(not args.no_auth_flag), hello(args.sender, args.receiver, args.resource, args.node)]
    if args.response != "none":
        hmac = bytes.fromhex(args.response) if args.response else bytes(32)
        frames.append(frame(0x0004, bytes([len(hmac)]) + hmac))
    for i, (offset, length, seed) in enumerate(args.data or []):
        frames.append(data_frame(int(offset), int(length), seed, 100 + i))
    for i, (offset, length) in enumerate(args.read or []):
        frames.append(read_request(0x0025, int(offset), int(length), 200 + i))
        frames.append(read_request(0x0050, int(offset), int(length), 300 + i))
    send_all(sock, frames)
    closed, received, payload_bytes = drain(sock, args.timeout)
    sock.close()
    print(json.dumps({"closed": closed, "received": received, "payload_bytes": payload_bytes,
                      "data_replies": sum(1 for r in received if r in DATA_BEARING)}))


def cmd_oversize(args):
    sock = connect(args.address)
    start = time.monotonic()
    if args.hello:
        sock.sendall(features(True) + hello(args.sender, args.receiver, args.resource, args.node))
    sock.sendall(header(0x0020 if args.hello else 0x0001, args.length))
    sent = 0
    filler = bytes(65536)
    closed = False
    sock.settimeout(1)
    while time.monotonic() - start < args.timeout and sent < args.send_max:
        try:
            sock.sendall(filler)
            sent += len(filler)
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            closed = True
            break
    if not closed:
        closed, _, _ = drain(sock, 2)
    sock.close()
    print(json.dumps({"closed": closed, "sent_bytes": sent, "seconds": round(time.monotonic() - start, 2)}))


def cmd_garbage(args):
    sock = connect(args.address)
    if args.kind == "magic":
        data = header(0x0001, 16, magic=0xDEADBEEF) + bytes(16)
    elif args.kind == "crc":
        data = header(0x0001, 16, bad_crc=True) + bytes(16)
    elif args.kind == "flags":
        data = header(0x0001, 16, flags=0x8000) + bytes(16)
    else:  # a Hello whose name length runs past the payload
        data = features(True) + frame(0x0002, struct.pack(">BBH", 1, 0, 0) + struct.pack(">H", 60000) + b"r0")
    send_all(sock, [data])
    closed, received, _ = drain(sock, args.timeout)
    sock.close()
    print(json.dumps({"closed": closed, "received": received}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def identity(sp):
        sp.add_argument("address")
        sp.add_argument("--sender", type=int, default=1)
        sp.add_argument("--receiver", type=int, default=0)
        sp.add_argument("--resource", default="r0")
        sp.add_argument("--node", default="beta")
        sp.add_argument("--timeout", type=float, default=8)

    a = sub.add_parser("attack")
    identity(a)
    a.add_argument("--no-auth-flag", action="store_true")
    a.add_argument("--response", default="")
    a.add_argument("--data", nargs=3, action="append", metavar=("OFFSET", "LENGTH", "SEED"))
    a.add_argument("--read", nargs=2, action="append", metavar=("OFFSET", "LENGTH"))
    o = sub.add_parser("oversize")
    identity(o)
    o.add_argument("--length", type=lambda s: int(s, 0), required=True)
    o.add_argument("--hello", action="store_true")
    o.add_argument("--send-max", type=int, default=64 << 20)
    g = sub.add_parser("garbage")
    identity(g)
    g.add_argument("--kind", choices=["magic", "crc", "flags", "short-hello"], required=True)
    args = p.parse_args()
    {"attack": cmd_attack, "oversize": cmd_oversize, "garbage": cmd_garbage}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())

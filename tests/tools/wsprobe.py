#!/usr/bin/env python3
"""wsprobe: a raw WebSocket client for tests that must send what a normal
client cannot (oversize, binary or invalid UTF-8 frames, a reader that stalls).

usage: wsprobe.py URL [--subprotocol P] [--header 'K: V']... [--timeout S]
                  [--rcvbuf BYTES] ACTION...

Actions, run in order:
  text:STRING     send a (masked) text frame
  textfile:PATH   send the file's contents as one text frame
  big:N[:ROOM]    send a publish of exactly N bytes, body padded with x
  binary:HEX      send a binary frame
  badutf8         send a text frame that is not valid UTF-8
  recv            read one message and print it: its text, "binary HEX",
                  or "close CODE REASON"
  recvuntil:SUB   read and print messages until a text one contains SUB
  expectclose     read and print messages until a close frame; exit 0 there,
                  exit 1 if the connection ends without one
  stall:SECONDS   stop reading for that long (a slow consumer); with
                  --rcvbuf, the receive buffer is enlarged afterwards
  stalluntil:PATH the same, until the file PATH exists (at most 60 s)
  ping            send a ping, wait for its pong, print "pong"
  close[:CODE]    send a close frame (default 1000) and wait for the reply
Server pings are answered while reading. After the last action the probe
closes with 1000.

Exit status: 0 ok, 1 connection ended or expectation not met, 2 handshake
failed (prints "http CODE"), 3 a read or write timed out, 64 usage.
"""
import argparse
import base64
import hashlib
import os
import socket
import struct
import sys
import time
import urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class Ended(Exception):
    """The TCP connection ended."""


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def die(status, msg):
    sys.stderr.write("wsprobe: %s\n" % msg)
    sys.exit(status)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()  # bytes read, not yet used from pos on
        self.pos = 0
        self.closed = False  # a close frame was received
        self.small_rcvbuf = False  # --rcvbuf was given

    def read(self, n):
        while len(self.buf) - self.pos < n:
            try:
                chunk = self.sock.recv(max(65536, n - len(self.buf) + self.pos))
            except ConnectionError as e:
                raise Ended(str(e))
            if not chunk:
                raise Ended("connection closed by peer")
            del self.buf[:self.pos]
            self.pos = 0
            self.buf += chunk
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def send(self, opcode, payload, fin=True):
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload)) \
            if n < 4096 else xor_big(payload, mask)
        try:
            self.sock.sendall(head + mask + masked)
        except ConnectionError as e:
            # The server may close on a bad frame before reading it all; what
            # it said (its close frame) is still there to read.
            sys.stderr.write("wsprobe: send: %s\n" % e)

    def frame(self):
        """One frame: (fin, opcode, payload)."""
        b0, b1 = self.read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read(8))[0]
        mask = self.read(4) if b1 & 0x80 else None
        payload = self.read(n)
        if mask:
            payload = xor_big(payload, mask)
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def message(self, want_pong=False):
        """The next data message, close frame or (if want_pong) pong, as
        (opcode, payload); pings are answered on the way."""
        parts, first = [], None
        while True:
            fin, op, payload = self.frame()
            if op == PING:
                self.send(PONG, payload)
                continue
            if op == PONG:
                if want_pong:
                    return PONG, payload
                continue
            if op == CLOSE:
                self.closed = True
                return CLOSE, payload
            if op != CONT:
                first = op
            parts.append(payload)
            if fin:
                return first, b"".join(parts)


def xor_big(data, mask):
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def show(op, payload):
    """Print a message as a line; returns its text ('' if not text)."""
    if op == CLOSE:
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        reason = payload[2:].decode("utf-8", "replace")
        say(("close %d %s" % (code, reason)).rstrip())
        return ""
    if op == TEXT:
        text = payload.decode("utf-8", "replace")
        say(text)
        return text
    say("binary " + payload.hex())
    return ""


def handshake(url, subprotocol, headers, timeout, rcvbuf):
    u = urllib.parse.urlsplit(url)
    if u.scheme != "ws" or not u.hostname:
        die(64, "only ws://HOST:PORT/PATH URLs: '%s'" % url)
    port = u.port or 80
    try:
        sock = socket.create_connection((u.hostname, port), timeout=timeout)
    except OSError as e:
        die(2, "unable to connect to '%s': %s" % (url, e))
    sock.settimeout(timeout)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    key = base64.b64encode(os.urandom(16)).decode()
    path = (u.path or "/") + ("?" + u.query if u.query else "")
    req = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (u.hostname, port),
           "Upgrade: websocket", "Connection: Upgrade",
           "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    if subprotocol:
        req.append("Sec-WebSocket-Protocol: " + subprotocol)
    req += headers
    sock.sendall(("\r\n".join(req) + "\r\n\r\n").encode())
    conn = Conn(sock)
    conn.small_rcvbuf = bool(rcvbuf)
    resp = b""
    try:
        while b"\r\n\r\n" not in resp:
            chunk = sock.recv(4096)
            if not chunk:
                break
            resp += chunk
    except ConnectionError:
        pass
    head, _, rest = resp.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split()
    if len(status) < 2 or status[1] != "101":
        say("http " + (status[1] if len(status) > 1 else "none"))
        sys.exit(2)
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    if fields.get("sec-websocket-accept") != want:
        say("http 101 bad accept")
        sys.exit(2)
    conn.buf += rest
    return conn


def run(conn, action):
    name, _, arg = action.partition(":")
    if name == "text":
        conn.send(TEXT, arg.encode())
    elif name == "textfile":
        with open(arg, "rb") as f:
            conn.send(TEXT, f.read())
    elif name == "big":
        n, _, room = arg.partition(":")
        n = int(n)
        head = '{"type":"publish","room":%s,"body":"' % json_str(room or "r")
        pad = n - len(head) - 2
        conn.send(TEXT, (head + "x" * pad + '"}').encode() if pad >= 0 else b"x" * n)
    elif name == "binary":
        conn.send(BINARY, bytes.fromhex(arg))
    elif name == "badutf8":
        conn.send(TEXT, b'{"type":"publish","room":"r","body":"\xff\xfe\xc3\x28"}')
    elif name == "recv":
        show(*conn.message())
    elif name == "recvuntil":
        while True:
            op, payload = conn.message()
            if arg in show(op, payload):
                break
            if op == CLOSE:
                die(1, "closed before '%s'" % arg)
    elif name == "expectclose":
        while True:
            op, payload = conn.message()
            show(op, payload)
            if op == CLOSE:
                sys.exit(0)
    elif name in ("stall", "stalluntil"):
        if name == "stall":
            time.sleep(float(arg))
        else:
            # until the test says so (it creates the file), bounded
            end = time.monotonic() + 60
            while not os.path.exists(arg):
                if time.monotonic() > end:
                    die(3, "stalluntil: %s never appeared" % arg)
                time.sleep(0.02)
        if conn.small_rcvbuf:
            # Drain at full speed now: through a tiny receive window what the
            # server queued meanwhile would trickle in for minutes.
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    elif name == "ping":
        conn.send(PING, b"wsprobe")
        while True:
            op, payload = conn.message(want_pong=True)
            if op == PONG:
                say("pong")
                break
            show(op, payload)
            if op == CLOSE:
                die(1, "closed before the pong")
    elif name == "close":
        conn.send(CLOSE, struct.pack("!H", int(arg or 1000)))
        while not conn.closed:
            show(*conn.message())
    else:
        die(64, "unknown action '%s'" % action)


def json_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        die(64, message)


def main():
    p = Parser(prog="wsprobe.py", allow_abbrev=False,
                                usage="wsprobe.py URL [--subprotocol P] "
                                "[--header 'K: V'] [--timeout S] ACTION...")
    p.add_argument("url")
    p.add_argument("actions", nargs="*")
    p.add_argument("--subprotocol")
    p.add_argument("--header", action="append", default=[])
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--rcvbuf", type=int, default=0,
                   help="SO_RCVBUF, to make a slow consumer quickly")
    a = p.parse_intermixed_args()
    conn = handshake(a.url, a.subprotocol, a.header, a.timeout, a.rcvbuf)
    try:
        for action in a.actions:
            run(conn, action)
        if not conn.closed:
            conn.send(CLOSE, struct.pack("!H", 1000))
    except socket.timeout:
        die(3, "timeout")
    except Ended as e:
        die(1, str(e))
    except ValueError as e:
        die(64, "bad action argument: %s" % e)
    conn.sock.close()


if __name__ == "__main__":
    main()

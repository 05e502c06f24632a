#!/usr/bin/env python3
"""hostile: one attack on a running chat-gw from loopback, with a
well-behaved client beside it, measured.

usage: hostile.py ATTACK --url ws://HOST:PORT/ws --pid PID [options]

The well-behaved client ("good") joins room "good" and publishes every
50 ms for the whole run, timing each publish to its ack. The gateway's
RSS (VmRSS of PID) is sampled every 50 ms and its CPU time read at the
start and end of the attack. The report is one JSON object on stdout:

  {"attack":..., "good":{"n":N,"p50_ms":..,"p99_ms":..,"max_ms":..,
   (over at least seven seconds)
   "unanswered":N}, "rss_kb":{"before":..,"peak":..,"after":..},
   "cpu_s":.., "wall_s":.., "result":{...attack's own findings...}}

With --no-good there is no well-behaved client ("good" is null), and the
run ends with the attack.

Attacks (each bounded in time; see the functions below):
  fdflood N         N raw connections that never send (the gateway runs
                    with a low descriptor limit), held, then closed; then
                    whether /healthz and a new client get in
  connect           CONNECT and POST requests: the status each gets
  slowheaders N S   N connections sending a request head a byte a second
                    for S seconds; /healthz and handshake latency meanwhile
  historyflood K    fill room "big" with 200 messages of 16 KB, then a
                    client that never reads asks K histories of 200
  sincejoin C       C clients that never read join "big" with since 0
  refusedleak N     N handshakes with a valid --token but no
                    Sec-WebSocket-Key
  joinflood S       joins of new rooms as fast as possible for S seconds
                    (the gateway runs with a small --max-rooms, filled)
  queryflood N      N presence queries from one client (bus mode)
  emptyfrag         an empty first fragment, then the rest of a join
  bigtoken          a handshake with --token (a large valid one)
  nopong S          a client that publishes every 0.5 s and never
                    answers pings, for S seconds
  lesser            POST upgrade, version 12, close code 5000, data after
                    close, a foreign Origin
  spawn S -- CMD    run CMD (a load: chat-cli bench --hold) until it says
                    "ready" (and --then-wait N seconds more), at most S

Regression attacks (hostile-regress.bats: what the gateway already
handles); each result has "after": whether a new client then joins and
has a publish acked:
  none              no attack: the good client alone (the baseline)
  splitbytes        the request head, a join and publishes with 7-, 16-
                    and 64-bit lengths (bodies of 2- to 4-byte UTF-8
                    characters) sent a byte per send() with TCP_NODELAY;
                    a publish split in two writes at each of its byte
                    boundaries; a publish in fragments of one byte with
                    a ping among them: each answer, each body echoed
  pingflood N SIZE  N pings of SIZE bytes as fast as they go, then a join:
                    the pongs counted, the join answered
  bigheader MB      request heads of MB megabytes (a Cookie line, many
                    header lines, a URL) streamed while the answer is
                    read: its status, how soon a write then fails
  tinyframes N [PARTS]  N frames of {} in one write, from a client that
                    reads (reader) and one that reads only once it has
                    sent them all (stalled); N empty pings in one write
                    (pings): what each got back, its close code
  badutf8           invalid UTF-8 in each field (type, room, body, ref,
                    a key, an unknown member), at a frame's end, across
                    fragments, in a close reason: the close code each
                    got; valid UTF-8 across fragments and escaped lone
                    surrogates: their answers
  nested D...       publish bodies of arrays and of objects nested D
                    deep, and D-deep arrays in a ref and an unknown
                    member: each answer, each body echoed
  names             rooms (in every request) and refs at, under and past
                    their limits and with bad characters; users
                    (?user=, --auth none) the same: answers and statuses
Exit status: 0 (the report says what happened), 64 usage, 70 the
well-behaved client could not start.
"""
import argparse
import base64
import json
import multiprocessing
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse

TEXT, CLOSE, PING, PONG, CONT = 0x1, 0x8, 0x9, 0xA, 0x0


def now():
    return time.monotonic()


class WS:
    """A minimal WebSocket client over a raw socket, for attacks."""

    def __init__(self, host, port, path, headers=None, rcvbuf=0, key=True,
                 method="GET", version="13", timeout=10.0, dribble=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        req = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (host, port),
               "Upgrade: websocket", "Connection: Upgrade",
               "Sec-WebSocket-Version: " + version]
        if key:
            req.append("Sec-WebSocket-Key: " +
                       base64.b64encode(os.urandom(16)).decode())
        req += headers or []
        head = ("\r\n".join(req) + "\r\n\r\n").encode()
        if dribble is None:
            self.sock.sendall(head)
        else:
            self.dribble(head, dribble)
        self.buf = b""
        self.status = self._status()

    def dribble(self, data, pace=0.0):
        """Send data one byte per send() (TCP_NODELAY: one segment each),
        pace seconds apart."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            if pace:
                time.sleep(pace)

    def _status(self):
        self.head = ""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return 0
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        parts = head.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    @staticmethod
    def encode(opcode, payload, fin=True, mask=None):
        """One client frame as bytes (masked, with mask or a random one)."""
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = mask or os.urandom(4)
        if n:
            key = (mask * (n // 4 + 1))[:n]
            data = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
        else:
            data = b""
        return head + mask + data

    def send(self, opcode, payload, fin=True):
        self.sock.sendall(self.encode(opcode, payload, fin))

    def text(self, s):
        self.send(TEXT, s.encode())

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self, answer_pings=True):
        """The next frame as (opcode, payload); pings answered unless not."""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)
            op = b0 & 0x0F
            if op == PING:
                if answer_pings:
                    self.send(PONG, payload)
                continue
            return op, payload

    def until(self, sub, limit=10.0):
        """Read text frames until one holds sub; returns it."""
        end = now() + limit
        self.sock.settimeout(limit)
        while now() < end:
            op, p = self.frame()
            if op == CLOSE:
                return "close %d" % (struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005)
            t = p.decode("utf-8", "replace")
            if sub in t:
                return t
        raise TimeoutError(sub)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def http_get(host, port, path, timeout=5.0):
    """(status, seconds) of a plain GET, status 0 when it failed."""
    t0 = now()
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        parts = data.split(b" ", 2)
        return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0), now() - t0
    except OSError:
        return 0, now() - t0


def raw_request(host, port, text, timeout=5.0):
    """Send text as the whole request; the status line's code, 0 if none."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        s.sendall(text.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        parts = data.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    except OSError:
        return 0


class Good:
    """The well-behaved client, in a process of its own (so that the
    attack's Python work never delays it): publish every 50 ms, time each
    ack."""

    def __init__(self, a):
        self.a = a
        self.stop = multiprocessing.Event()
        self.ready = multiprocessing.Event()
        self.results = multiprocessing.Queue()
        self.proc = multiprocessing.Process(target=self._run, daemon=True)
        self.out = {"rtt": [], "unanswered": 0, "error": None}

    def start(self):
        self.proc.start()

    def _run(self):
        rtt, unanswered, error = [], 0, None
        try:
            ws = WS(self.a.host, self.a.port, self.a.path + "?" + self.a.good_auth("good"))
            if ws.status != 101:
                raise RuntimeError("good client refused: %d" % ws.status)
            ws.text('{"type":"join","room":"good","ref":"j"}')
            ws.until('"type":"joined"')
            self.ready.set()
            i = 0
            while not self.stop.is_set():
                i += 1
                t0 = now()
                ws.text('{"type":"publish","room":"good","body":%d,"ref":%d}' % (i, i))
                try:
                    ws.until('"ref":%d' % i, limit=5.0)
                    rtt.append((now() - t0) * 1000)
                except (TimeoutError, socket.timeout):
                    unanswered += 1
                left = 0.05 - (now() - t0)
                if left > 0:
                    time.sleep(left)
            ws.close()
        except Exception as e:  # reported, never raised from the process
            error = str(e)
        self.ready.set()
        self.results.put({"rtt": rtt, "unanswered": unanswered, "error": error})

    def wait_ready(self, limit):
        self.ready.wait(limit)

    def finish(self):
        self.stop.set()
        try:
            self.out = self.results.get(timeout=15)
        except Exception:
            self.out = {"rtt": [], "unanswered": 0, "error": "no report"}
        self.proc.join(5)

    def report(self):
        r = sorted(self.out["rtt"])

        def pct(p):
            return round(r[min(len(r) - 1, int(len(r) * p))], 2) if r else None
        return {"n": len(r), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "max_ms": round(r[-1], 2) if r else None,
                "unanswered": self.out["unanswered"], "error": self.out["error"]}


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.05)


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


# ---- the attacks ----

def att_fdflood(a, n):
    socks = []
    for _ in range(int(n)):
        try:
            socks.append(socket.create_connection((a.host, a.port), timeout=2))
        except OSError:
            break
    time.sleep(1.0)
    for s in socks:
        s.close()
    # back in: /healthz and a new client, within a few seconds
    t0 = now()
    ok = False
    while now() - t0 < 5:
        st, _ = http_get(a.host, a.port, "/healthz", timeout=1)
        if st == 200:
            ok = True
            break
        time.sleep(0.1)
    ws_ok = False
    if ok:
        try:
            ws = WS(a.host, a.port, a.path + "?" + a.auth("after"))
            ws_ok = ws.status == 101
            ws.close()
        except OSError:
            pass
    return {"opened": len(socks), "healthz_after": ok, "client_after": ws_ok,
            "back_in_s": round(now() - t0, 2)}


def att_connect(a):
    return {"connect": raw_request(a.host, a.port, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"),
            "post": raw_request(a.host, a.port, "POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
            "garbage": raw_request(a.host, a.port, "\x16\x03\x01 not http at all\r\n\r\n")}


def att_slowheaders(a, n, secs):
    socks = []
    for _ in range(int(n)):
        try:
            socks.append(socket.create_connection((a.host, a.port), timeout=2))
        except OSError:
            break
    head = b"GET /ws?user=slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200
    lat_h, lat_ws, statuses = [], [], {}
    end = now() + float(secs)
    i = 0
    while now() < end:
        for s in socks:
            try:
                s.send(head[i:i + 1] if i < len(head) else b"a")
            except OSError:
                pass
        i += 1
        st, t = http_get(a.host, a.port, "/healthz", timeout=5)
        lat_h.append(t * 1000)
        t0 = now()
        try:
            ws = WS(a.host, a.port, a.path + "?" + a.auth("probe"), timeout=5)
            if ws.status == 101:
                lat_ws.append((now() - t0) * 1000)
            ws.close()
        except OSError:
            lat_ws.append(5000)
        time.sleep(max(0, 1.0 - (now() - t0)))
    for s in socks:
        s.settimeout(0.5)
        try:
            data = s.recv(64)
            code = data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else "none"
        except OSError:
            code = "none"
        statuses[code] = statuses.get(code, 0) + 1
        s.close()
    return {"conns": len(socks), "healthz_max_ms": round(max(lat_h), 1) if lat_h else None,
            "handshake_max_ms": round(max(lat_ws), 1) if lat_ws else None,
            "slow_answered": statuses}


def fill_big(a, n=200, size=16000):
    ws = WS(a.host, a.port, a.path + "?" + a.auth("filler"))
    ws.text('{"type":"join","room":"big"}')
    ws.until('"type":"joined"')
    body = "x" * (size - 2)
    for i in range(n):
        ws.text('{"type":"publish","room":"big","body":"%s","ref":%d}' % (body, i))
        ws.until('"type":"ack","ref":%d' % i)
    ws.close()


def att_historyflood(a, k):
    fill_big(a)
    ws = WS(a.host, a.port, a.path + "?" + a.auth("hoarder"), rcvbuf=4096)
    sent = 0
    try:
        for i in range(int(k)):
            ws.text('{"type":"history","room":"big","limit":200}')
            sent += 1
    except OSError:
        pass
    time.sleep(1.0)
    ws.close()
    return {"history_requests": sent}


def att_sincejoin(a, c):
    fill_big(a)
    socks = []
    for i in range(int(c)):
        ws = WS(a.host, a.port, a.path + "?" + a.auth("since%d" % i), rcvbuf=4096)
        ws.text('{"type":"join","room":"big","since":0}')
        socks.append(ws)
    time.sleep(2.0)
    for ws in socks:
        ws.close()
    return {"clients": len(socks)}


def att_refusedleak(a, n):
    done = 0
    for _ in range(int(n)):
        try:
            ws = WS(a.host, a.port, a.path + "?" + a.auth("leak"), key=False)
            ws.close()
            done += 1
        except OSError:
            pass
    time.sleep(0.5)
    return {"handshakes": done}


def att_joinflood(a, secs):
    ws = WS(a.host, a.port, a.path + "?" + a.auth("joiner"))
    end = now() + float(secs)
    i = 0
    while now() < end:
        ws.text('{"type":"join","room":"new%d","ref":%d}' % (i, i))
        i += 1
        if i % 50 == 0:
            try:
                ws.sock.settimeout(0.001)
                while True:
                    ws.frame()
            except (socket.timeout, BlockingIOError, EOFError):
                pass
            ws.sock.settimeout(10)
    ws.close()
    return {"joins": i}


def att_queryflood(a, n):
    ws = WS(a.host, a.port, a.path + "?" + a.auth("asker"))
    for i in range(int(n)):
        ws.text('{"type":"presence","room":"q%d"}' % (i % 100))
    time.sleep(1.0)
    ws.close()
    return {"queries": int(n)}


def att_emptyfrag(a):
    ws = WS(a.host, a.port, a.path + "?" + a.auth("frag"))
    ws.send(TEXT, b"", fin=False)
    ws.send(CONT, b'{"type":"join","room":"frag","ref":"e"}', fin=True)
    got = ws.until('"ref":"e"')
    ws.close()
    return {"answer": json.loads(got) if got.startswith("{") else got}


def att_bigtoken(a):
    ws = WS(a.host, a.port, a.path + "?" + a.auth("x"))
    st = ws.status
    ans = None
    if st == 101:
        ws.text('{"type":"join","room":"t","ref":1}')
        ans = ws.until('"ref":1')
    ws.close()
    return {"status": st, "answer": ans}


def att_nopong(a, secs):
    ws = WS(a.host, a.port, a.path + "?" + a.auth("busy"))
    ws.text('{"type":"join","room":"busy"}')
    end = now() + float(secs)
    pings = 0
    alive = True
    i = 0
    while now() < end:
        i += 1
        try:
            ws.text('{"type":"publish","room":"busy","body":%d}' % i)
            ws.sock.settimeout(0.5)
            t0 = now()
            while now() - t0 < 0.5:
                op, p = ws.frame(answer_pings=False)
                if op == CLOSE:
                    alive = False
                    break
        except socket.timeout:
            pass
        except (EOFError, OSError):
            alive = False
        if not alive:
            break
    ws.close()
    return {"alive": alive, "seconds": float(secs)}


def loop_turns(a):
    """From the gateway's /metrics: how many loop turns it counted, and how
    many took over 50 ms of CPU."""
    try:
        s = socket.create_connection((a.host, a.port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
    except OSError:
        return None
    under = total = None
    dropped = 0
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith('chat_gw_closes_total{reason="dropped"} '):
            dropped = int(line.split()[1])
        if line.startswith('chat_gw_loop_turn_cpu_seconds_bucket{le="0.05"} '):
            under = int(line.split()[1])
        elif line.startswith("chat_gw_loop_turn_cpu_seconds_count "):
            total = int(line.split()[1])
    if under is None or total is None:
        return None
    return {"count": total, "over_50ms": total - under, "dropped": dropped}


def att_spawn(a, secs, *cmd):
    """Run cmd (a load beside the good client, such as chat-cli bench
    --hold) until it prints its "ready" line, then --then-wait more
    seconds of the hold (bounded by secs in all); stop it."""
    import subprocess
    wait_after = 0.0
    cmd = list(cmd)
    if "--then-wait" in cmd:
        i = cmd.index("--then-wait")
        wait_after = float(cmd[i + 1])
        del cmd[i:i + 2]
    # The load runs niced: it stands for clients on other machines, and
    # must not take the CPU the gateway and the good client need here.
    p = subprocess.Popen(["nice", "-n", "10"] + cmd, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    end = now() + float(secs)
    ready = False
    t_ready = None
    os.set_blocking(p.stdout.fileno(), False)
    buf = ""
    while now() < end and p.poll() is None:
        try:
            chunk = p.stdout.read()
        except (BlockingIOError, TypeError):
            chunk = None
        if chunk:
            buf += chunk
            if "ready" in buf and not ready:
                ready = True
                t_ready = now()
        if ready and now() - t_ready >= wait_after:
            break
        time.sleep(0.05)
    # the gateway's loop turns while the load held, before it lets go
    # (a few thousand connections closing at once is another matter)
    turns = loop_turns(a)
    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
    return {"ready": ready, "ready_s": round(t_ready - (end - float(secs)), 2) if ready else None,
            "turns": turns}


def att_lesser(a):
    r = {}
    ws = WS(a.host, a.port, a.path + "?" + a.auth("l1"), method="POST")
    r["post_upgrade"] = ws.status
    ws.close()
    ws = WS(a.host, a.port, a.path + "?" + a.auth("l2"), version="12")
    r["version_12"] = ws.status
    ws.close()
    ws = WS(a.host, a.port, a.path + "?" + a.auth("l3"))
    ws.send(CLOSE, struct.pack("!H", 5000))
    try:
        op, p = ws.frame()
        r["close_5000"] = struct.unpack("!H", p[:2])[0] if op == CLOSE and len(p) >= 2 else "none"
    except (EOFError, OSError):
        r["close_5000"] = "none"
    ws.close()
    ws = WS(a.host, a.port, a.path + "?" + a.auth("l4"))
    ws.text('{"type":"join","room":"after"}')
    ws.until('"type":"joined"')
    ws.send(CLOSE, struct.pack("!H", 1000))
    ws.text('{"type":"publish","room":"after","body":"after close","ref":"z"}')
    got = []
    try:
        ws.sock.settimeout(2)
        while True:
            op, p = ws.frame()
            if op == CLOSE:
                break
            got.append(p.decode())
    except (EOFError, OSError):
        pass
    r["after_close_answered"] = any('"ref":"z"' in g for g in got)
    ws.close()
    ws = WS(a.host, a.port, a.path + "?" + a.auth("l5"), headers=["Origin: https://evil.example"])
    r["foreign_origin"] = ws.status
    ws.close()
    return r


# ---- the regression attacks: hostile inputs the gateway already handles ----

def served(a, name="after"):
    """After an attack: whether a new client gets in, joins, and has a
    publish acked, within a few seconds."""
    try:
        ws = WS(a.host, a.port, a.path + "?" + a.auth(name), timeout=5)
        if ws.status != 101:
            ws.close()
            return False
        ws.text('{"type":"join","room":"after","ref":"aj"}')
        ok = '"type":"joined"' in ws.until('"ref":"aj"', limit=5)
        ws.text('{"type":"publish","room":"after","body":"still here","ref":"ap"}')
        ok = ok and '"type":"ack"' in ws.until('"ref":"ap"', limit=5)
        ws.close()
        return ok
    except (OSError, EOFError, TimeoutError, ValueError):
        return False


def answer(ws, ref, limit=10.0):
    """The reply to the request whose ref is ref (parsed), and the text
    frames that came before it; {"close": CODE} or {"end": "eof"} when the
    connection closed first."""
    end = now() + limit
    before = []
    ws.sock.settimeout(limit)
    try:
        while now() < end:
            op, p = ws.frame()
            if op == CLOSE:
                return {"close": struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005}, before
            if op != TEXT:
                continue
            m = json.loads(p.decode())
            if m.get("ref") == ref:
                return m, before
            before.append(m)
    except (EOFError, ConnectionError):
        return {"end": "eof"}, before
    except socket.timeout:
        pass
    return {"end": "timeout"}, before


def ending(ws, limit=5.0):
    """How the connection ends: the close code the gateway sent (1005 for
    a close frame without one), "eof" when it ended without a close frame,
    "open" when it did not end within limit."""
    end = now() + limit
    ws.sock.settimeout(limit)
    try:
        while now() < end:
            op, p = ws.frame()
            if op == CLOSE:
                return struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005
    except (EOFError, ConnectionError):
        return "eof"
    except socket.timeout:
        pass
    return "open"


def reply(ws, limit=10.0):
    """The next frame that answers a request, parsed: frames the gateway
    pushes (message, presence, typing) are skipped. For a request whose
    error cannot echo a ref (it did not parse, or its ref is bad)."""
    end = now() + limit
    ws.sock.settimeout(limit)
    try:
        while now() < end:
            op, p = ws.frame()
            if op == CLOSE:
                return {"close": struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005}
            if op == TEXT and not p.startswith((b'{"type":"message"', b'{"type":"presence"',
                                                b'{"type":"typing"')):
                return json.loads(p.decode())
    except (EOFError, ConnectionError):
        return {"end": "eof"}
    except socket.timeout:
        pass
    return {"end": "timeout"}


class Counter(threading.Thread):
    """Reads a connection's frames as fast as it can, counting them (a text
    frame by its type, an error by its code), until the connection ends
    or stop is set; waits for a frame holding a given string (want)."""

    def __init__(self, ws, want=None):
        super().__init__(daemon=True)
        self.ws = ws
        self.want = want
        self.counts = {}
        self.close = None
        self.end = None
        self.got = threading.Event()  # want seen, or the end
        self.stop = threading.Event()

    def _count(self, k):
        self.counts[k] = self.counts.get(k, 0) + 1

    def _frame(self, op, p):
        if op == TEXT:
            if self.want and self.want in p:
                self.got.set()
            if p.startswith(b'{"type":"error"'):
                i = p.find(b'"code":"')
                self._count("error:" + p[i + 8:p.index(b'"', i + 8)].decode())
            else:
                i = p.index(b'"', 9)
                self._count(p[9:i].decode())
        elif op == PONG:
            self._count("pong")
        elif op == PING:
            self._count("ping")
        elif op == CLOSE:
            self.close = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005

    def run(self):
        import select
        sock, buf, pos = self.ws.sock, bytearray(self.ws.buf), 0
        try:
            while self.close is None:
                if not select.select([sock], [], [], 0.1)[0]:
                    if self.stop.is_set():
                        break
                    continue
                chunk = sock.recv(1 << 20)
                if not chunk:
                    self.end = "eof"
                    break
                buf += chunk
                while len(buf) - pos >= 2:
                    n, h = buf[pos + 1] & 0x7F, 2
                    if n == 126:
                        if len(buf) - pos < 4:
                            break
                        n, h = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
                    elif n == 127:
                        if len(buf) - pos < 10:
                            break
                        n, h = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
                    if len(buf) - pos < h + n:
                        break
                    self._frame(buf[pos] & 0x0F, bytes(buf[pos + h:pos + h + n]))
                    pos += h + n
                    if self.close is not None:
                        break
                if pos > (1 << 20):
                    del buf[:pos]
                    pos = 0
        except OSError as e:
            self.end = type(e).__name__
        self.got.set()


def att_none(a):
    """No attack: the good client's round trip alone (the baseline)."""
    return {"after": served(a)}


PACE = 0.0005  # between the bytes of a dribbled frame: each its own read


def att_splitbytes(a):
    r = {}
    # the request head itself, a byte a send
    ws = WS(a.host, a.port, a.path + "?" + a.auth("split"), dribble=PACE / 5)
    r["status"] = ws.status
    ws.dribble(ws.encode(TEXT, b'{"type":"join","room":"split","ref":"j"}'), PACE)
    r["join"] = answer(ws, "j")[0].get("type")
    # 7-bit, 16-bit and 64-bit payload lengths, a byte a send; the body
    # holds 2-, 3- and 4-byte UTF-8 sequences, each cut between sends
    uni = "h\u00e9\u20ac\U0001F600"
    for name, body in (("short", uni * 2), ("len16", uni * 30), ("len64", uni + "x" * 70000)):
        req = json.dumps({"type": "publish", "room": "split", "body": body, "ref": name},
                         ensure_ascii=False).encode()
        f = ws.encode(TEXT, req)
        ws.dribble(f[:20], PACE)
        ws.dribble(f[20:], PACE if len(f) < 1000 else 0)
        rep, before = answer(ws, name)
        r[name] = {"answer": rep.get("type"),
                   "body_same": any(m.get("type") == "message" and m.get("body") == body
                                    for m in before)}
    # every split point of one frame, each its own pair of writes
    ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    acks = 0
    req = ('{"type":"publish","room":"split","body":"%s","ref":"k%%d"}' % uni).encode()
    flen = len(ws.encode(TEXT, req % 0))
    for k in range(1, flen):
        f = ws.encode(TEXT, req % k)
        ws.sock.sendall(f[:k])
        time.sleep(PACE * 4)
        ws.sock.sendall(f[k:])
        if answer(ws, "k%d" % k)[0].get("type") == "ack":
            acks += 1
    r["split_points"] = {"points": flen - 1, "acked": acks}
    # fragments of one payload byte each (UTF-8 sequences across
    # fragments), a ping among them, every byte its own send
    body = uni * 3
    req = json.dumps({"type": "publish", "room": "split", "body": body, "ref": "frag"},
                     ensure_ascii=False).encode()
    data = b""
    for i in range(len(req)):
        data += ws.encode(TEXT if i == 0 else CONT, req[i:i + 1], fin=i == len(req) - 1)
        if i == len(req) // 2:
            data += ws.encode(PING, b"mid")
    ws.dribble(data)
    rep, before = answer(ws, "frag")
    r["fragments"] = {"answer": rep.get("type"),
                      "body_same": any(m.get("type") == "message" and m.get("body") == body
                                       for m in before)}
    ws.close()
    r["after"] = served(a)
    return r


def att_pingflood(a, n, size="8"):
    n, size = int(n), int(size)
    ws = WS(a.host, a.port, a.path + "?" + a.auth("pinger"), timeout=30)
    c = Counter(ws, want=b'"ref":"after-pings"')
    c.start()
    one = WS.encode(PING, b"p" * size, mask=b"\x11\x22\x33\x44")
    batch = one * 4096
    sent, t0 = 0, now()
    try:
        while sent < n:
            k = min(4096, n - sent)
            ws.sock.sendall(batch if k == 4096 else one * k)
            sent += k
    except OSError as e:
        c.end = c.end or type(e).__name__
    send_s = now() - t0
    # a request after the flood: answered once every ping before it is read
    try:
        ws.text('{"type":"join","room":"pings","ref":"after-pings"}')
    except OSError:
        pass
    c.got.wait(30)
    answered = c.got.is_set() and c.close is None and c.end is None
    c.stop.set()
    c.join(5)
    ws.close()
    return {"pings": sent, "send_s": round(send_s, 2), "pongs": c.counts.get("pong", 0),
            "answered": answered, "close": c.close, "end": c.end,
            "after": served(a)}


def big_head(a, kind, total):
    """A request head of total bytes (kind: one huge Cookie line, many
    small header lines, or a huge URL), streamed as fast as the gateway
    takes it, while the answer is read."""
    ws_lines = (b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    if kind == "url":
        start, unit = b"GET /ws?user=big&pad=", b"a" * 65536
    elif kind == "lines":
        start, unit = b"GET /ws?user=big HTTP/1.1\r\nHost: x\r\n" + ws_lines, b"X-Pad: a\r\n" * 6554
    else:
        start, unit = b"GET /ws?user=big HTTP/1.1\r\nHost: x\r\n" + ws_lines + b"Cookie: ", b"a" * 65536
    s = socket.create_connection((a.host, a.port), timeout=10)
    out = {"sent": 0, "error": None}

    def send():
        try:
            s.sendall(start)
            while out["sent"] < total:
                s.sendall(unit)
                out["sent"] += len(unit)
        except OSError as e:
            out["error"] = type(e).__name__
    t = threading.Thread(target=send, daemon=True)
    t0 = now()
    t.start()
    data, status = b"", 0
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        parts = data.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    except OSError:
        pass
    t_answer = now()
    t.join(20)
    # the gateway shut its side after the answer; it drains what comes
    # for a moment, then closes: a write then fails (bounded wait)
    closed = None
    while now() - t_answer < 5:
        try:
            s.send(b"a" * 1024)
        except OSError:
            closed = round(now() - t_answer, 2)
            break
        time.sleep(0.02)
    s.close()
    return {"status": status, "answer_s": round(t_answer - t0, 3), "sent": out["sent"],
            "send_error": out["error"], "closed_s": closed}


def att_bigheader(a, mb="10"):
    total = int(float(mb) * (1 << 20))
    r = {k: big_head(a, k, total) for k in ("cookie", "lines", "url")}
    r["after"] = served(a)
    return r


def tiny_reader(a, frames, n, want):
    """frames (n of them) in one write from a client that reads what comes
    back as fast as it can; then a join, whose answer is awaited."""
    ws = WS(a.host, a.port, a.path + "?" + a.auth("tiny"), timeout=30)
    c = Counter(ws, want=b'"ref":"after-tiny"')
    c.start()
    t0 = now()
    try:
        ws.sock.sendall(frames)
        ws.text('{"type":"join","room":"tiny","ref":"after-tiny"}')
    except OSError as e:
        c.end = c.end or type(e).__name__
    c.got.wait(60)
    out = {"frames": n, "s": round(now() - t0, 2), "counts": dict(c.counts),
           "answered": c.got.is_set() and c.close is None and c.end is None,
           "close": c.close, "end": c.end}
    c.stop.set()
    c.join(5)
    ws.close()
    return out


def att_tinyframes(a, n, parts="reader,stalled,pings"):
    n = int(n)
    text = WS.encode(TEXT, b"{}", mask=b"\x01\x02\x03\x04") * n
    r = {}
    parts = parts.split(",")
    if "reader" in parts:
        r["reader"] = tiny_reader(a, text, n, b'"ref":"after-tiny"')
    if "stalled" in parts:
        # a client that reads nothing until it has sent them all
        ws = WS(a.host, a.port, a.path + "?" + a.auth("tiny2"), rcvbuf=4096, timeout=30)
        err = None
        try:
            ws.sock.sendall(text)
        except OSError as e:
            err = type(e).__name__
        c = Counter(ws)
        c.start()
        c.got.wait(30)
        c.stop.set()
        c.join(5)
        ws.close()
        r["stalled"] = {"send_error": err, "counts": dict(c.counts), "close": c.close,
                        "end": c.end}
    if "pings" in parts:
        # empty pings, answered by pongs outside the send queue
        r["pings"] = tiny_reader(a, WS.encode(PING, b"", mask=b"\x01\x02\x03\x04") * n, n,
                                 b'"ref":"after-tiny"')
    r["after"] = served(a)
    return r


# invalid UTF-8 (bytes no encoder makes): in each field of a request, in
# a key, at the end of a frame, across fragments; and JSON escapes that
# are no characters (a lone surrogate), which are valid UTF-8 on the wire
BAD_UTF8 = {
    "type": b'{"type":"jo\xffin","room":"u"}',
    "room": b'{"type":"join","room":"u\xc0\xaf"}',               # overlong /
    "body": b'{"type":"publish","room":"u","body":"\xed\xa0\x80"}',  # surrogate
    "body_nested": b'{"type":"publish","room":"u","body":{"k":["\xf4\x90\x80\x80"]}}',  # > U+10FFFF
    "ref": b'{"type":"join","room":"u","ref":"\xe2\x82"}',      # truncated
    "key": b'{"\xfe":1,"type":"join","room":"u"}',
    "unknown_field": b'{"type":"join","room":"u","x":"\x80"}',  # lone continuation
    "truncated_end": b'{"type":"join","room":"u"}\xe2\x82',
}


def att_badutf8(a):
    r = {"close": {}}
    for name, payload in BAD_UTF8.items():
        ws = WS(a.host, a.port, a.path + "?" + a.auth("utf"))
        ws.text('{"type":"join","room":"u","ref":"j"}')
        answer(ws, "j")
        ws.send(TEXT, payload)
        r["close"][name] = ending(ws)
        ws.close()
    # a sequence cut between two fragments: invalid, and valid
    ws = WS(a.host, a.port, a.path + "?" + a.auth("utf"))
    ws.text('{"type":"join","room":"u","ref":"j"}')
    answer(ws, "j")
    ws.send(TEXT, b'{"type":"publish","room":"u","ref":"f","body":"\xe2', fin=False)
    ws.send(CONT, b'\x28\xa1"}')
    r["close"]["fragments"] = ending(ws)
    ws.close()
    ws = WS(a.host, a.port, a.path + "?" + a.auth("utf"))
    ws.text('{"type":"join","room":"u","ref":"j"}')
    answer(ws, "j")
    ws.send(TEXT, b'{"type":"publish","room":"u","ref":"f","body":"\xe2', fin=False)
    ws.send(CONT, b'\x82\xac"}')
    r["fragments_valid"] = answer(ws, "f")[0].get("type")
    ws.close()
    # in a close frame's reason
    ws = WS(a.host, a.port, a.path + "?" + a.auth("utf"))
    ws.send(CLOSE, struct.pack("!H", 1000) + b"bye \xff")
    r["close"]["close_reason"] = ending(ws)
    ws.close()
    # an escaped lone surrogate: valid UTF-8, not a character
    ws = WS(a.host, a.port, a.path + "?" + a.auth("utf"))
    ws.text('{"type":"join","room":"u","ref":"j"}')
    answer(ws, "j")
    ws.text('{"type":"publish","room":"u","body":"\\ud800","ref":"s"}')
    rep = reply(ws)  # (a frame that does not parse has its ref unread)
    r["escaped_surrogate"] = rep.get("code") or rep.get("type")
    ws.text('{"type":"publish","room":"u","body":"\\ud83d\\ude00","ref":"s2"}')
    r["escaped_pair"] = answer(ws, "s2")[0].get("type")
    ws.close()
    r["after"] = served(a)
    return r


def nest(kind, depth):
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def raw_answer(ws, ref, limit=20.0):
    """Like answer, for frames too deep for Python's json: the reply to
    ref, or an error without a ref (parsed: replies are shallow), and the
    raw text frames before it."""
    end = now() + limit
    before = []
    ws.sock.settimeout(limit)
    key = '"ref":%s' % json.dumps(ref)
    try:
        while now() < end:
            op, p = ws.frame()
            if op == CLOSE:
                return {"close": struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005}, before
            t = p.decode()
            if op == TEXT and not t.startswith('{"type":"message"') and (
                    key in t or (t.startswith('{"type":"error"') and '"ref":' not in t)):
                # (a frame that did not parse has no ref to echo)
                return json.loads(t), before
            before.append(t)
    except (EOFError, ConnectionError):
        return {"end": "eof"}, before
    except socket.timeout:
        pass
    return {"end": "timeout"}, before


def att_nested(a, *depths):
    ws = WS(a.host, a.port, a.path + "?" + a.auth("nest"), timeout=30)
    ws.text('{"type":"join","room":"nest","ref":"j"}')
    answer(ws, "j")
    r = {"body": {}, "elsewhere": {}}
    i = 0
    for kind in ("array", "object"):
        for d in depths:
            i += 1
            body = nest(kind, int(d))
            t0 = now()
            ws.text('{"type":"publish","room":"nest","body":%s,"ref":%d}' % (body, i))
            rep, before = raw_answer(ws, i)
            r["body"]["%s_%s" % (kind, d)] = {
                "answer": rep.get("code") or rep.get("type") or rep.get("close") or rep.get("end"),
                "ms": round((now() - t0) * 1000, 1), "bytes": len(body),
                "body_same": any(t.startswith('{"type":"message"') and t.endswith('"body":%s}' % body)
                                 for t in before)}
    # deep nesting outside the body: in an unknown member, in the ref (a
    # ref that is not a string or an integer is not echoed: the next
    # frame is its error)
    for d in depths:
        ws.text('{"type":"join","room":"nest","x":%s,"ref":"u"}' % nest("array", int(d)))
        rep, _ = raw_answer(ws, "u")
        r["elsewhere"]["unknown_%s" % d] = rep.get("code") or rep.get("type")
        ws.text('{"type":"join","room":"nest","ref":%s}' % nest("array", int(d)))
        rep = reply(ws, 20)
        r["elsewhere"]["ref_%s" % d] = rep.get("code") or rep.get("type")
    ws.text('{"type":"publish","room":"nest","body":"still","ref":"last"}')
    r["still_open"] = answer(ws, "last")[0].get("type")
    ws.close()
    r["after"] = served(a)
    return r


ROOM_CHARS = "ABCXYZabcxyz0189_.:@/-"
USER_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')


def att_names(a):
    def pad(s, n):
        return (s * (n // len(s) + 1))[:n]
    r = {"room": {}, "user": {}}
    ws = WS(a.host, a.port, a.path + "?" + a.auth("namer"))
    rooms = {"len1": "r", "len128": pad(ROOM_CHARS, 128), "len129": pad(ROOM_CHARS, 129),
             "empty": "", "space": "a b", "hash": "a#b", "nonascii": "caf\u00e9",
             "nul": "a\u0000b", "escaped_ok": "\\u0061b"}
    i = 0
    for name, room in rooms.items():
        res = {}
        quoted = '"%s"' % room if name == "escaped_ok" else json.dumps(room, ensure_ascii=False)
        for req in ("join", "publish", "history", "presence", "typing", "leave"):
            i += 1
            extra = ',"body":"x"' if req == "publish" else ""
            ws.text('{"type":"%s","room":%s%s,"ref":%d}' % (req, quoted, extra, i))
            if req == "typing":
                # no reply to a good one: a presence query after it
                i += 1
                ws.text('{"type":"presence","room":"r","ref":%d}' % i)
            rep, before = answer(ws, i)
            if req == "typing":
                errs = [m for m in before if m.get("type") == "error" and m.get("ref") == i - 1]
                rep = errs[0] if errs else {"type": "none"}
            res[req] = rep.get("code") or rep.get("type")
            if req == "join" and rep.get("type") == "joined":
                res["room_echo"] = rep.get("room") == (room if name != "escaped_ok" else "ab")
        r["room"][name] = res
    # a ref at and past its limit: 128 bytes (64 two-byte characters)
    for name, ref in (("ref128", "\u00e9" * 64), ("ref129", "\u00e9" * 64 + "x"),
                      ("ref128_escaped", "\u0001" * 128)):
        ws.text(json.dumps({"type": "join", "room": "r", "ref": ref}))
        m = reply(ws)
        r["room"][name] = {"answer": m.get("code") or m.get("type"), "echoed": m.get("ref") == ref}
    ws.close()
    users = {"len1": "u", "len128": pad(USER_CHARS, 128), "len129": pad(USER_CHARS, 129),
             "tilde": "a~b", "bang": "!"}
    bad = {"empty": "", "space": "a b", "quote": 'a"b', "backslash": "a\\b", "del": "a\x7fb",
           "ctrl": "a\x01b", "tab": "a\tb", "nonascii": "caf\u00e9", "nul": "a\x00b",
           "len4200": "u" * 4200}
    for name, user in list(users.items()) + list(bad.items()):
        q = "user=" + urllib.parse.quote(user, safe="")
        ws = WS(a.host, a.port, a.path + "?" + q)
        res = {"status": ws.status}
        if ws.status == 101:
            ws.text('{"type":"join","room":"users","ref":"j"}')
            answer(ws, "j")
            ws.text('{"type":"publish","room":"users","body":1,"ref":"p"}')
            rep, before = answer(ws, "p")
            res["from_same"] = any(m.get("type") == "message" and m.get("from") == user for m in before)
        ws.close()
        r["user"][name] = res
    # percent escapes that are not escapes, and a missing user
    for name, q in (("bad_escape", "user=a%2"), ("bad_hex", "user=a%zzb"), ("none", "x=1")):
        ws = WS(a.host, a.port, a.path + "?" + q)
        r["user"][name] = {"status": ws.status, "line": ws.head.split("\r\n")[0] if ws.status else None}
        ws.close()
    r["after"] = served(a)
    return r



def main():
    p = argparse.ArgumentParser()
    p.add_argument("attack")
    p.add_argument("args", nargs="*")
    p.add_argument("--url", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--token", help="use ?token=T instead of ?user=NAME")
    p.add_argument("--good-token", help="the well-behaved client's own token")
    p.add_argument("--no-good", action="store_true")
    a = p.parse_args()
    u = urllib.parse.urlsplit(a.url)
    a.host, a.port, a.path = u.hostname, u.port or 80, u.path or "/ws"
    a.auth = (lambda name: "token=" + a.token) if a.token else (lambda name: "user=" + name)
    if a.good_token:
        good_auth = lambda name: "token=" + a.good_token
    else:
        good_auth = a.auth
    fn = globals().get("att_" + a.attack)
    if not fn:
        sys.exit(64)
    a.good_auth = good_auth
    good = Good(a)
    if not a.no_good:
        good.start()
        good.wait_ready(10)
    t_good = now()
    time.sleep(0.5)
    before = rss_kb(a.pid)
    sampler = Sampler(a.pid)
    sampler.start()
    c0, t0 = cpu_s(a.pid), now()
    try:
        result = fn(a, *a.args)
    except Exception as e:
        result = {"error": "%s: %s" % (type(e).__name__, e)}
    c1, t1 = cpu_s(a.pid), now()
    # at least seven seconds of the good client in all (some 140 round
    # trips), so that its p99 is not simply its one slowest
    if not a.no_good:
        time.sleep(max(1.0, 7.0 - (now() - t_good)))
    sampler.stop.set()
    if not a.no_good:
        good.finish()
        if good.out["error"] and not good.out["rtt"]:
            print(json.dumps({"attack": a.attack, "error": good.out["error"]}))
            sys.exit(70)
    print(json.dumps({"attack": a.attack, "good": good.report() if not a.no_good else None,
                      "rss_kb": {"before": before, "peak": sampler.peak, "after": rss_kb(a.pid)},
                      "cpu_s": round(c1 - c0, 2), "wall_s": round(t1 - t0, 2),
                      "result": result}))


if __name__ == "__main__":
    main()

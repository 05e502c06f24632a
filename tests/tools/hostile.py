#!/usr/bin/env python3
"""hostile: one attack on a running chat-gw from loopback, with a
well-behaved client beside it, measured.

usage: hostile.py ATTACK --url ws://HOST:PORT/ws --pid PID [options]

The well-behaved client ("good") joins room "good" and publishes every
50 ms for the whole run, timing each publish to its ack. The gateway's
RSS (VmRSS of PID) is sampled every 50 ms and its CPU time read at the
start and end of the attack. The report is one JSON object on stdout:

  {"attack":..., "good":{"n":N,"p50_ms":..,"p99_ms":..,"max_ms":..,
   "unanswered":N}, "rss_kb":{"before":..,"peak":..,"after":..},
   "cpu_s":.., "wall_s":.., "result":{...attack's own findings...}}

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
                 method="GET", version="13", timeout=10.0):
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
        self.sock.sendall(("\r\n".join(req) + "\r\n\r\n").encode())
        self.buf = b""
        self.status = self._status()

    def _status(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return 0
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        parts = head.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    def send(self, opcode, payload, fin=True):
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        if n:
            key = (mask * (n // 4 + 1))[:n]
            data = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
        else:
            data = b""
        self.sock.sendall(head + mask + data)

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
    time.sleep(1.0)
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

#!/usr/bin/env python3
"""fake_relay: plays chat-relay --manual-ack for `chat-archive store`, to
test the ack/confirm rules without a broker.

It runs CMD with pipes, delivers COUNT ingest lines with tags (at most
--prefetch unacked at a time, like the relay), answers every message line
that carries "confirm" with {"type":"confirm","confirm":X} (or, for every
--nack-every-th one, {"type":"nack",...}), redelivers a nacked delivery
with a new tag (as the broker does after a requeue), and checks:
  - every ack names a delivered, unacked tag, and comes after that
    delivery's message line was confirmed (never before its COMMIT);
  - every id keeps one seq, and per room the seqs are 1..n with no gap;
  - at the end every delivery is acked once.
--hook-at N --hook CMD runs CMD (sh -c) once N acks were seen, while
the stream goes on (a PostgreSQL restart). The id -> seq pairs go to
--pairs FILE. Prints a JSON summary; exit 0 when nothing was wrong.
"""
import argparse
import json
import os
import selectors
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--rooms", type=int, default=10)
    ap.add_argument("--room-prefix", default="fr")
    ap.add_argument("--id-prefix", default="fr-%d" % os.getpid())
    ap.add_argument("--prefetch", type=int, default=256)
    ap.add_argument("--nack-every", type=int, default=0)
    ap.add_argument("--hook-at", type=int, default=0)
    ap.add_argument("--hook", default="")
    ap.add_argument("--pairs", default="")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    os.set_blocking(p.stdin.fileno(), False)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)

    errors = []
    lines = {}          # index -> ingest line without tag
    todo = list(range(a.count))   # indexes to deliver, in order
    todo.reverse()
    tag_of = {}         # tag -> index
    unacked = set()     # tags delivered, not acked
    confirmed = set()   # tags whose message line was confirmed
    confirm_tag = {}    # confirm value -> tag
    live = {}           # index -> its delivery's tag, until acked or nacked
    seq_of = {}         # id -> seq
    room_seqs = {}      # room -> set of seqs
    acked_idx = set()
    next_tag = 1
    acks = nacks = msgs = 0
    hook = None
    out = b""
    inbuf = b""
    deadline = time.monotonic() + a.timeout

    def line_for(i):
        room = "%s-%d" % (a.room_prefix, i % a.rooms)
        return ('{"type":"publish","id":"%s-%d","room":"%s","from":"u%d",'
                '"ts":%d,"node":"fake","body":{"n":%d,"t":"m\\u00e9 \\"%d\\""}'
                % (a.id_prefix, i, room, i % 7, 1700000000000 + i, i, i))

    while len(acked_idx) < a.count:
        if time.monotonic() > deadline:
            errors.append("timed out: %d of %d acked" % (len(acked_idx), a.count))
            break
        while todo and len(unacked) < a.prefetch:
            i = todo.pop()
            tag = next_tag
            next_tag += 1
            tag_of[tag] = i
            live[i] = tag
            unacked.add(tag)
            lines.setdefault(i, line_for(i))
            out += (lines[i] + ',"tag":%d}\n' % tag).encode()
        if out:
            try:
                n = os.write(p.stdin.fileno(), out)
                out = out[n:]
            except BlockingIOError:
                pass
            except BrokenPipeError:
                errors.append("store closed its stdin")
                break
        if not sel.select(timeout=0.05 if out else 1):
            if p.poll() is not None:
                errors.append("store exited early with %d" % p.returncode)
                break
            continue
        chunk = os.read(p.stdout.fileno(), 1 << 16)
        if not chunk:
            errors.append("store closed its stdout (exit %s)" % p.poll())
            break
        inbuf += chunk
        *full, inbuf = inbuf.split(b"\n")
        for raw in full:
            m = json.loads(raw)
            t = m.get("type")
            if t == "message":
                msgs += 1
                x = m.get("confirm")
                if x is None:
                    errors.append("message without confirm: %s" % raw[:80])
                    continue
                mid, seq, room = m["id"], m["seq"], m["room"]
                if seq_of.setdefault(mid, seq) != seq:
                    errors.append("id %s got seq %d and %d" % (mid, seq_of[mid], seq))
                room_seqs.setdefault(room, set()).add(seq)
                # The confirm maps to the live delivery of this id.
                idx = int(mid.rsplit("-", 1)[1])
                tag = live.get(idx)
                if tag is None or tag in confirmed:
                    errors.append("message for no delivery: %s" % mid)
                    continue
                confirm_tag[x] = tag
                nack = a.nack_every and msgs % a.nack_every == 0
                kind = "nack" if nack else "confirm"
                if not nack:
                    confirmed.add(tag)
                out += ('{"type":"%s","confirm":%s}\n' % (kind, json.dumps(x))).encode()
            elif t == "ack":
                tag = m["tag"]
                if tag not in unacked:
                    errors.append("ack of tag %d not pending" % tag)
                    continue
                if tag not in confirmed:
                    errors.append("ack of tag %d before its confirm" % tag)
                unacked.discard(tag)
                live.pop(tag_of[tag], None)
                acked_idx.add(tag_of[tag])
                acks += 1
                if a.hook_at and acks == a.hook_at and a.hook:
                    hook = subprocess.Popen(["sh", "-c", a.hook])
            elif t == "nack":
                tag = m["tag"]
                if tag not in unacked or not m.get("requeue"):
                    errors.append("bad nack %s" % raw[:80])
                    continue
                unacked.discard(tag)
                live.pop(tag_of[tag], None)
                nacks += 1
                todo.append(tag_of[tag])   # redelivered next
            else:
                errors.append("unexpected line %s" % raw[:80])

    try:
        p.stdin.close()
    except OSError:
        pass
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
        errors.append("store did not exit after EOF")
    if rc != 0:
        errors.append("store exit status %d" % rc)
    if hook is not None and hook.wait(timeout=60) != 0:
        errors.append("hook failed")
    for room, seqs in room_seqs.items():
        if seqs != set(range(1, len(seqs) + 1)):
            errors.append("room %s seqs not 1..%d" % (room, len(seqs)))
    if a.pairs:
        with open(a.pairs, "w") as f:
            for mid, seq in sorted(seq_of.items()):
                f.write("%s %d\n" % (mid, seq))
    print(json.dumps({"acked": len(acked_idx), "acks": acks, "nacks": nacks,
                      "messages": msgs, "ids": len(seq_of),
                      "errors": errors[:20]}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""confirmer: plays the relay for a bus-mode chat-gw in the hostile tests,
with no broker: reads the gateway's stdout lines on stdin and writes on
stdout (the gateway's stdin) a confirm for every publish and an empty
recovered answer for every recover query (a join's), and nothing for
other queries (they time out, as when nobody answers them). Stops at end
of input.
"""
import json
import sys


def main():
    out = sys.stdout
    for line in sys.stdin:
        try:
            m = json.loads(line)
        except ValueError:
            continue
        t = m.get("type")
        if t == "publish" and "confirm" in m:
            out.write(json.dumps({"type": "confirm", "confirm": m["confirm"]}) + "\n")
        elif t == "recover" and "rpc" in m:
            out.write(json.dumps({"type": "recovered", "rpc": m["rpc"], "room": m.get("room"),
                                  "seq": 0, "messages": []}) + "\n")
        else:
            continue
        out.flush()


if __name__ == "__main__":
    main()

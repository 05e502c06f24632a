#!/usr/bin/python3
"""pyws: a client we did not write (Debian's python3-websockets, asyncio
API) for the tests: what a common WebSocket library makes of chat-gw.

usage: pyws.py URL [--timeout S] ACTION...

Actions, run in order:
  send:TEXT       send a text frame
  recv            receive one message and print it
  recvuntil:SUB   receive and print messages until one contains SUB
Prints "status CODE" and exits 2 when the handshake is refused with an HTTP
status, "invalid TEXT" and exits 3 when the library cannot read the
response at all, "closed CODE" when the server closes. Exit 0 otherwise.
Run with Debian's /usr/bin/python3, where python3-websockets lives.
"""
import argparse
import asyncio
import sys

import websockets


async def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("actions", nargs="*")
    opts = ap.parse_args(argv[1:])
    url, timeout, actions = opts.url, opts.timeout, opts.actions
    try:
        ws = await asyncio.wait_for(
            websockets.connect(url, subprotocols=["chat.v1"]), timeout)
    except websockets.exceptions.InvalidStatusCode as e:
        print("status %d" % e.status_code)
        return 2
    except websockets.exceptions.InvalidHandshake as e:
        print("invalid %s" % e)
        return 3
    try:
        for a in actions:
            if a.startswith("send:"):
                await ws.send(a[5:])
            elif a == "recv":
                print(await asyncio.wait_for(ws.recv(), timeout))
            elif a.startswith("recvuntil:"):
                while True:
                    m = await asyncio.wait_for(ws.recv(), timeout)
                    print(m)
                    if a[10:] in m:
                        break
            else:
                print("unknown action %s" % a, file=sys.stderr)
                return 64
        await ws.close()
    except websockets.exceptions.ConnectionClosed as e:
        print("closed %s" % (e.rcvd.code if e.rcvd else "none"))
    return 0


sys.exit(asyncio.run(main(sys.argv)))

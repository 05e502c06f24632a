#!/usr/bin/env bats
# chat-gw speaking TLS itself (--tls-cert, --tls-key): wss:// with chat-cli
# (--ca, --insecure) and with Python's websockets, https:// for /healthz,
# and a certificate changed on SIGHUP without dropping a connection.

bats_require_minimum_version 1.5.0
load ../helper

# cert NAME: a self-signed certificate for localhost and 127.0.0.1 in
# $T/NAME.crt, its key in $T/NAME.key.
cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/$1.key" -out "$T/$1.crt" -days 2 -subj "/CN=chat-$1" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
}

setup() {
	T=$BATS_TEST_TMPDIR
	cert one
	cp "$T/one.crt" "$T/gw.crt"
	cp "$T/one.key" "$T/gw.key"
	start_gw --standalone --auth none --tls-cert "$T/gw.crt" --tls-key "$T/gw.key" -v 2
	GW_WSS="wss://localhost:${GW_ADDR##*:}/ws"
	GW_HTTPS="https://localhost:${GW_ADDR##*:}"
}

teardown() {
	stop_gw
}

# serial_seen: the CN of the certificate the gateway shows a new client.
cn_seen() {
	openssl s_client -connect "$GW_ADDR" -servername localhost </dev/null 2>/dev/null |
		openssl x509 -noout -subject | sed 's/.*CN *= *//'
}

@test "wss:// with chat-cli --ca; refused without it; --insecure for tests" {
	run --separate-stderr "$BIN/chat-cli" send "$GW_WSS" --ca "$T/one.crt" --user alice --room r hi
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .type)" = ack ]
	run --separate-stderr "$BIN/chat-cli" send "$GW_WSS" --user alice --room r hi
	[ "$status" -eq 69 ]
	run --separate-stderr "$BIN/chat-cli" send "$GW_WSS" --insecure --user alice --room r hi
	[ "$status" -eq 0 ]
	# the plain scheme on a TLS port gets nowhere
	run --separate-stderr "$BIN/chat-cli" send "ws://$GW_ADDR/ws" --user alice --room r hi
	[ "$status" -ne 0 ]
}

@test "https:// /healthz, and Python's websockets over TLS" {
	run curl -s --cacert "$T/one.crt" "$GW_HTTPS/healthz"
	[ "$output" = ok ]
	run /usr/bin/python3 -c '
import asyncio, ssl, sys, websockets
async def main():
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    async with websockets.connect(sys.argv[1], ssl=ctx, subprotocols=["chat.v1"]) as ws:
        await ws.send("{\"type\":\"join\",\"room\":\"py\"}")
        print(await ws.recv())
asyncio.run(main())' "$GW_WSS?user=py" "$T/one.crt"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .type)" = joined ]
}

@test "SIGHUP: a new certificate for new connections, the old connections stay" {
	[ "$(cn_seen)" = chat-one ]
	mkfifo "$T/a.in"
	"$BIN/chat-cli" connect "$GW_WSS" --ca "$T/one.crt" --user alice --room h \
		<"$T/a.in" >"$T/a.out" 2>"$T/a.err" &
	a=$!
	exec {AIN}>"$T/a.in"
	wait_for 10 grep -q joined "$T/a.out"
	cert two
	cp "$T/two.crt" "$T/gw.crt"
	cp "$T/two.key" "$T/gw.key"
	kill -HUP "$GW_PID"
	wait_for 10 grep -q 'certificate reloaded' "$GW_LOG"
	[ "$(cn_seen)" = chat-two ]
	run --separate-stderr "$BIN/chat-cli" send "$GW_WSS" --ca "$T/two.crt" --user bob --room h new
	[ "$status" -eq 0 ]
	# alice, on the old certificate, is still there and chatting
	echo still-here >&"$AIN"
	wait_for 10 grep -q '"body":"still-here"' "$T/a.out"
	grep -q '"body":"new"' "$T/a.out"
	exec {AIN}>&-
	wait_exit "$a" 10
	[ "$WAIT_STATUS" -eq 0 ]
	# a key that does not load keeps the certificate in use
	echo broken >"$T/gw.key"
	kill -HUP "$GW_PID"
	wait_for 10 grep -q 'unable to reload the certificate' "$GW_LOG"
	[ "$(cn_seen)" = chat-two ]
}

@test "--tls-cert without --tls-key is a usage error; a bad certificate exits 78" {
	run --separate-stderr "$BIN/chat-gw" --standalone --auth none --tls-cert "$T/one.crt"
	[ "$status" -eq 64 ]
	echo junk >"$T/junk.crt"
	run --separate-stderr "$BIN/chat-gw" --standalone --auth none --listen 127.0.0.1:0 \
		--tls-cert "$T/junk.crt" --tls-key "$T/one.key"
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"unable to load certificate"* ]]
}

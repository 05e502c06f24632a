#!/usr/bin/env bats
# chat-gw's browser client (GET /) in a real headless Chromium against the
# full system, driven by Playwright from tests/browser/bus.test.mjs: two
# gateways, each the child of its own chat-relay, and the archive (store on
# chat.ingest.0, serve on rpc.history) on a private RabbitMQ and a private
# PostgreSQL, and chat-presence on a private Redis, started as
# tests/integration/bus.bats starts them. Without chat-presence a presence
# query in bus mode gets "unavailable", which the page must take quietly:
# one test runs without it. Needs /usr/bin/chromium and playwright-core (see
# browser.bats).

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	if [ ! -d "$TOP/tests/browser/node_modules/playwright-core" ]; then
		timeout 300 npm ci --prefix "$TOP/tests/browser" --no-audit --no-fund \
			--loglevel=error >"$BATS_FILE_TMPDIR/npm.log" 2>&1 || {
			echo "npm ci in tests/browser failed:" >&2
			cat "$BATS_FILE_TMPDIR/npm.log" >&2
			return 1
		}
	fi
	rabbitmq_up || return 1
	postgres_up || return 1
	"$BIN/chat-archive" init >/dev/null
	if has_presence; then redis_up || return 1; fi
}

teardown_file() {
	if [ -n "${REDIS_DIR:-}" ]; then redis_down; fi
	rabbitmq_down
	postgres_down
}

setup() {
	# A missing browser is a failure, not a skip: scripts/deps installs it.
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || {
		echo "no ${CHROMIUM:-/usr/bin/chromium} (scripts/deps installs chromium)" >&2
		return 1
	}
	T=$BATS_TEST_TMPDIR
	PIDS=
	PRESENCE=
	start_sequencer
	if has_presence && [[ "$BATS_TEST_DESCRIPTION" != *"without chat-presence"* ]]; then
		start_presence
	fi
	start_pair gw1
	start_pair gw2
}

teardown() {
	local p
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait_exit "$p" 15 || true; done
}

# has_presence: chat-presence is built.
has_presence() {
	[ -x "$BIN/chat-presence" ]
}

# start_sequencer: the archive: store on the ingest queue, serve on
# rpc.history, each behind its relay (as in bus.bats).
start_sequencer() {
	"$BIN/chat-relay" --manual-ack --queue chat.ingest.0 -- "$BIN/chat-archive" store \
		>"$T/store.out" 2>"$T/store.err" </dev/null 3>&- &
	PIDS="$PIDS $!"
	"$BIN/chat-relay" --queue chat.rpc.history --bind chat:rpc.history \
		-- "$BIN/chat-archive" serve >"$T/serve.out" 2>"$T/serve.err" </dev/null 3>&- &
	PIDS="$PIDS $!"
}

# start_presence: chat-presence track behind its relay, on presence lines
# and rpc.presence queries, a single active consumer so that lines apply in
# order (as in bus.bats; CHAT_REDIS_URL from redis_up); PRESENCE=1.
start_presence() {
	"$BIN/chat-relay" --single-active --queue chat.presence --bind chat:presence \
		--bind chat:rpc.presence \
		-- "$BIN/chat-presence" track --redis "$CHAT_REDIS_URL" \
		>"$T/presence.out" 2>"$T/presence.err" </dev/null 3>&- &
	PIDS="$PIDS $!"
	PRESENCE=1
}

# start_pair NAME: chat-relay --node NAME -- chat-gw (as in bus.bats); sets
# NAME_HTTP, and NAME_PIDS to the relay's pid and the gateway's.
start_pair() {
	local name=$1 fifo="$T/$1.ready" addr= relay gw
	mkfifo "$fifo"
	"$BIN/chat-relay" --node "$name" --exclusive --bind "chat:msg.#" --bind "chat:evt.#" \
		-- "$BIN/chat-gw" --auth none --listen 127.0.0.1:0 \
		--ready-fd 3 --bus-timeout 2s \
		3>"$fifo" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	relay=$!
	PIDS="$PIDS $relay"
	read -r -t 30 addr <"$fifo" || { cat "$T/$name.err" >&2; return 1; }
	gw=$(cat "/proc/$relay/task/$relay/children")
	eval "${name}_HTTP=http://$addr"
	eval "${name}_PIDS='$relay $gw'"
}

# browser_test PART: the part of tests/browser/bus.test.mjs named, bounded;
# on failure its report and the logs.
browser_test() {
	run timeout 100 env GW1_HTTP="$gw1_HTTP" GW2_HTTP="$gw2_HTTP" GW1_PIDS="$gw1_PIDS" \
		PRESENCE="$PRESENCE" PART="$1" \
		node --test --test-reporter=spec "$TOP/tests/browser/bus.test.mjs"
	if [ "$status" -ne 0 ]; then
		echo "node --test tests/browser/bus.test.mjs (PART=$1) exited $status:"
		echo "$output"
		for f in gw1.err gw2.err store.err serve.err presence.err; do
			[ -s "$T/$f" ] && { echo "--- $f"; tail -n 30 "$T/$f"; }
		done
		return 1
	fi
}

@test "browser on the bus: pages on two gateways chat, a reload shows history, a gateway killed under a page loses nothing" {
	browser_test chat
}

@test "browser on the bus: presence shows both pages across gateways" {
	has_presence || skip "no bin/chat-presence: in bus mode chat-presence answers presence queries"
	browser_test presence
}

@test "browser on the bus without chat-presence: a presence query's unavailable is taken quietly" {
	browser_test nopresence
}

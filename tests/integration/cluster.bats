#!/usr/bin/env bats
# A 3-node RabbitMQ cluster on loopback (scripts/rabbitmq cluster: three
# private nodes, one epmd, one cookie), every relay with --quorum and the
# three brokers (in a different order per relay, so they spread over the
# nodes): the archive (store on chat.ingest.0, serve on rpc.history, a
# private PostgreSQL) and two gateways. chat-cli bench streams messages
# into rooms through both gateways; during the stream the node that the
# store and one gateway are connected to is killed (SIGKILL, a crash).
# Every acked message is delivered to every subscriber exactly once (the
# bench checks every seq at every subscriber), history holds each room's
# messages once with no gap, and the relays that lost their node are
# connected to a surviving one.

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	export CL_DIR="$BATS_FILE_TMPDIR/cluster"
	export URLS
	# (three nodes boot at once beside two other suites on two cores: more
	# than scripts/rabbitmq's default 60 s per node may be needed)
	URLS=$(RABBITMQ_START_TIMEOUT=180 "$TOP/scripts/rabbitmq" cluster "$CL_DIR" 3) || return 1
	postgres_up || return 1
	"$BIN/chat-archive" init >/dev/null
}

teardown_file() {
	"$TOP/scripts/rabbitmq" stop "$CL_DIR"
	postgres_down
}

setup() {
	T=$BATS_TEST_TMPDIR
	PIDS=
}

teardown() {
	local p
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait_exit "$p" 15 || true; done
}

# relay NAME URLFILE ARGS...: chat-relay --quorum with the brokers of
# URLFILE, in the background, once it is connected (its --ready-fd line,
# written to a fifo); its log in $T/NAME.err, its pid in PID.
relay() {
	local name=$1 urls=$2 fifo="$T/$1.relay-ready" line
	shift 2
	mkfifo "$fifo"
	"$BIN/chat-relay" -v 2 --quorum --url-file "$urls" \
		--backoff-max 1s --connect-timeout "$CONNECT_TIMEOUT" --ready-fd 4 "$@" \
		>"$T/$name.out" 2>"$T/$name.err" </dev/null 4>"$fifo" &
	PID=$!
	PIDS="$PIDS $PID"
	read -r -t 60 line <"$fifo" || { cat "$T/$name.err" >&2; return 1; }
}

# --connect-timeout bounds each declare too: a quorum queue's declare on a
# loaded three-node cluster can take seconds, and past the bound the relay
# moves on to its next broker (and broker_of below says 1, not 0). A node
# that is killed refuses at once, so a longer bound does not slow the
# failover under test.
CONNECT_TIMEOUT=10s

# gateway NAME URLFILE: chat-relay -- chat-gw on a free port; NAME_URL.
# The gateway writes its address to a fifo, which the background relay
# opens (opening it here would wait for the reader below).
gateway() {
	local name=$1 fifo="$T/$1.ready" addr=
	mkfifo "$fifo"
	"$BIN/chat-relay" -v 2 --quorum --url-file "$2" \
		--backoff-max 1s --connect-timeout "$CONNECT_TIMEOUT" --node "$name" --exclusive \
		--bind 'chat:msg.#' --bind 'chat:evt.#' -- "$BIN/chat-gw" --auth none \
		--listen 127.0.0.1:0 --ready-fd 3 --rate 100000 --burst 100000 \
		--bus-timeout 3s >"$T/$name.out" 2>"$T/$name.err" </dev/null 3>"$fifo" &
	PIDS="$PIDS $!"
	read -r -t 30 addr <"$fifo" || { cat "$T/$name.err" >&2; return 1; }
	eval "${name}_URL=ws://$addr/ws"
}

stored() { sql "SELECT count(*) FROM messages WHERE room LIKE 'bench-%'"; }
stored_at_least() { [ "$(stored)" -ge "$1" ]; }

# broker_of NAME: the index, in the relay's own list, of the broker its
# last connection went to (its log: "connected" at start, "reconnected to
# the broker" after).
broker_of() {
	grep -E 'msg="(connected|reconnected to the broker)"' "$T/$1.err" |
		tail -n 1 | sed -n 's/.* broker=\([0-9]*\).*/\1/p'
}

# urls_from K: a --url-file with node K first, then the others in turn
# (the relay tries them in that order); its path. Written once, complete,
# before any relay reads it.
urls_from() {
	local f=$T/urls-$1 i
	if [ ! -s "$f" ]; then
		for i in $1 $(( $1 % 3 + 1 )) $(( ($1 + 1) % 3 + 1 )); do
			"$TOP/scripts/rabbitmq" url "$CL_DIR/$i"
		done >"$f.tmp" && mv "$f.tmp" "$f"
	fi
	echo "$f"
}

# leader: the number (1..3) of the node that leads the ingest queue.
leader() {
	local name i
	name=$("$TOP/scripts/rabbitmq" ctl "$1" list_queues name leader --formatter json 2>/dev/null |
		jq -r '.[] | select(.name == "chat.ingest.0") | .leader')
	for i in 1 2 3; do
		[ "$(. "$CL_DIR/$i/node.env" && echo "$NODENAME")" = "$name" ] && echo "$i"
	done
	return 0
}

# stream KILL: the archive and two gateways, chat-cli bench through both
# (40 connections, 4 rooms of 10 on both gateways, 8 publishers, 100 msg/s
# for 15 s); once 300 messages are stored, node KILL is killed. Checks the
# bench's accounting (nothing lost, nothing twice, at most DROPS
# connections dropped by a gateway, default none), that
# the stream went on, and history (every room's seqs 1..n once, at least
# every acked message stored). The bench runs with --reconnect, as in the
# other fault tests: its clients do what chat-protocol(7) asks of one. A
# gateway whose exclusive queue went with the node asks the archive for
# what it missed; while the history queue elects a new leader those
# queries can go unanswered past their three tries, and the gateway then
# delivers with a gap, which the client fills from history (seen in a
# loaded ASan run: one message, at the 10 subscribers of its room, was
# counted lost by a bench that did not fill gaps). A publish answered
# unavailable is sent again with its ref.
stream() {
	local kill=$1 drops=${2:-0} before acked
	before=$(stored)
	"$BIN/chat-cli" bench "$gw1_URL,$gw2_URL" --conns 40 --rooms 4 \
		--publishers 8 --rate 100 --warmup 1s --duration 15s --timeout 40s \
		--reconnect --json >"$T/bench.json" 2>"$T/bench.err" </dev/null &
	bench=$!
	PIDS="$PIDS $bench"
	wait_for 60 stored_at_least $((before + 300))
	"$TOP/scripts/rabbitmq" kill "$CL_DIR/$kill"
	acked_at_kill=$(( $(stored) - before ))
	wait_exit "$bench" 120
	[ "$WAIT_STATUS" -eq 0 ] || { cat "$T/bench.err" >&3; false; }
	jq -c '{messages, deliveries, connections}' "$T/bench.json" >&3
	if [ "$(jq .deliveries.lost "$T/bench.json")" -ne 0 ]; then
		# what the gateways say of their catch-ups
		grep -h "catch-up\|recovering a room\|relay gone\|lost the broker" \
			"$T"/gw*.err | tail -20 >&3 || true
	fi
	[ "$(jq .deliveries.lost "$T/bench.json")" -eq 0 ]
	[ "$(jq .deliveries.duplicates "$T/bench.json")" -eq 0 ]
	[ "$(jq .connections.dropped "$T/bench.json")" -le "$drops" ]
	[ "$(jq .deliveries.received "$T/bench.json")" -ge "$(jq .deliveries.expected "$T/bench.json")" ]
	acked=$(jq .messages.acked "$T/bench.json")
	[ "$(sql "SELECT count(*) FROM (SELECT room FROM messages WHERE room LIKE 'bench-%' GROUP BY room HAVING count(*) <> max(seq) OR min(seq) <> 1) x")" = 0 ]
	[ "$(stored)" -ge "$acked" ]
	STREAM_ACKED=$acked
}

# send_after: a message through gw1 after the kill is acked and stored.
send_after() {
	local id
	run --separate-stderr "$BIN/chat-cli" send "$gw1_URL" --user after --room "after-$1" "still here"
	[ "$status" -eq 0 ] || return 1
	id=$(jq -r 'select(.type == "ack") | .id' <<<"$output")
	wait_for 30 bash -c "[ \"\$(PGOPTIONS='-c client_min_messages=warning' psql -X -q -A -t '$CHAT_DB_URL' -c \"SELECT seq FROM messages WHERE id = '$id'\")\" = 1 ]"
}

@test "cluster: three nodes, one cluster; the relays' queues are quorum queues" {
	run "$TOP/scripts/rabbitmq" ctl "$CL_DIR/2" cluster_status --formatter json
	[ "$status" -eq 0 ]
	[ "$(jq '.running_nodes | length' <<<"$output")" -eq 3 ]
	[ "$(tr , '\n' <<<"$URLS" | wc -l)" -eq 3 ]
	# the first relay declares the ingest queue: its leader is on node 2
	relay serve "$(urls_from 2)" --node serve --queue chat.rpc.history \
		--bind chat:rpc.history -- "$BIN/chat-archive" serve
	# (the relay is ready once both are declared)
	run "$TOP/scripts/rabbitmq" ctl "$CL_DIR/3" list_queues name type
	grep -q 'chat.ingest.0.*quorum' <<<"$output"
	grep -q 'chat.rpc.history.*quorum' <<<"$output"
	[ "$(leader "$CL_DIR/3")" = 2 ]
}

@test "cluster: a node killed during a stream: every acked message once at every subscriber, stored once; the relays on it go to the survivors" {
	relay serve "$(urls_from 2)" --node serve --queue chat.rpc.history \
		--bind chat:rpc.history -- "$BIN/chat-archive" serve
	relay store "$(urls_from 1)" --node store --manual-ack --queue chat.ingest.0 \
		-- "$BIN/chat-archive" store
	gateway gw1 "$(urls_from 1)"
	gateway gw2 "$(urls_from 2)"
	[ "$(broker_of gw1)" = 0 ] && [ "$(broker_of store)" = 0 ] && [ "$(broker_of gw2)" = 0 ]
	# node 1 holds the store's and gw1's connections, and a replica of the
	# ingest queue (not its leader: see the next test)
	[ "$(leader "$CL_DIR/2")" = 2 ]
	stream 1
	[ "$STREAM_ACKED" -gt $((acked_at_kill + 300)) ]
	# the relays that were on node 1 went to node 2 or 3; gw2 stayed
	grep -q 'reconnected to the broker' "$T/gw1.err"
	grep -q 'reconnected to the broker' "$T/store.err"
	[[ "$(broker_of gw1)" == [12] ]]
	[[ "$(broker_of store)" == [12] ]]
	! grep -q 'reconnected to the broker' "$T/gw2.err"
	send_after 1
	# node 1 comes back and rejoins the cluster
	"$TOP/scripts/rabbitmq" start "$CL_DIR/1" >/dev/null
	wait_for 60 bash -c "[ \"\$('$TOP/scripts/rabbitmq' ctl '$CL_DIR/1' cluster_status --formatter json 2>/dev/null | jq '.running_nodes | length')\" = 3 ]"
}

@test "cluster: the node of the ingest queue's leader killed during a stream: nothing acked is lost or doubled" {
	# the ingest queue exists (a relay declares it, then ends at EOF)
	"$BIN/chat-relay" --quorum --url-file "$(urls_from 1)" pub </dev/null
	L=$(leader "$CL_DIR/1")
	[[ "$L" == [123] ]]
	relay serve "$(urls_from $(( L % 3 + 1 )))" --node serve --queue chat.rpc.history \
		--bind chat:rpc.history -- "$BIN/chat-archive" serve
	relay store "$(urls_from "$L")" --node store --manual-ack --queue chat.ingest.0 \
		-- "$BIN/chat-archive" store
	gateway gw1 "$(urls_from "$L")"
	gateway gw2 "$(urls_from $(( L % 3 + 1 )))"
	# (gw1 may drop its clients: see below; those it keeps lose nothing)
	stream "$L" 20
	[[ "$(broker_of gw1)" == [12] ]]
	[[ "$(broker_of store)" == [12] ]]
	# RabbitMQ 3.10 may nack every publish of a channel opened on a
	# survivor while the queue elected its new leader (gw1's relay
	# reconnects within 100 ms); the relay drops such a connection after
	# a run of nacks, and gw1 publishes again.
	if ! send_after 2; then
		grep -c 'basic.nack' "$T/gw1.err" | sed 's/^/# gw1 nacks: /' >&3
		false
	fi
	if grep -q 'the broker nacks every publish' "$T/gw1.err"; then
		echo "# gw1's relay dropped a nacked connection" >&3
	fi
}

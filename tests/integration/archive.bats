#!/usr/bin/env bats
# chat-archive on the bus: a private RabbitMQ and a private PostgreSQL,
# chat-relay from this tree. Ingest lines published with `chat-relay pub`
# reach `chat-archive store` under `chat-relay --manual-ack`; the sequenced
# messages reach a `chat-relay sub` bound to msg.#; a query published to
# rpc.history is answered by `chat-archive serve` to node.NODE.
# The test declares its own ingest queue (bound to a key of its own), so it
# does not depend on how the relay names or declares the ingest shards;
# the messages are checked on their members, not on their exact bytes (an
# older relay keeps "route" and "confirm" in the body).

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	rabbitmq_up || return 1
	postgres_up || return 1
	"$BIN/chat-archive" init >/dev/null
}

teardown_file() {
	rabbitmq_down
	postgres_down
}

setup() {
	T=$BATS_TEST_TMPDIR
	PIDS=
}

teardown() {
	local p
	for p in $PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait_exit "$p" 20 || true
	done
}

# bg NAME ARGS...: chat-relay ARGS in the background, stdout and stderr in
# $T/NAME.out and $T/NAME.err; waits for its --ready-fd. Its pid is $PID.
bg() {
	local name=$1
	shift
	"$BIN/chat-relay" --ready-fd 5 "$@" </dev/null >"$T/$name.out" \
		2>"$T/$name.err" 5>"$T/$name.ready" 3>&- &
	PID=$!
	PIDS="$PIDS $PID"
	wait_for 20 test -s "$T/$name.ready" || {
		cat "$T/$name.err" >&3
		return 1
	}
}

# messages FILE: the message lines in FILE (deliveries of msg.#).
messages() {
	jq -c 'select(.type == "message")' "$1" 2>/dev/null
}

has_messages() { [ "$(messages "$1" | wc -l)" -ge "$2" ]; }

@test "ingest -> relay -> store -> relay -> msg.#: every message once, seqs 1..n per room, acked" {
	local n=2000 q=archive.itest.in
	bg sub sub --exclusive --bind 'chat:msg.#'
	bg store --manual-ack --queue "$q" --bind "chat:$q" --prefetch 1000 \
		-- "$BIN/chat-archive" --metrics-file "$T/m" store
	local store_pid=$PID
	awk -v n="$n" -v q="$q" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "{\"type\":\"publish\",\"route\":\"%s\",\"id\":\"it-%d\",\"room\":\"it-%d\",\"from\":\"u\",\"ts\":%.0f,\"node\":\"gw\",\"body\":{\"n\":%d}}\n", q, i, i % 5, 1700000000000 + i, i
	}' >"$T/in"
	run --separate-stderr timeout 60 "$BIN/chat-relay" pub <"$T/in"
	[ "$status" -eq 0 ]
	wait_for 60 has_messages "$T/sub.out" "$n"
	messages "$T/sub.out" >"$T/msgs"
	# every id once (the sub saw no redelivery), each room 1..n/5 in order
	[ "$(jq -r .id "$T/msgs" | sort -u | wc -l)" -eq "$n" ]
	[ "$(wc -l <"$T/msgs")" -eq "$n" ]
	for r in 0 1 2 3 4; do
		[ "$(jq -r "select(.room == \"it-$r\") | .seq" "$T/msgs" | tr '\n' ' ')" = "$(seq -s ' ' 1 $((n / 5))) " ]
	done
	# the body as it was published
	[ "$(jq -c 'select(.id == "it-7") | [.room, .seq, .from, .ts, .body]' "$T/msgs")" = '["it-2",2,"u",1700000000007,{"n":7}]' ]
	# the store acked everything once its confirms came back
	kill -TERM "$store_pid"
	wait_exit "$store_pid" 20
	PIDS=${PIDS// $store_pid/}
	[ "$("$TOP/tests/tools/prom" "$T/m" chat_archive_acks_total)" = "$n" ]
	[ "$("$TOP/tests/tools/prom" "$T/m" chat_archive_messages_stored_total)" = "$n" ]
	[ "$(sql "SELECT count(*) FROM messages WHERE room LIKE 'it-%'")" = "$n" ]
}

@test "a recover query on rpc.history is answered by serve to node.NODE" {
	local i
	for i in 1 2 3; do
		printf '{"type":"publish","id":"itq-%d","room":"itq","from":"u","ts":1,"node":"gw","body":%d}\n' "$i" "$i"
	done | "$BIN/chat-archive" store >/dev/null
	bg serve --queue chat.rpc.history --bind chat:rpc.history -- "$BIN/chat-archive" serve
	# A child that asks once and prints the answer it gets on node.itest.
	run --separate-stderr timeout 60 "$BIN/chat-relay" --exclusive --bind chat:node.itest -- sh -c '
		echo "{\"type\":\"recover\",\"route\":\"rpc.history\",\"rpc\":\"itest-1\",\"node\":\"itest\",\"room\":\"itq\",\"since\":1}"
		while read -r line; do
			case $line in *\"rpc\":\"itest-1\"*) echo "$line" >&2; exit 0 ;; esac
		done
		exit 1'
	[ "$status" -eq 0 ]
	[ "$(jq -c '[.type, .rpc, .room, .seq, [.messages[].seq], [.messages[].body]]' <<<"$stderr")" = '["recovered","itest-1","itq",3,[2,3],[2,3]]' ]
}

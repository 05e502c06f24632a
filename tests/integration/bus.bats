#!/usr/bin/env bats
# chat-gw on the bus: two gateways, each the child of its own chat-relay
# (exclusive auto-delete queue bound to msg.#, evt.# and node.NODE), and a
# sequencing stand-in (seq-standin.jq) behind a third relay on the durable
# ingest queue, all against a private RabbitMQ on loopback.

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	rabbitmq_up
}

teardown_file() {
	rabbitmq_down
}

setup() {
	T=$BATS_TEST_TMPDIR
	PIDS=
	start_sequencer
	start_pair gw1
	start_pair gw2
}

teardown() {
	local p
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait_exit "$p" 15 || true; done
	if ! "$TOP/scripts/rabbitmq" status "$RMQ_DIR"; then
		"$TOP/scripts/rabbitmq" start "$RMQ_DIR" >/dev/null
	fi
}

# start_sequencer: the stand-in behind a relay on the ingest queue and rpc.#.
start_sequencer() {
	"$BIN/chat-relay" --queue chat.ingest.0 --bind chat:ingest.0 --bind chat:rpc.# \
		-- jq -nc --unbuffered -f "$TOP/tests/integration/seq-standin.jq" \
		>"$T/seq.out" 2>"$T/seq.err" </dev/null 3>&- &
	SEQ_PID=$!
	PIDS="$PIDS $SEQ_PID"
}

# start_pair NAME: chat-relay -- chat-gw --node NAME; sets NAME_URL and
# NAME_RELAY. The gateway inherits the readiness fifo through the relay.
start_pair() {
	local name=$1 fifo="$T/$1.ready" addr=
	mkfifo "$fifo"
	"$BIN/chat-relay" --exclusive --bind "chat:msg.#" --bind "chat:evt.#" \
		--bind "chat:node.$name" \
		-- "$BIN/chat-gw" --auth none --node "$name" --listen 127.0.0.1:0 \
		--ready-fd 3 --rate 100000 --burst 100000 --bus-timeout 2s \
		3>"$fifo" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
	PIDS="$PIDS $!"
	eval "${name}_RELAY=$!"
	read -r -t 30 addr <"$fifo" || { cat "$T/$name.err" >&2; return 1; }
	eval "${name}_URL=ws://$addr/ws"
	eval "${name}_HTTP=http://$addr"
}

# listen NAME URL USER ROOM [--since N]: a chat-cli connect in the background
# whose stdin stays open; its output in $T/NAME.frames.
listen() {
	local name=$1 url=$2 user=$3 room=$4
	shift 4
	mkfifo "$T/$name.in"
	"$BIN/chat-cli" connect "$url" --user "$user" --room "$room" "$@" \
		<"$T/$name.in" >"$T/$name.frames" 2>"$T/$name.cerr" 3>&- &
	PIDS="$PIDS $!"
	exec {fd}>"$T/$name.in"
	eval "LISTEN_FD_$name=$fd"
	wait_for 20 grep -q '"type":"joined"' "$T/$name.frames"
}

has() { grep -q -- "$2" "$T/$1.frames"; }
say() { local fd; eval "fd=\$LISTEN_FD_$1"; printf '%s\n' "$2" >&"$fd"; }
seqs() { jq -r 'select(.type == "message") | .seq' "$T/$1.frames" | tr '\n' ' '; }

@test "a message published on one gateway reaches members on both, with one seq" {
	listen a "$gw1_URL" alice room1
	listen b "$gw2_URL" bob room1
	run --separate-stderr "$BIN/chat-cli" send "$gw1_URL" --user carol --room room1 "across"
	[ "$status" -eq 0 ]
	id=$(echo "$output" | frames_of ack | jq -r .id)
	[[ "$id" == gw1-* ]]
	wait_for 20 has a '"body":"across"'
	wait_for 20 has b '"body":"across"'
	[ "$(jq -c 'select(.type=="message") | [.seq, .id, .from]' "$T/a.frames")" = "[1,\"$id\",\"carol\"]" ]
	[ "$(jq -c 'select(.type=="message") | [.seq, .id, .from]' "$T/b.frames")" = "[1,\"$id\",\"carol\"]" ]
	# bus-only fields never reach clients
	! grep -q '"route"\|"node"\|"confirm"' "$T/a.frames" "$T/b.frames"
}

@test "two publishers on two gateways: every member sees seq 1..200 in order" {
	listen a "$gw1_URL" alice ord
	listen b "$gw2_URL" bob ord
	seq 1 100 | "$BIN/chat-cli" connect "$gw1_URL" --user p1 --room ord >"$T/p1" &
	p1=$!
	seq 101 200 | "$BIN/chat-cli" connect "$gw2_URL" --user p2 --room ord >"$T/p2"
	wait "$p1"
	[ "$(frames_of ack <"$T/p1" | wc -l)" -eq 100 ]
	[ "$(frames_of ack <"$T/p2" | wc -l)" -eq 100 ]
	expect=$(seq 1 200 | tr '\n' ' ')
	wait_for 20 bash -c "[ \"\$(jq -r 'select(.type==\"message\") | .seq' '$T/a.frames' | wc -l)\" -ge 200 ]"
	wait_for 20 bash -c "[ \"\$(jq -r 'select(.type==\"message\") | .seq' '$T/b.frames' | wc -l)\" -ge 200 ]"
	[ "$(seqs a)" = "$expect" ]
	[ "$(seqs b)" = "$expect" ]
	# each publisher's own messages keep their order
	[ "$(jq -r 'select(.type=="message" and .from=="p1") | .body' "$T/b.frames" | tr '\n' ' ')" = "$(seq 1 100 | tr '\n' ' ')" ]
}

@test "typing and presence changes cross gateways" {
	listen b "$gw2_URL" bob t
	# alice waits for her own join in the presence batch before she types
	# and leaves (a join and a leave within one batch cancel out)
	run --separate-stderr probe_at "$gw1_URL" alice text:'{"type":"join","room":"t"}' recvuntil:joined \
		recvuntil:'"joined":["alice"]' text:'{"type":"typing","room":"t"}'
	[ "$status" -eq 0 ]
	wait_for 20 has b '"type":"typing","room":"t","from":"alice"'
	wait_for 20 has b '"joined":\["alice"\]'
	wait_for 20 has b '"left":\["alice"\]'
}

@test "join with since on the other gateway recovers what was missed, then live" {
	seq 1 8 | "$BIN/chat-cli" connect "$gw1_URL" --user alice --room rec >/dev/null
	listen b "$gw2_URL" bob rec --since 5
	wait_for 20 has b '"body":8[,}]'
	[ "$(jq -c 'select(.type=="joined") | .seq' "$T/b.frames")" = 8 ]
	[ "$(jq -c 'select(.type=="message") | [.seq, .recovered]' "$T/b.frames" | tr -d '\n')" = '[6,true][7,true][8,true]' ]
	"$BIN/chat-cli" send "$gw1_URL" --user alice --room rec live >/dev/null
	wait_for 20 has b '"body":"live"'
	[ "$(seqs b)" = "6 7 8 9 " ]
}

@test "history is answered through the bus" {
	seq 1 30 | "$BIN/chat-cli" connect "$gw1_URL" --user alice --room hist >/dev/null
	run --separate-stderr probe_at "$gw2_URL" bob text:'{"type":"history","room":"hist","limit":10,"ref":"h"}' recvuntil:'"type":"history"'
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -c '[.ref, [.messages[].seq][0], (.messages | length), .more]')" = '["h",21,10,true]' ]
}

@test "a query nobody answers gets unavailable after --bus-timeout" {
	run --separate-stderr probe_at "$gw1_URL" alice text:'{"type":"presence","room":"x","ref":"p"}' recvuntil:error
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r '[.ref, .code] | join(" ")')" = "p unavailable" ]
}

@test "broker away: publishes get unavailable, then go through again, and nothing is missed" {
	listen a "$gw1_URL" alice away
	listen b "$gw2_URL" bob away
	"$TOP/scripts/rabbitmq" stop "$RMQ_DIR"
	say a '{"type":"publish","room":"away","body":"during","ref":"d"}'
	wait_for 20 has a '"ref":"d","code":"unavailable"'
	"$TOP/scripts/rabbitmq" start "$RMQ_DIR" >/dev/null
	# until gw1's relay is back, a publish may get unavailable again
	n=0
	retry() {
		n=$((n + 1))
		say a "{\"type\":\"publish\",\"room\":\"away\",\"body\":\"after\",\"ref\":\"a$n\"}"
		wait_for 5 bash -c "grep -q '\"ref\":\"a$n\"' '$T/a.frames'"
		grep -q "\"type\":\"ack\",\"ref\":\"a$n\"" "$T/a.frames"
	}
	wait_for 60 retry
	# bob gets it whether his relay was back before it was sequenced or
	# caught the room up after (chat_gw_room_recoveries_total)
	id=$(jq -r "select(.type==\"ack\" and .ref==\"a$n\") | .id" "$T/a.frames")
	wait_for 30 has b "\"id\":\"$id\""
	# (earlier tries that got unavailable may have gone through too, each
	# under its own id: at-least-once) but no seq reaches bob twice, and
	# none is skipped
	seqs=$(jq -r 'select(.type=="message") | .seq' "$T/b.frames")
	[ "$(echo "$seqs" | sort -n | uniq -d)" = "" ]
	[ "$(echo "$seqs" | tr '\n' ' ')" = "$(seq 1 "$(echo "$seqs" | tail -n 1)" | tr '\n' ' ')" ]
}

@test "a gateway whose relay dies closes its clients with 1001 and exits" {
	probe_at "$gw1_URL" alice text:'{"type":"join","room":"r"}' recvuntil:joined expectclose \
		>"$T/alice.out" 2>&1 &
	pa=$!
	wait_for 20 grep -q joined "$T/alice.out"
	gwpid=$(cat "/proc/$gw1_RELAY/task/$gw1_RELAY/children")
	kill -KILL "$gw1_RELAY"
	wait_exit "$pa" 20
	grep -q 'close 1001' "$T/alice.out"
	wait_for 20 bash -c "! kill -0 $gwpid 2>/dev/null"
	grep -q 'relay gone' "$T/gw1.err"
}

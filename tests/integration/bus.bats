#!/usr/bin/env bats
# chat-gw on the bus: two gateways, each the child of its own chat-relay
# (exclusive auto-delete queue bound to msg.#, evt.# and node.NODE), and
# the archive: chat-archive store behind a relay on the durable ingest
# queue chat.ingest.0, chat-archive serve behind one on rpc.history, and
# chat-presence track behind one on chat.presence, all against a private
# RabbitMQ, PostgreSQL and Redis on loopback.

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	rabbitmq_up || return 1
	postgres_up || return 1
	redis_up || return 1
	"$BIN/chat-archive" init >/dev/null
}

teardown_file() {
	rabbitmq_down
	postgres_down
	redis_down
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

# start_sequencer: the archive: store on the ingest queue, serve on
# rpc.history, each behind its relay.
start_sequencer() {
	"$BIN/chat-relay" --manual-ack --queue chat.ingest.0 -- "$BIN/chat-archive" store \
		>"$T/store.out" 2>"$T/store.err" </dev/null 3>&- &
	SEQ_PID=$!
	PIDS="$PIDS $SEQ_PID"
	"$BIN/chat-relay" --queue chat.rpc.history --bind chat:rpc.history \
		-- "$BIN/chat-archive" serve >"$T/serve.out" 2>"$T/serve.err" </dev/null 3>&- &
	PIDS="$PIDS $!"
	start_presence presence
}

# start_presence NAME [chat-presence options]: chat-presence track behind
# its relay on chat.presence; its pid in NAME_PID.
start_presence() {
	local name=$1
	shift
	"$BIN/chat-relay" --single-active --queue chat.presence --bind chat:presence \
		--bind chat:rpc.presence \
		-- "$BIN/chat-presence" track "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null 3>&- &
	eval "${name}_PID=$!"
	PIDS="$PIDS $!"
}

# stop_pairs: stop both gateways (and their relays).
stop_pairs() {
	kill -TERM "$gw1_RELAY" "$gw2_RELAY" 2>/dev/null
	wait_exit "$gw1_RELAY" 15 || true
	wait_exit "$gw2_RELAY" 15 || true
}

# start_pair NAME: chat-relay --node NAME -- chat-gw; sets NAME_URL and
# NAME_RELAY. The gateway inherits the readiness fifo through the relay.
start_pair() {
	local name=$1 fifo="$T/$1.ready" addr=
	rm -f "$fifo"
	mkfifo "$fifo"
	"$BIN/chat-relay" --node "$name" --exclusive --bind "chat:msg.#" --bind "chat:evt.#" \
		-- "$BIN/chat-gw" --auth none --listen 127.0.0.1:0 \
		--ready-fd 3 --rate 100000 --burst 100000 --bus-timeout 2s ${GW_OPTS:-} \
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
# joined NAME USER / left NAME USER: a presence change NAME got names USER.
joined() { [ -n "$(jq -c --arg u "$2" 'select(.type=="presence" and .joined and (.joined | index($u)))' "$T/$1.frames")" ]; }
left() { [ -n "$(jq -c --arg u "$2" 'select(.type=="presence" and .left and (.left | index($u)))' "$T/$1.frames")" ]; }
# times_left NAME USER: how many presence changes told NAME that USER left.
times_left() { jq -c --arg u "$2" 'select(.type=="presence" and .left and (.left | index($u)))' "$T/$1.frames" | wc -l; }
say() { local fd; eval "fd=\$LISTEN_FD_$1"; printf '%s\n' "$2" >&"$fd"; }
seqs() { jq -r 'select(.type == "message") | .seq' "$T/$1.frames" | tr '\n' ' '; }
# stored ROOM N: true once the archive has sequenced ROOM up to N in
# PostgreSQL. An ack means the message is in the ingest queue, not yet
# stored: wait for this before a test reads the room's history.
stored() { [ "$(sql "SELECT last_seq FROM rooms WHERE room = '$1'")" = "$2" ]; }

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
	# all 8 stored first, or the last ones come live, not recovered
	wait_for 20 stored rec 8
	listen b "$gw2_URL" bob rec --since 5
	wait_for 20 has b '"body":8[,}]'
	[ "$(jq -c 'select(.type=="joined") | .seq' "$T/b.frames")" = 8 ]
	[ "$(jq -c 'select(.type=="message") | [.seq, .recovered]' "$T/b.frames" | tr -d '\n')" = '[6,true][7,true][8,true]' ]
	"$BIN/chat-cli" send "$gw1_URL" --user alice --room rec live >/dev/null
	wait_for 20 has b '"body":"live"'
	[ "$(seqs b)" = "6 7 8 9 " ]
}

@test "chat-cli connect --since with nothing on stdin prints every recovered message before it closes" {
	# (it closed at joined: 5 of 600 came out)
	seq 1 600 | "$BIN/chat-cli" connect "$gw1_URL" --user alice --room many >/dev/null
	# acked is in the ingest queue, not yet sequenced: all 600 in the room
	# first, or the last ones come live, not recovered
	wait_for 20 stored many 600
	run --separate-stderr "$BIN/chat-cli" connect "$gw2_URL" --user bob --room many --since 0 </dev/null
	[ "$status" -eq 0 ]
	[ "$(jq -c 'select(.type=="joined") | .seq' <<<"$output")" = 600 ]
	[ "$(jq -r 'select(.type=="message" and .recovered) | .seq' <<<"$output" | tr '\n' ' ')" = "$(seq 1 600 | tr '\n' ' ')" ]
}

@test "history is answered through the bus" {
	seq 1 30 | "$BIN/chat-cli" connect "$gw1_URL" --user alice --room hist >/dev/null
	# serve answers from PostgreSQL: all 30 stored first
	wait_for 20 stored hist 30
	run --separate-stderr probe_at "$gw2_URL" bob text:'{"type":"history","room":"hist","limit":10,"ref":"h"}' recvuntil:'"type":"history"'
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -c '[.ref, [.messages[].seq][0], (.messages | length), .more]')" = '["h",21,10,true]' ]
}

@test "a query nobody answers gets unavailable after --bus-timeout" {
	kill -TERM "$presence_PID"
	wait_exit "$presence_PID" 15
	run --separate-stderr probe_at "$gw1_URL" alice text:'{"type":"presence","room":"x","ref":"p"}' recvuntil:error
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r '[.ref, .code] | join(" ")')" = "p unavailable" ]
}

@test "presence across gateways: a user on both is there once, and leaves when the last goes" {
	listen a "$gw1_URL" alice pr
	wait_for 20 joined a alice
	listen d "$gw2_URL" dave pr
	wait_for 20 joined a dave
	# dave on gw1 too: no second announcement
	listen d2 "$gw1_URL" dave pr
	run --separate-stderr probe_at "$gw2_URL" bob text:'{"type":"presence","room":"pr","ref":"q"}' recvuntil:'"ref":"q"'
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of presence | jq -c '[(.users | sort), .count, .more]')" = '[["alice","dave"],2,false]' ]
	# dave's gw2 connection goes: he is still there through gw1
	eval "exec $LISTEN_FD_d>&-"
	say a '{"type":"presence","room":"pr","ref":"q2"}'
	wait_for 20 has a '"ref":"q2"'
	[ "$(jq -c 'select(.ref=="q2") | .users | sort' "$T/a.frames")" = '["alice","dave"]' ]
	! left a dave
	# and his last one: he leaves, announced once
	eval "exec $LISTEN_FD_d2>&-"
	wait_for 20 left a dave
	[ "$(jq -c 'select(.type=="presence" and .joined and (.joined | index("dave")))' "$T/a.frames" | wc -l)" -eq 1 ]
	[ "$(times_left a dave)" -eq 1 ]
}

@test "a gateway that stops says so: its users are left at once, not after the TTL" {
	listen a "$gw1_URL" alice st
	listen b "$gw2_URL" bob st
	wait_for 20 joined a bob
	t0=$(date +%s%N)
	kill -TERM "$gw2_RELAY"
	wait_for 10 left a bob
	# well within the default 60 s TTL (measured to the left, not to the
	# end of the shutdown below)
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 10000 ]
	# and both it and its relay end well (the relay exits with its
	# child's status)
	wait_exit "$gw2_RELAY" 15
	[ "$WAIT_STATUS" -eq 0 ]
}

@test "a gateway killed with -9: its users are left within the TTL plus a sweep, once, with two trackers" {
	stop_pairs
	start_presence presence2
	GW_OPTS="--presence-interval 1s --presence-ttl 3s" start_pair gw1
	GW_OPTS="--presence-interval 1s --presence-ttl 3s" start_pair gw2
	listen a "$gw1_URL" alice k9
	listen b "$gw2_URL" bob k9
	wait_for 20 joined a bob
	gwpid=$(cat "/proc/$gw2_RELAY/task/$gw2_RELAY/children")
	kill -KILL "$gwpid" "$gw2_RELAY"
	# left within the 3 s TTL and a sweep
	wait_for 15 left a bob
	# alice keeps hearing from chat-presence (her own joins, every
	# heartbeat refreshes her) while both trackers sweep again and
	# again: bob is told gone once
	listen c "$gw1_URL" carol k9
	wait_for 20 joined a carol
	[ "$(times_left a bob)" -eq 1 ]
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

@test "SIGHUP to a gateway's relay reaches the gateway" {
	stop_pairs
	GW_OPTS="-v 2" start_pair gw1
	kill -HUP "$gw1_RELAY"
	wait_for 10 grep -q 'token keys reloaded' "$T/gw1.err"
	kill -0 "$gw1_RELAY"
}

#!/usr/bin/env bats
# chat-gw in bus mode driven through plain pipes: the test plays the relay,
# reading what the gateway writes on stdout and writing confirms, sequenced
# messages, answers and malformed lines on its stdin.

bats_require_minimum_version 1.5.0
load ../helper

# start_bus_gw: chat-gw in bus mode with stdin from the fifo $T/in (held
# open on fd IN) and stdout to $T/out (a file, or a fifo nobody reads).
start_bus_gw() {
	rm -f "$T/in" "$T/ready"
	mkfifo "$T/in" "$T/ready"
	"$BIN/chat-gw" --auth none --node gwt --listen 127.0.0.1:0 --ready-fd 3 \
		--bus-timeout 3s ${GW_EXTRA:-} \
		<"$T/in" >"${GW_OUT:-$T/out}" 2>"$T/err" 3>"$T/ready" &
	GW_PID=$!
	exec {IN}>"$T/in"
	read -r -t 20 GW_ADDR <"$T/ready"
	GW_URL="ws://$GW_ADDR/ws"
	GW_HTTP="http://$GW_ADDR"
}

setup() {
	T=$BATS_TEST_TMPDIR
	start_bus_gw
}

teardown() {
	exec {IN}>&- 2>/dev/null || true
	stop_gw
}

# bus LINE: write one line to the gateway's stdin.
bus() { printf '%s\n' "$1" >&"$IN"; }

# out_match FILTER: the gateway wrote a line that the jq FILTER selects.
out_match() { [ -n "$(jq -c "select($1)" "$T/out")" ]; }

# out_has PATTERN: the gateway wrote a line matching PATTERN on stdout.
out_has() { grep -q -- "$1" "$T/out"; }

# rpc_of TYPE ROOM: the rpc key of the last query of that type for ROOM.
rpc_of() { jq -r --arg t "$1" --arg r "$2" 'select(.type == $t and .room == $r) | .rpc' "$T/out" | tail -n 1; }

# client NAME USER ROOM: a chat-cli connect whose stdin stays open; it
# joins ROOM, and the test answers the gateway's seq query with seq SEQ
# (default 0).
client() {
	local name=$1 user=$2 room=$3 seq=${4:-0} n before
	before=$(grep -c '"type":"recover"' "$T/out" || true)
	mkfifo "$T/$name.in"
	"$BIN/chat-cli" connect "$GW_URL" --user "$user" --room "$room" \
		<"$T/$name.in" >"$T/$name.frames" 2>"$T/$name.err" 3>&- {IN}>&- &
	eval "CLIENT_PID_$name=$!"
	exec {n}>"$T/$name.in"
	eval "CLIENT_FD_$name=$n"
	wait_for 10 bash -c "[ \$(grep -c '\"type\":\"recover\"' '$T/out') -gt $before ]"
	bus "{\"type\":\"recovered\",\"rpc\":\"$(rpc_of recover "$room")\",\"room\":\"$room\",\"seq\":$seq,\"messages\":[]}"
	wait_for 10 grep -q '"type":"joined"' "$T/$name.frames" || {
		echo "# no joined; gateway out:" >&2; cat "$T/out" >&2; cat "$T/$name.frames" "$T/$name.err" >&2
		return 1
	}
}

say() { local fd; eval "fd=\$CLIENT_FD_$1"; printf '%s\n' "$2" >&"$fd"; }
frames() { cat "$T/$1.frames"; }
seqs() { jq -r 'select(.type == "message") | .seq' "$T/$1.frames" | tr '\n' ' '; }
msg() { printf '{"type":"message","room":"%s","seq":%d,"id":"x-%d","from":"z","body":%d,"ts":1,"route":"msg.%s"}' "$1" "$2" "$2" "$2" "$1"; }

@test "a publish goes out as an ingest line and is acked on the relay's confirm" {
	client a alice r 7
	[ "$(jq -c 'select(.type=="joined") | .seq' "$T/a.frames")" = 7 ]
	say a hello
	wait_for 10 out_has '"route":"ingest.0"'
	line=$(grep '"route":"ingest.0"' "$T/out")
	[ "$(echo "$line" | jq -r '[.type, .room, .from, .body, .node] | join(" ")')" = "publish r alice hello gwt" ]
	id=$(echo "$line" | jq -r .id)
	[ "$(echo "$line" | jq -r .confirm)" = "$id" ]
	! grep -q '"type":"ack"' "$T/a.frames"
	bus "{\"type\":\"confirm\",\"confirm\":\"$id\"}"
	wait_for 10 grep -q '"type":"ack"' "$T/a.frames"
	[ "$(frames a | frames_of ack | jq -r .id)" = "$id" ]
	bus "$(msg r 8)"
	wait_for 10 grep -q '"seq":8' "$T/a.frames"
	! frames a | frames_of message | grep -q '"route"'
}

@test "a nack answers the publish with unavailable, echoing its ref" {
	client a alice r
	say a '{"type":"publish","room":"r","body":"refused","ref":"p1"}'
	wait_for 10 out_has '"route":"ingest.0"'
	id=$(jq -r 'select(.route=="ingest.0") | .id' "$T/out")
	bus "{\"type\":\"nack\",\"confirm\":\"$id\"}"
	wait_for 10 grep -q '"code":"unavailable"' "$T/a.frames"
	[ "$(frames a | frames_of error | jq -r .ref)" = p1 ]
	[ "$(metric chat_gw_bus_nacks_total)" -eq 1 ]
}

@test "--ingest-shards: a room's publishes go to ingest.K, K = FNV-1a(room) mod N" {
	stop_gw
	exec {IN}>&-
	GW_EXTRA="--ingest-shards 9" start_bus_gw
	# FNV-1a 32 of "foobar" is 0xbf9cf968 (its published test vector):
	# 3214735720 mod 9 = 7
	client a alice foobar
	say a hello
	wait_for 10 out_has '"type":"publish"'
	[ "$(jq -r 'select(.type=="publish") | .route' "$T/out")" = ingest.7 ]
	run --separate-stderr env CHAT_INGEST_SHARDS=0 "$BIN/chat-gw" --auth none
	[ "$status" -eq 64 ]
	[[ "$stderr" == *CHAT_INGEST_SHARDS* ]]
}

@test "a message line without bus members reaches clients byte for byte" {
	client a alice r 0
	line='{"type":"message", "room":"r","seq":1,"id":"x-1","from":"z","body":{"t":[1, 2.50,"\u00e9"]},"ts":1}'
	bus "$line"
	wait_for 10 grep -q '"seq":1' "$T/a.frames"
	# as the bus had it: not decoded and encoded again
	grep -qxF "$line" "$T/a.frames"
}

@test "an answer for another room is dropped and counted; query keys differ across restarts" {
	client a alice r 0
	say a '{"type":"history","room":"r","ref":"h1"}'
	wait_for 10 out_match '.type=="history"'
	q=$(rpc_of history r)
	[[ "$q" == gwt-*q* ]]
	bus "{\"type\":\"history\",\"rpc\":\"$q\",\"room\":\"secret\",\"messages\":[$(msg secret 1)],\"more\":false}"
	# (polled: the metric is read again on each try)
	stale_counted() { [ "$(metric chat_gw_bus_stale_answers_total)" = 1 ]; }
	wait_for 10 stale_counted
	bus "{\"type\":\"history\",\"rpc\":\"$q\",\"room\":\"r\",\"messages\":[$(msg r 1)],\"more\":false}"
	wait_for 10 grep -q '"ref":"h1"' "$T/a.frames"
	! grep -q secret "$T/a.frames"
	[ "$(frames a | frames_of history | jq -c '[.room, (.messages | map(.seq)), .more]')" = '["r",[1],false]' ]
	# a second gateway process with the same node asks with another key
	stop_gw
	exec {IN}>&-
	start_bus_gw
	client b bob r 0
	say b '{"type":"history","room":"r"}'
	wait_for 10 out_match '.type=="history"'
	[ "$(rpc_of history r)" != "$q" ]
}

@test "queries carry an expiry: the gateway's --bus-timeout in ms" {
	client a alice r 0
	say a '{"type":"history","room":"r"}'
	wait_for 10 out_match '.type=="history"'
	[ "$(jq -r 'select(.type=="history") | .expire' "$T/out")" = 3000 ]
	[ "$(jq -r 'select(.type=="recover") | .expire' "$T/out" | head -n 1)" = 3000 ]
}

@test "held messages are released in seq order after a recovery, each once" {
	client a alice r 0
	bus "$(msg r 1)"
	wait_for 10 grep -q '"seq":1' "$T/a.frames"
	bus "$(msg r 3)"
	wait_for 10 out_match '.type=="recover" and .since==1'
	# while recovering, the bus hands messages out of order and twice
	bus "$(msg r 5)"
	bus "$(msg r 4)"
	bus "$(msg r 5)"
	q=$(jq -r 'select(.type=="recover" and .since==1) | .rpc' "$T/out")
	bus "{\"type\":\"recovered\",\"rpc\":\"$q\",\"room\":\"r\",\"seq\":3,\"messages\":[$(msg r 2),$(msg r 3)]}"
	wait_for 10 grep -q '"seq":5' "$T/a.frames"
	[ "$(seqs a)" = "1 2 3 4 5 " ]
}

@test "--room-hold: a recovering room that holds too much delivers with the gap, counted" {
	stop_gw
	exec {IN}>&-
	GW_EXTRA="--room-hold 3" start_bus_gw
	client a alice r 0
	bus "$(msg r 1)"
	wait_for 10 grep -q '"seq":1' "$T/a.frames"
	for s in 3 4 5 6; do bus "$(msg r $s)"; done
	wait_for 10 grep -q '"seq":6' "$T/a.frames"
	[ "$(seqs a)" = "1 3 4 5 6 " ]
	[ "$(metric chat_gw_room_hold_full_total)" -eq 1 ]
	grep -q 'holds too much' "$T/err"
}

@test "while the relay does not read, stdin is still read: messages still go out" {
	stop_gw
	exec {IN}>&-
	# stdout is a pipe copied to $T/out by a reader the test can stop
	rm -f "$T/out" "$T/pipe"
	mkfifo "$T/pipe"
	cat "$T/pipe" >"$T/out" &
	rpid=$!
	GW_OUT=$T/pipe GW_EXTRA="--bus-backlog 4096" start_bus_gw
	client a alice r 0
	kill -STOP "$rpid"
	# publishes fill the pipe, then the backlog: unavailable
	body=$(printf 'y%.0s' $(seq 1 8000))
	for i in $(seq 1 12); do
		say a "{\"type\":\"publish\",\"room\":\"r\",\"body\":\"$body\",\"ref\":\"p$i\"}"
	done
	wait_for 10 grep -q '"code":"unavailable"' "$T/a.frames"
	[ "$(metric chat_gw_bus_full_total)" -ge 1 ]
	# the relay still writes: a sequenced message reaches alice
	bus "$(msg r 1)"
	wait_for 10 grep -q '"seq":1' "$T/a.frames"
	kill -CONT "$rpid"
}

@test "presence belongs to chat-presence: down at start, join and leave lines, no local broadcast" {
	wait_for 10 out_match '.type=="down" and .route=="presence" and .node=="gwt"'
	client a alice r 0
	wait_for 10 out_match '.type=="join" and .room=="r" and .users==["alice"] and .route=="presence" and .ttl==60000'
	# the gateway does not tell its own members: chat-presence does
	! grep -q '"joined"' "$T/a.frames"
	exec {CLIENT_FD_a}>&-
	wait_for 10 out_match '.type=="leave" and .room=="r" and .users==["alice"]'
	! out_match '.route == "evt.r" and .type == "presence"'
}

@test "a heartbeat round names every user of every room, split under --max-line" {
	stop_gw
	exec {IN}>&-
	GW_EXTRA="--presence-interval 1s --presence-ttl 3s --max-line 1024 --rate 100000" start_bus_gw
	# 120 users with long names over 3 rooms, one connection each
	pids=
	for i in $(seq 1 120); do
		probe "user-with-a-rather-long-name-$i" text:"{\"type\":\"join\",\"room\":\"hb$((i % 3))\"}" \
			stalluntil:"$T/done" >/dev/null 2>&1 &
		pids="$pids $!"
	done
	# Answer the joins' seq queries as they come, until the heartbeats
	# have named all 120 users: starting 120 probes can take longer than
	# the --bus-timeout of 3 s under load, and a join whose query expires
	# is dropped (unavailable), so none may wait for the last probe. (Once
	# a room's seq is known, later joins to it send no query at all.)
	answered=0
	answer_until_named() {
		local q
		q=$(jq -c 'select(.type=="recover") | {type:"recovered",rpc,room,seq:0,messages:[]}' \
			"$T/out" 2>/dev/null | tail -n +$((answered + 1)))
		if [ -n "$q" ]; then
			printf '%s\n' "$q" >&"$IN"
			answered=$((answered + $(printf '%s\n' "$q" | wc -l)))
		fi
		[ "$(jq -s '[.[] | select(.type=="heartbeat") | .rooms | to_entries[] | .value[]] | unique | length' \
			"$T/out" 2>/dev/null)" -ge 120 ] 2>/dev/null
	}
	wait_for 40 answer_until_named
	# every heartbeat line fits, and one round took several lines
	[ "$(jq -c 'select(.type=="heartbeat")' "$T/out" | awk 'length > 1024' | wc -l)" -eq 0 ]
	[ "$(jq -c 'select(.type=="heartbeat")' "$T/out" | wc -l)" -ge 3 ]
	[ "$(jq -r 'select(.type=="heartbeat") | .ttl' "$T/out" | sort -u)" = 3000 ]
	touch "$T/done"
	for p in $pids; do wait_exit "$p" 10 || true; done
}

@test "SIGTERM: the down line goes out before the gateway exits" {
	client a alice r 0
	wait_for 10 out_match '.type=="join" and .users==["alice"]'
	kill -TERM "$GW_PID"
	wait_exit "$GW_PID" 10
	GW_PID=
	[ "$WAIT_STATUS" -eq 0 ]
	# the start's down line, and the stop's, after the join
	[ "$(jq -r 'select(.type=="down") | .node' "$T/out" | wc -l)" -eq 2 ]
	[ "$(jq -r 'select(.type=="join" or .type=="down") | .type' "$T/out" | tail -n 1)" = down ]
}

@test "a presence query carries its limit; the answer's count and more reach the client" {
	client a alice r 0
	say a '{"type":"presence","room":"r","limit":2,"ref":"p"}'
	wait_for 10 out_match '.type=="presence" and .route=="rpc.presence" and .limit==2'
	q=$(rpc_of presence r)
	bus "{\"type\":\"presence\",\"rpc\":\"$q\",\"room\":\"r\",\"users\":[\"a\",\"b\"],\"count\":7,\"more\":true}"
	wait_for 10 grep -q '"ref":"p"' "$T/a.frames"
	[ "$(frames a | jq -c 'select(.ref=="p") | [.users, .count, .more]')" = '[["a","b"],7,true]' ]
}

# The fault suites' tree (tests/integration/faults-*.bats): what issue 10
# calls the running system, assembled here the way an operator would,
# minus the supervisor: a private RabbitMQ, PostgreSQL and Redis (per
# file), and per test two bus-mode gateways sharing ONE port
# (chat-relay -- chat-gw --reuseport), the archive's store on each ingest
# shard (optionally a standby on the same queue: single active consumer),
# the archive's serve and chat-presence track. Streams come from `chat-cli bench --reconnect`
# and are judged by its accounting and by psql, never by eye.
#
# Every wait is bounded; every process is stopped by its pid.

# tree_servers_up: the servers of the whole file, and the schema.
tree_servers_up() {
	rabbitmq_up || return 1
	postgres_up || return 1
	redis_up || return 1
	"$BIN/chat-archive" init >/dev/null || return 1
}

tree_servers_down() {
	rabbitmq_down
	postgres_down
	redis_down
}

# tree_setup: per test state (call from setup()).
tree_setup() {
	T=$BATS_TEST_TMPDIR
	PIDS=
	PORT=$(free_port)
	URL="ws://127.0.0.1:$PORT/ws"
	HTTP="http://127.0.0.1:$PORT"
}

# tree_teardown: SIGTERM what this test started, newest first, and wait
# (bounded); the servers come back if a test left them down.
tree_teardown() {
	local p rev=
	for p in $PIDS; do rev="$p $rev"; done
	for p in $rev; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $rev; do wait_exit "$p" 20 || true; done
	if ! "$TOP/scripts/rabbitmq" status "$RMQ_DIR" 2>/dev/null; then
		"$TOP/scripts/rabbitmq" start "$RMQ_DIR" >/dev/null || true
	fi
	if ! "$TOP/scripts/postgres" status "$PG_DIR" 2>/dev/null; then
		PG_FSYNC=off "$TOP/scripts/postgres" start "$PG_DIR" >/dev/null || true
	fi
	if ! "$TOP/scripts/redis" status "$REDIS_DIR" 2>/dev/null; then
		"$TOP/scripts/redis" start "$REDIS_DIR" >/dev/null || true
	fi
}

# relay_bg NAME RELAY_ARGS...: chat-relay in the background, its output
# appended to $T/NAME.out and $T/NAME.err, waited for by its --ready-fd
# (connected to the broker, queue declared). Sets NAME_PID.
relay_bg() {
	local name=$1
	shift
	rm -f "$T/$name.ready"
	"$BIN/chat-relay" --ready-fd 5 "$@" </dev/null >>"$T/$name.out" \
		2>>"$T/$name.err" 5>"$T/$name.ready" 3>&- &
	printf -v "${name}_PID" %s $!
	PIDS="$PIDS $!"
	wait_for 30 test -s "$T/$name.ready" || {
		echo "$name did not become ready:" >&2
		tail -n 20 "$T/$name.err" >&2
		return 1
	}
}

# store_up NAME SHARD [STORE_ARGS...]: chat-archive store on
# chat.ingest.SHARD, its metrics in $T/NAME.prom (-v 3 logs every message
# it sequences).
store_up() {
	local name=$1 shard=$2
	shift 2
	relay_bg "$name" --manual-ack --queue "chat.ingest.$shard" \
		-- "$BIN/chat-archive" store --metrics-file "$T/$name.prom" \
		--stats-interval 1s "$@"
}

# stored_by NAME: messages the store NAME stored (its metrics file).
stored_by() {
	"$TOP/tests/tools/prom" "$T/$1.prom" chat_archive_messages_stored_total
}

# serve_up: chat-archive serve on rpc.history.
serve_up() {
	relay_bg serve --queue chat.rpc.history --bind chat:rpc.history \
		-- "$BIN/chat-archive" serve
}

# presence_up [NAME]: chat-presence track behind a --single-active relay
# on chat.presence (presence lines and queries).
presence_up() {
	relay_bg "${1:-presence}" --single-active --queue chat.presence \
		--bind chat:presence --bind chat:rpc.presence \
		-- "$BIN/chat-presence" track
}

# gw_up NAME: chat-relay -- chat-gw --reuseport on $PORT, both with
# default names (the relay's node is the gateway's, by construction).
# Waits for the gateway's readiness line. Sets NAME_PID (the relay).
gw_up() {
	local name=$1 fifo="$T/$1.gwready" addr=
	rm -f "$fifo"
	mkfifo "$fifo"
	"$BIN/chat-relay" --exclusive --bind "chat:msg.#" --bind "chat:evt.#" \
		-- "$BIN/chat-gw" --auth none --reuseport --listen "127.0.0.1:$PORT" \
		--ready-fd 3 --rate 100000 --burst 100000 --request-rate 1000 \
		--request-burst 1000 --bus-timeout 2s ${GW_ARGS:-} \
		3>"$fifo" </dev/null >>"$T/$name.out" 2>>"$T/$name.err" &
	printf -v "${name}_PID" %s $!
	PIDS="$PIDS $!"
	read -r -t 30 addr <"$fifo" || {
		echo "gateway $name did not become ready:" >&2
		tail -n 20 "$T/$name.err" >&2
		return 1
	}
	[ "$addr" = "127.0.0.1:$PORT" ]
}

# gw_child RELAY_PID: the gateway the relay runs.
gw_child() {
	cat "/proc/$1/task/$1/children" 2>/dev/null | tr -d ' '
}

# tree_up [SHARDS]: the archive (one store per shard), serve, presence,
# and two gateways gwa and gwb on $PORT.
tree_up() {
	local k shards=${1:-${CHAT_INGEST_SHARDS:-1}}
	for ((k = 0; k < shards; k++)); do
		store_up "store$k" "$k" || return 1
	done
	serve_up || return 1
	presence_up || return 1
	gw_up gwa || return 1
	gw_up gwb || return 1
}

# bench_bg NAME ARGS...: chat-cli bench --reconnect --json on $URL in the
# background; the report in $T/NAME.json, its log in $T/NAME.err.
bench_bg() {
	local name=$1
	shift
	"$BIN/chat-cli" bench "$URL" --reconnect --json --warmup 0 --window 200 "$@" \
		</dev/null >"$T/$name.json" 2>"$T/$name.err" 3>&- &
	BENCH_PID=$!
	PIDS="$PIDS $!"
}

# bench_wait NAME SECONDS: wait for the bench to report.
bench_wait() {
	wait_exit "$BENCH_PID" "$2" || {
		echo "bench $1 did not finish in $2 s" >&2
		tail -n 20 "$T/$1.err" >&2
		return 1
	}
	if [ "$WAIT_STATUS" -ne 0 ] || ! jq -e . "$T/$1.json" >/dev/null; then
		echo "bench $1 failed ($WAIT_STATUS):" >&2
		tail -n 20 "$T/$1.err" >&2
		return 1
	fi
}

# stored PREFIX: messages PostgreSQL holds in the rooms PREFIX*.
stored() {
	sql "SELECT count(*) FROM messages WHERE starts_with(room, '$1')"
}

# stored_at_least PREFIX N
stored_at_least() {
	[ "$(stored "$1" 2>/dev/null || echo 0)" -ge "$2" ]
}

# check_once NAME PREFIX ROOMS: the bench's accounting and PostgreSQL agree
# that every acked message reached every subscriber exactly once after
# dedupe by seq (no seq skipped, none twice), and that every room holds
# seqs 1..N once each, with every published message stored (a message
# stored twice only as a resend after a lost ack: at-least-once).
# Prints the figures of the fault table on fd 3 (the TAP stream).
check_once() {
	local name=$1 prefix=$2 rooms=$3 r rows bad extra distinct
	r=$(cat "$T/$name.json")
	echo "$r" | jq -c '{connections, messages, deliveries, resume_us}' >&2
	fault_row "$name" "$r" "$(stored "$prefix")"
	# the bench: every subscriber back, every publish answered and acked
	[ "$(echo "$r" | jq .connections.dropped)" -eq 0 ]
	[ "$(echo "$r" | jq .messages.unacked)" -eq 0 ]
	[ "$(echo "$r" | jq .messages.refused)" -eq 0 ]
	[ "$(echo "$r" | jq '.messages.acked == .messages.published')" = true ]
	[ "$(echo "$r" | jq .messages.acked)" -gt 0 ]
	# every subscriber got every seq of its room from its join on: no gap,
	# nothing missing at the end, nothing acked that nobody got
	[ "$(echo "$r" | jq .deliveries.lost)" -eq 0 ]
	[ "$(echo "$r" | jq .deliveries.gaps)" -eq 0 ]
	# and in seq order with no jump: a jump the bench had to fill with
	# history is a gap in delivery (see faults-gateways.bats)
	[ "$(echo "$r" | jq .deliveries.holes)" -eq 0 ]
	[ "$(echo "$r" | jq .deliveries.acked_missing)" -eq 0 ]
	[ "$(echo "$r" | jq '.deliveries.received >= .deliveries.expected')" = true ]
	# a message under two seqs only when its publish was sent again
	[ "$(echo "$r" | jq '.deliveries.doubled <= .messages.resent')" = true ]
	# PostgreSQL: each room's seqs are 1..N, each once
	rows=$(sql "SELECT room, count(*), min(seq), max(seq), count(DISTINCT seq)
		FROM messages WHERE starts_with(room, '$prefix') GROUP BY room ORDER BY room")
	echo "$rows" >&2
	[ "$(echo "$rows" | grep -c .)" -eq "$rooms" ]
	bad=$(echo "$rows" | awk -F'|' '$2 != $4 || $3 != 1 || $5 != $2')
	[ -z "$bad" ]
	# every published message is stored; one stored twice only if resent
	distinct=$(sql "SELECT count(DISTINCT (body::json->>'p') || '/' || (body::json->>'n'))
		FROM messages WHERE starts_with(room, '$prefix')")
	extra=$(($(stored "$prefix") - distinct))
	[ "$distinct" -eq "$(echo "$r" | jq .messages.published)" ]
	[ "$extra" -le "$(echo "$r" | jq .messages.resent)" ]
}

# fault_row NAME REPORT STORED: one row of the fault table on the TAP
# stream: acked, stored, delivered, lost, duplicates after dedupe (always
# 0: the bench drops them by seq) and as received, time to recover.
fault_row() {
	echo "$2" | jq -r --arg n "$1" --arg s "$3" '"# fault \($n): acked \(.messages.acked), stored \($s), delivered \(.deliveries.received) of \(.deliveries.expected) expected, lost \(.deliveries.lost), duplicates received \(.deliveries.duplicates) (0 after dedupe by seq), resent \(.messages.resent), doubled \(.deliveries.doubled), seq jumps \(.deliveries.holes) (filled from history \(.deliveries.filled)), drops \(.connections.drops), reconnects \(.connections.reconnects), recovered \(.deliveries.recovered), back in max \(.resume_us.max / 1000 | floor) ms, delivery latency max \(.latency_us.max / 1000 | floor) ms"' >&3
}

# conns_of PID: established client connections PID holds on $PORT.
conns_of() {
	ss -Htnp state established "( sport = :$PORT )" 2>/dev/null | grep -c "pid=$1,"
}

# healthz: the port answers /healthz (whichever gateway takes it) in 2 s.
healthz() {
	curl -fsS -m 2 -o /dev/null "$HTTP/healthz"
}

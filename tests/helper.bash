# Shared by the bats suites: where the programs are, and how to start and
# stop a chat-gw on a free loopback port, waiting for its readiness line
# (never for time).

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
BIN=${BIN:-$TOP/bin}
PROBE="python3 $TOP/tests/tools/wsprobe.py"

# start_gw [chat-gw options...]: sets GW_PID, GW_ADDR (host:port), GW_URL,
# GW_HTTP and GW_LOG. The gateway writes ADDR:PORT to a fifo when it listens.
# GW_PREFIX, when set, is a command that execs it (prlimit ...).
start_gw() {
	local dir=${BATS_TEST_TMPDIR:-$BATS_FILE_TMPDIR}
	local fifo="$dir/gw.ready.$$.$RANDOM"
	GW_LOG="$dir/gw.log.$RANDOM"
	mkfifo "$fifo"
	${GW_PREFIX:-} "$BIN/chat-gw" --listen 127.0.0.1:0 --ready-fd 3 "$@" \
		3>"$fifo" >"$GW_LOG.out" 2>"$GW_LOG" </dev/null &
	GW_PID=$!
	GW_ADDR=
	read -r -t 20 GW_ADDR <"$fifo" || true
	rm -f "$fifo"
	if [ -z "$GW_ADDR" ]; then
		echo "chat-gw did not become ready; its log:" >&2
		cat "$GW_LOG" >&2
		return 1
	fi
	GW_URL="ws://$GW_ADDR/ws"
	GW_HTTP="http://$GW_ADDR"
}

# stop_gw: SIGTERM the gateway we started and wait for it (bounded).
stop_gw() {
	[ -n "${GW_PID:-}" ] || return 0
	kill -TERM "$GW_PID" 2>/dev/null || true
	wait_exit "$GW_PID" 20 || true
	GW_PID=
}

# wait_exit PID SECONDS: wait for a child to exit; its status in WAIT_STATUS.
wait_exit() {
	local pid=$1 limit=$2 i=0
	while kill -0 "$pid" 2>/dev/null; do
		if [ $i -ge $((limit * 20)) ]; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			return 1
		fi
		sleep 0.05
		i=$((i + 1))
	done
	WAIT_STATUS=0
	wait "$pid" 2>/dev/null || WAIT_STATUS=$?
	return 0
}

# free_port: a loopback TCP port nothing uses now, for a server that must
# come back on the same port: pick_port of scripts/ports.sh (the servers'
# own), below the ephemeral range, where binding to port 0 would take one
# that another suite's client socket may take before the bind.
. "$TOP/scripts/ports.sh"
free_port() {
	local free_port_p # (not "p": pick_port's own local would take it)
	pick_port free_port_p && echo "$free_port_p"
}

# metric NAME_WITH_LABELS: the value of one metric line from /metrics.
metric() {
	curl -s "$GW_HTTP/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

# wait_for SECONDS COMMAND...: poll COMMAND until it succeeds (bounded).
wait_for() {
	local limit=$1 i=0
	shift
	until "$@"; do
		[ $i -lt $((limit * 20)) ] || return 1
		sleep 0.05
		i=$((i + 1))
	done
}

# probe USER ACTIONS...: a raw WebSocket client (tests/tools/wsprobe.py).
probe() {
	local user=$1
	shift
	$PROBE "$GW_URL?user=$user" "$@"
}

# frames_of TYPE: filter JSON lines on stdin by type.
frames_of() {
	jq -c --arg t "$1" 'select(.type == $t)'
}

# rabbitmq_up / rabbitmq_down: a private RabbitMQ for the whole file
# (scripts/rabbitmq, in BATS_FILE_TMPDIR); exports RMQ_DIR and CHAT_AMQP_URL.
rabbitmq_up() {
	export RMQ_DIR="$BATS_FILE_TMPDIR/rabbitmq"
	CHAT_AMQP_URL=$("$TOP/scripts/rabbitmq" start "$RMQ_DIR") || return 1
	export CHAT_AMQP_URL
}

rabbitmq_down() {
	"$TOP/scripts/rabbitmq" stop "$RMQ_DIR"
}

# probe_at URL USER ACTIONS...: the raw client against another gateway.
probe_at() {
	local url=$1 user=$2
	shift 2
	$PROBE "$url?user=$user" "$@"
}

# postgres_up / postgres_down: a private PostgreSQL for the whole file
# (scripts/postgres, in BATS_FILE_TMPDIR, no fsync); exports PG_DIR and
# CHAT_DB_URL (which chat-archive reads by default).
postgres_up() {
	export PG_DIR="$BATS_FILE_TMPDIR/postgres"
	CHAT_DB_URL=$(PG_FSYNC=off "$TOP/scripts/postgres" start "$PG_DIR") || return 1
	export CHAT_DB_URL
}

postgres_down() {
	"$TOP/scripts/postgres" stop "$PG_DIR"
}

# postgres_restart: stop and start the server of postgres_up (same port).
postgres_restart() {
	"$TOP/scripts/postgres" stop "$PG_DIR" &&
		PG_FSYNC=off "$TOP/scripts/postgres" start "$PG_DIR" >/dev/null
}

# sql QUERY: one psql query on CHAT_DB_URL, unaligned, tuples only.
sql() {
	PGOPTIONS='-c client_min_messages=warning' \
		psql -X -q -A -t -v ON_ERROR_STOP=1 "$CHAT_DB_URL" -c "$1"
}

# redis_up / redis_down: a private Redis for the whole file (scripts/redis,
# in BATS_FILE_TMPDIR, no persistence); exports REDIS_DIR and
# CHAT_REDIS_URL. A server that does not start is a failure, never a skip.
redis_up() {
	export REDIS_DIR="$BATS_FILE_TMPDIR/redis"
	CHAT_REDIS_URL=$("$TOP/scripts/redis" start "$REDIS_DIR") || return 1
	export CHAT_REDIS_URL
}

redis_down() {
	"$TOP/scripts/redis" stop "$REDIS_DIR"
}

#!/usr/bin/env bats
# scripts/run, the script behind `make run`: the whole tree (private
# RabbitMQ, PostgreSQL and Redis, chat-archive init, supervisord with the
# archive, presence and two gateways on one port) in a temporary state
# directory on a free port. A message goes through a gateway, is acked,
# delivered with seq 1 and stored; SIGTERM to the script stops the
# gateways before the archive, then the servers, and leaves none of the
# processes it started (checked by their pids, from the script's own
# list); a second start on the same state directory has the history.
# The tests run in order and share the state directory.

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	export STATE="$BATS_FILE_TMPDIR/state"
	PORT=$(free_port)
	export PORT
	export URL="ws://127.0.0.1:$PORT/ws"
}

teardown_file() {
	local p
	# A test that failed half-way may have left the tree up.
	"$TOP/scripts/run" stop -s "$STATE" >/dev/null 2>&1
	for p in $(cat "$STATE/run/pids" 2>/dev/null); do
		kill -KILL "$p" 2>/dev/null || true
	done
}

setup() {
	T=$BATS_TEST_TMPDIR
	PIDS=
}

teardown() {
	local p
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait_exit "$p" 10 || true; done
}

# start_run: scripts/run in the background (no descriptor of bats' but
# 0-2), under a shell that keeps its pid and, once it is gone, its exit
# status in $R (the run outlives the test that starts it); waits for its
# banner (bounded: a cold RabbitMQ on a busy machine takes a while).
start_run() {
	R=$BATS_FILE_TMPDIR/run
	# (the last run's banner must not pass for this one's: the job below
	# truncates its output only once it starts)
	rm -f "$R.pid" "$R.status" "$R.out" "$R.err"
	BIN=$BIN bash -c '"$1" -s "$2" -l "$3" & echo $! >"$4.pid"; wait $!; echo $? >"$4.status"' \
		run "$TOP/scripts/run" "$STATE" "127.0.0.1:$PORT" "$R" \
		>"$R.out" 2>"$R.err" </dev/null 3>&- &
	wait_for 170 grep -q '^Ctrl-C stops it' "$R.out" || {
		cat "$R.out" "$R.err" >&3
		return 1
	}
}

# stop_run: SIGTERM to the script, as Ctrl-C would; waits for its exit
# status (bounded) and checks that it is 0.
stop_run() {
	R=$BATS_FILE_TMPDIR/run
	kill -TERM "$(cat "$R.pid")"
	wait_for 150 test -s "$R.status"
	[ "$(cat "$R.status")" = 0 ]
	grep -q '^run: stopped' "$R.err"
}

# listen NAME USER ROOM: a chat-cli in the background, its frames in
# $T/NAME.frames; waits for its join.
listen() {
	"$BIN/chat-cli" connect "$URL" --user "$2" --room "$3" --no-stdin \
		>"$T/$1.frames" 2>"$T/$1.err" </dev/null 3>&- &
	PIDS="$PIDS $!"
	wait_for 20 grep -q '"type":"joined"' "$T/$1.frames"
}

has() { grep -q -- "$2" "$T/$1.frames"; }

# alive PID: PID exists and is not a zombie (one that init has not reaped
# yet is gone all the same).
alive() {
	[ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# left: the processes of the run's list still alive, with their command
# lines (none once it has stopped).
left() {
	local p out=
	for p in $(cat "$STATE/run/pids"); do
		alive "$p" && out="$out $p:$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
	done
	echo "$out"
}
no_left() { [ -z "$(left)" ]; }

# present USER ROOM: a presence query through the gateways lists USER.
present() {
	"$BIN/chat-cli" connect "$URL" --user probe --room "$2" \
		<<<"{\"type\":\"presence\",\"room\":\"$2\",\"ref\":\"p\"}" 2>/dev/null |
		jq -e --arg u "$1" 'select(.type == "presence" and .ref == "p") | .users | index($u)' >/dev/null
}

@test "run: the tree comes up, a message is acked, delivered with seq 1 and stored" {
	start_run
	grep -q "2 gateways on 127.0.0.1:$PORT" "$R.out"
	# every program RUNNING under supervisord, both gateways on the port
	run supervisorctl -c "$STATE/supervisord.conf" status
	[ "$(grep -c ' RUNNING ' <<<"$output")" -ge 4 ]
	grep -q '^gateways:gw1 .* RUNNING' <<<"$output"
	grep -q '^gateways:gw2 .* RUNNING' <<<"$output"
	grep -q '^backend:store-0 .* RUNNING' <<<"$output"
	grep -q '^backend:serve .* RUNNING' <<<"$output"
	if [ -x "$BIN/chat-presence" ] && [ -x "$TOP/scripts/redis" ]; then
		grep -q '^backend:presence .* RUNNING' <<<"$output"
	fi
	[ "$(ss -Hltn "sport = :$PORT" | wc -l)" -eq 2 ]
	[ "$(curl -s "http://127.0.0.1:$PORT/healthz")" = ok ]

	listen a alice lobby
	run --separate-stderr "$BIN/chat-cli" send "$URL" --user carol --room lobby "first"
	[ "$status" -eq 0 ]
	id=$(jq -r 'select(.type == "ack") | .id' <<<"$output")
	[[ "$id" == gw[12]-* ]]
	wait_for 20 has a '"body":"first"'
	[ "$(jq -c 'select(.type == "message") | [.seq, .id, .from, .body]' "$T/a.frames")" = "[1,\"$id\",\"carol\",\"first\"]" ]
	CHAT_DB_URL=$(cat "$STATE/run/db.url")
	[ "$(sql "SELECT seq FROM messages WHERE id = '$id'")" = 1 ]
	# presence, when the tree has it: alice is in the room, on either gateway
	if [ -x "$BIN/chat-presence" ] && [ -x "$TOP/scripts/redis" ]; then
		wait_for 20 present alice lobby
		wait_for 20 test -s "$STATE/metrics/presence.prom"
	fi

	# metrics: every relay and the archive write their file, in the
	# Prometheus text format; the gateways answer /metrics
	wait_for 20 test -s "$STATE/metrics/relay-gw1.prom"
	for f in gw1 gw2 relay-gw1 relay-gw2 relay-store-0 relay-serve archive-store-0 archive-serve; do
		wait_for 20 test -s "$STATE/metrics/$f.prom"
		/usr/bin/python3 -c 'import sys
from prometheus_client.parser import text_string_to_metric_families as p
n = sum(1 for _ in p(open(sys.argv[1]).read()))
assert n > 0' "$STATE/metrics/$f.prom"
	done
	grep -q '^chat_relay_.*{node="gw1"}' "$STATE/metrics/relay-gw1.prom"
	grep -q '^chat_gw_connections{node="gw1"} ' "$STATE/metrics/gw1.prom"
	grep -q '^chat_archive_lines_in_total{node="store-0",role="store"} ' \
		"$STATE/metrics/archive-store-0.prom"
	# the directory is one textfile collector's: no sample (name and
	# labels) in two files, or the collector refuses them all
	/usr/bin/python3 -c 'import sys
from prometheus_client.parser import text_string_to_metric_families as p
seen = {}
for path in sys.argv[1:]:
    for fam in p(open(path).read()):
        for s in fam.samples:
            k = (s.name, tuple(sorted(s.labels.items())))
            assert k not in seen, "%s in %s and %s" % (k, seen[k], path)
            seen[k] = path
' "$STATE"/metrics/*.prom
	curl -s "http://127.0.0.1:$PORT/metrics" | grep -q '^chat_gw_connections '
}

@test "run: SIGTERM stops the gateways, then the archive, then the servers; no process is left" {
	[ -s "$STATE/run/pids" ]
	listen b bob lobby
	stop_run
	# bob was closed with 1001 (going away) by his gateway
	wait_exit "${PIDS##* }" 10
	[ "$WAIT_STATUS" -eq 75 ]
	# order: both gateways stopped before store and serve
	log=$STATE/log/supervisord.log
	gw_last=$(grep -n 'stopped: gw' "$log" | tail -n 1 | cut -d: -f1)
	be_first=$(grep -n -E 'stopped: (store|serve|presence)' "$log" | head -n 1 | cut -d: -f1)
	[ -n "$gw_last" ] && [ -n "$be_first" ]
	[ "$gw_last" -lt "$be_first" ]
	grep -q 'stopped: store-0 (exit status 0)' "$log"
	# nothing this run started is alive (by pid, never by name)
	wait_for 5 no_left || { echo "left:$(left)" >&3; false; }
	! "$TOP/scripts/rabbitmq" status "$STATE/rabbitmq"
	! "$TOP/scripts/postgres" status "$STATE/postgres"
}

@test "run: a second start on the same state directory has the history" {
	start_run
	run --separate-stderr "$BIN/chat-cli" connect "$URL" --user dave --room lobby \
		<<<'{"type":"history","room":"lobby","ref":"h"}'
	[ "$status" -eq 0 ] || { echo "$output $stderr" >&3; false; }
	[ "$(jq -c 'select(.type == "history") | [.messages[] | [.seq, .body]]' <<<"$output")" = '[[1,"first"]]' ]
	run --separate-stderr "$BIN/chat-cli" send "$URL" --user carol --room lobby "second"
	[ "$status" -eq 0 ]
	id=$(jq -r 'select(.type == "ack") | .id' <<<"$output")
	CHAT_DB_URL=$(cat "$STATE/run/db.url")
	wait_for 20 bash -c "[ \"\$(PGOPTIONS='-c client_min_messages=warning' psql -X -q -A -t '$CHAT_DB_URL' -c \"SELECT seq FROM messages WHERE id = '$id'\")\" = 2 ]"
	stop_run
	wait_for 5 no_left || { echo "left:$(left)" >&3; false; }
}

@test "run: a second run on a state directory in use is refused" {
	start_run
	run --separate-stderr "$TOP/scripts/run" -s "$STATE" -l "127.0.0.1:$PORT" 3>&-
	[ "$status" -eq 70 ] || { echo "# status $status: $stderr" >&3; false; }
	[[ "$stderr" == *"is going"* ]]
	stop_run
}

@test "run: -h prints the usage on stdout; usage errors exit 64" {
	run --separate-stderr "$TOP/scripts/run" -h
	[ "$status" -eq 0 ]
	[[ "$output" == "usage: scripts/run "* ]]
	[ -z "$stderr" ]
	run --separate-stderr "$TOP/scripts/run" -g 0
	[ "$status" -eq 64 ]
	run --separate-stderr "$TOP/scripts/run" -l 127.0.0.1:0
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"share it"* ]]
	run --separate-stderr "$TOP/scripts/run" -x
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"usage: scripts/run"* ]]
}

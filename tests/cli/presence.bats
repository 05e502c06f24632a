#!/usr/bin/env bats
# chat-presence with plain pipes and a real, private Redis (scripts/redis,
# no persistence) for the whole file: the command line, the lines in and
# out, a user on two gateways, expiry with two processes sweeping, down
# lines, queries on a big room, a join storm, a Redis restart in the middle
# of a stream, malformed lines, online and watch. Every wait is for a
# condition, bounded; each test has its own key prefix.

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	export BIN
	redis_up
}

teardown_file() {
	redis_down
}

setup() {
	T=$BATS_TEST_TMPDIR
	PFX=t$BATS_TEST_NUMBER
	PIDS=
	FIFO_FDS=
}

teardown() {
	local p
	for p in $PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait_exit "$p" 10 || true
	done
	# The restart tests may leave Redis down if they failed midway.
	"$TOP/scripts/redis" status "$REDIS_DIR" ||
		"$TOP/scripts/redis" start "$REDIS_DIR" >/dev/null
}

pres() {
	"$BIN/chat-presence" --prefix "$PFX" "$@"
}

# track_start NAME [OPTIONS...]: chat-presence track reading the fifo
# $T/NAME.in (held open by this shell on the fd in NAME_FD), writing
# $T/NAME.out and $T/NAME.err; its pid in NAME_PID.
track_start() {
	local name=$1 fd
	shift
	mkfifo "$T/$name.in"
	# Without the write ends of the other trackers' fifos: holding one
	# would keep that tracker from ever seeing its end of input.
	(
		for fd in $FIFO_FDS; do
			eval "exec $fd>&-"
		done
		exec "$BIN/chat-presence" --prefix "$PFX" track "$@" \
			<"$T/$name.in" >"$T/$name.out" 2>"$T/$name.err" 3>&-
	) &
	eval "${name}_PID=$!"
	PIDS="$PIDS $!"
	exec {fd}>"$T/$name.in"
	eval "${name}_FD=$fd"
	FIFO_FDS="$FIFO_FDS $fd"
}

# feed NAME LINE...: write lines to NAME's stdin.
feed() {
	local name=$1 fd
	shift
	eval "fd=\$${name}_FD"
	printf '%s\n' "$@" >&"$fd"
}

# track_stop NAME: end NAME's input and wait for it; status in WAIT_STATUS.
track_stop() {
	local name=$1 fd pid
	eval "fd=\$${name}_FD pid=\$${name}_PID"
	exec {fd}>&-
	wait_exit "$pid" 20
}

# metric FILE NAME: a value from a metrics file.
metric_of() {
	"$TOP/tests/tools/prom" "$1" "$2"
}

# users N [PREFIX]: a JSON array of N user names PREFIX00001...
users() {
	seq -f "\"${2:-u}%05g\"" 1 "$1" | paste -sd, | sed 's/^/[/; s/$/]/'
}

now_ms() {
	date +%s%3N
}

# log_ms MSG: the time (ms since the epoch) of the first log line on stdin
# that holds MSG.
log_ms() {
	local ts
	ts=$(grep -F -m 1 -- "$1" | sed -n 's/^ts=\([^ ]*\) .*/\1/p')
	[ -n "$ts" ] && date -u -d "$ts" +%s%3N
}

# left_users FILE...: "room user" for every user in a "left" list.
left_users() {
	cat "$@" | jq -r 'select(.left) | .room as $r | .left[] | "\($r) \(.)"'
}

joined_users() {
	cat "$@" | jq -r 'select(.joined) | .room as $r | .joined[] | "\($r) \(.)"'
}

# --- the command line -------------------------------------------------------

@test "no subcommand: usage on stderr, nothing on stdout, exit 64" {
	run --separate-stderr "$BIN/chat-presence"
	[ "$status" -eq 64 ]
	[ -z "$output" ]
	[[ "$stderr" == *"usage: chat-presence"* ]]
}

@test "unknown option, unknown subcommand, misplaced option: exit 64" {
	run --separate-stderr "$BIN/chat-presence" --no-such-option track
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"unknown option '--no-such-option'"* ]]
	run --separate-stderr "$BIN/chat-presence" sweep
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"unknown subcommand 'sweep'"* ]]
	run --separate-stderr "$BIN/chat-presence" online --ttl 5s
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"--ttl is an option of track"* ]]
	run --separate-stderr "$BIN/chat-presence" track --room r1
	[ "$status" -eq 64 ]
	run --separate-stderr "$BIN/chat-presence" --prefix 'a{b}' track
	[ "$status" -eq 64 ]
	run --separate-stderr "$BIN/chat-presence" --ttl 10ms track
	[ "$status" -eq 64 ]
	[ -z "$output" ]
}

@test "--help on stdout, exit 0; --version" {
	run --separate-stderr "$BIN/chat-presence" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"usage: chat-presence"* ]]
	[[ "$output" == *"--redis-file"* ]]
	[ -z "$stderr" ]
	run "$BIN/chat-presence" --version
	[ "$status" -eq 0 ]
	[[ "$output" == "chat-presence "[0-9]* ]]
}

@test "bad Redis URL: 64 on the command line, 78 from the environment or a file" {
	run --separate-stderr "$BIN/chat-presence" --redis http://x track
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"bad Redis URL"* ]]
	CHAT_REDIS_URL=redis://h:99999/0 run --separate-stderr "$BIN/chat-presence" track
	[ "$status" -eq 78 ]
	run --separate-stderr "$BIN/chat-presence" --redis-file "$T/none" track
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"unable to read the Redis URL file"* ]]
}

@test "Redis unreachable at start: exit 69 with the URL, password masked" {
	run --separate-stderr "$BIN/chat-presence" --redis redis://:s3cret@127.0.0.1:1/0 \
		--connect-timeout 2s track </dev/null
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"unable to connect to Redis"* ]]
	[[ "$stderr" == *"redis://:***@127.0.0.1:1/0"* ]]
	[[ "$stderr" == *"password is on the command line"* ]]
	[[ "$stderr" != *s3cret* ]]
	run --separate-stderr "$BIN/chat-presence" --redis redis://127.0.0.1:1/0 online
	[ "$status" -eq 69 ]
	run --separate-stderr "$BIN/chat-presence" --redis redis://127.0.0.1:1/0 watch
	[ "$status" -eq 69 ]
}

@test "a password-protected Redis through --redis-file (and a wrong one: 78 for online)" {
	local url
	url=$(REDIS_PASSWORD=pw-$RANDOM "$TOP/scripts/redis" start "$T/auth")
	echo "$url" >"$T/url"
	chmod 600 "$T/url"
	run --separate-stderr pres --redis-file "$T/url" track <<<'{"type":"join","node":"gw1","room":"r1","users":["a"]}'
	"$TOP/scripts/redis" stop "$T/auth" 3>&- &&
		"$TOP/scripts/redis" start "$T/auth" >/dev/null 3>&- || true
	[ "$status" -eq 0 ]
	[[ "$output" == *'"joined":["a"]'* ]]
	[[ "$stderr" != *"command line"* ]]
	run --separate-stderr pres --redis "${url/:pw-/:wrong-}" online
	"$TOP/scripts/redis" stop "$T/auth"
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"AUTH refused"* ]]
}

# --- lines in, changes out --------------------------------------------------

@test "join, leave, heartbeat lines in: presence changes out, coalesced per room" {
	run --separate-stderr pres track <<-'EOF'
	{"type":"join","node":"gw1","room":"r1","users":["bob","alice"]}
	{"type":"join","node":"gw1","room":"r2","users":["carol"]}
	{"type":"heartbeat","node":"gw1","ttl":30000,"rooms":{"r1":["alice","bob"],"r3":["dave"]}}
	{"type":"join","node":"gw1","room":"r1","users":["alice"]}
	EOF
	[ "$status" -eq 0 ]
	[ "$(jq -c 'select(.room == "r1")' <<<"$output")" = \
	  '{"type":"presence","room":"r1","joined":["alice","bob"],"left":[],"route":"evt.r1"}' ]
	[ "$(jq -c 'select(.room == "r2")' <<<"$output")" = \
	  '{"type":"presence","room":"r2","joined":["carol"],"left":[],"route":"evt.r2"}' ]
	[ "$(jq -c 'select(.room == "r3")' <<<"$output")" = \
	  '{"type":"presence","room":"r3","joined":["dave"],"left":[],"route":"evt.r3"}' ]
	[ "${#lines[@]}" -eq 3 ]
	# no "node" member: gateways frame the line as it came
	[ "$(jq -s 'map(has("node")) | any' <<<"$output")" = false ]
	run --separate-stderr pres track <<-'EOF'
	{"type":"leave","node":"gw1","room":"r1","users":["alice","nobody"]}
	EOF
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"presence","room":"r1","joined":[],"left":["alice"],"route":"evt.r1"}' ]
}

@test "a user on two gateways is joined once and left only when the last gateway lets go" {
	track_start A --coalesce 0
	feed A '{"type":"join","node":"gwA","room":"r1","users":["u1"]}'
	wait_for 5 grep -q '"joined":\["u1"\]' "$T/A.out"
	feed A '{"type":"join","node":"gwB","room":"r1","users":["u1","u2"]}'
	wait_for 5 grep -q '"joined":\["u2"\]' "$T/A.out"
	feed A '{"type":"leave","node":"gwA","room":"r1","users":["u1"]}'
	feed A '{"type":"presence","rpc":"q1","node":"gwA","conn":7,"room":"r1"}'
	wait_for 5 grep -q '"rpc":"q1"' "$T/A.out"
	# still there: the answer from gateway A lists u1, held by B
	grep -q '"rpc":"q1","room":"r1","users":\["u1","u2"\],"count":2' "$T/A.out"
	! grep -q '"left":\["u1"\]' "$T/A.out"
	feed A '{"type":"leave","node":"gwB","room":"r1","users":["u1"]}'
	wait_for 5 grep -q '"left":\["u1"\]' "$T/A.out"
	track_stop A
	[ "$WAIT_STATUS" -eq 0 ]
	[ "$(joined_users "$T/A.out" | sort | uniq -c | awk '{print $1}' | sort -u)" = 1 ]
	[ "$(left_users "$T/A.out")" = "r1 u1" ]
}

@test "a join and a leave inside one window cancel, unless a query looked in between" {
	run --separate-stderr pres track --coalesce 2s <<-'EOF'
	{"type":"join","node":"gw1","room":"r1","users":["ghost"]}
	{"type":"leave","node":"gw1","room":"r1","users":["ghost"]}
	{"type":"join","node":"gw1","room":"r2","users":["seen"]}
	{"type":"presence","rpc":"q","node":"gw2","room":"r2"}
	{"type":"leave","node":"gw1","room":"r2","users":["seen"]}
	EOF
	[ "$status" -eq 0 ]
	! grep -q ghost <<<"$output"
	# the asker saw "seen" present: it hears the join (before the answer)
	# and then the leave, never a silent cancel that would leave a ghost
	[ "${lines[0]}" = '{"type":"presence","room":"r2","joined":["seen"],"left":[],"route":"evt.r2"}' ]
	[[ "${lines[1]}" == *'"rpc":"q","room":"r2","users":["seen"],"count":1'* ]]
	[ "${lines[2]}" = '{"type":"presence","room":"r2","joined":[],"left":["seen"],"route":"evt.r2"}' ]
	[ "${#lines[@]}" -eq 3 ]
}

@test "a query answered by another process also forbids the cancel" {
	track_start A --coalesce 3s
	feed A '{"type":"join","node":"gw1","room":"r1","users":["x"]}'
	wait_for 5 bash -c "pres() { \"\$BIN/chat-presence\" --prefix $PFX \"\$@\"; }; pres online --room r1 | grep -q '\"count\":1'"
	# a second tracker answers a query about r1 (and stamps it seen)
	run --separate-stderr pres track <<<'{"type":"presence","rpc":"q","node":"gw2","room":"r1"}'
	[[ "$output" == *'"users":["x"]'* ]]
	feed A '{"type":"leave","node":"gw1","room":"r1","users":["x"]}'
	track_stop A
	[ "$WAIT_STATUS" -eq 0 ]
	[ "$(joined_users "$T/A.out")" = "r1 x" ]
	[ "$(left_users "$T/A.out")" = "r1 x" ]
}

# --- expiry ------------------------------------------------------------------

@test "a silent node's users leave within TTL plus one sweep, exactly once with two processes" {
	local hbA hbB t0 t1 deadline left_at
	hbA="{\"type\":\"heartbeat\",\"node\":\"gwA\",\"ttl\":1500,\"rooms\":{\"r1\":$(users 100 a),\"r2\":$(users 50 a),\"r3\":[\"both\"]}}"
	# gwB's heartbeats live 10 s (--ttl caps them, hence 10s there): its
	# users stay however slowly the shell's loop below turns
	hbB='{"type":"heartbeat","node":"gwB","ttl":10000,"rooms":{"r3":["both","b1"]}}'
	track_start A -v 2 --ttl 10s --sweep 200ms --coalesce 20ms
	track_start B -v 2 --ttl 10s --sweep 200ms --coalesce 20ms
	t0=$(now_ms)
	feed A "$hbA" "$hbB"
	wait_for 5 grep -q '"room":"r1","joined"' "$T/A.out"
	t1=$(now_ms)
	# gwB keeps beating through B, gwA has gone silent
	for _ in 1 2 3 4 5 6 7 8; do
		feed B "$hbB"
		[ "$(left_users "$T/A.out" "$T/B.out" | wc -l)" -ge 150 ] && break
		sleep 0.3
	done
	wait_for 5 bash -c "[ \$(cat $T/A.out $T/B.out | jq -r 'select(.left) | .left[]' | wc -l) -ge 150 ]"
	# The times are the trackers', not the shell's (whose polls a loaded
	# machine slows by a second or more): gwA's deadline as the tracker
	# that let its users go logged it, and when the last left line was
	# written (the last write to either output: nothing came since).
	deadline=$(grep -h 'msg="node silent past its ttl: its users leave" node="gwA"' \
		"$T/A.err" "$T/B.err" | sed -n 's/.* deadline=\([0-9]*\) .*/\1/p' | head -n 1)
	left_at=$(stat -c %.3Y "$T/A.out" "$T/B.out" | tr -d . | sort -n | tail -n 1)
	echo "# left $((left_at - deadline)) ms after the deadline" >&3
	# the deadline is the heartbeat's arrival plus its 1.5 s ttl
	[ "$deadline" -ge $((t0 + 1500)) ]
	[ "$deadline" -le $((t1 + 1500)) ]
	# not before the TTL; within it (1.5 s) plus one sweep (0.2 s), plus
	# slack for a loaded machine
	[ "$left_at" -ge "$deadline" ]
	[ $((left_at - (deadline - 1500))) -lt 3500 ]
	feed B "$hbB"
	track_stop A
	track_stop B
	# exactly once across both processes, and only gwA's users
	[ "$(left_users "$T/A.out" "$T/B.out" | wc -l)" -eq 150 ]
	[ -z "$(left_users "$T/A.out" "$T/B.out" | sort | uniq -d)" ]
	! left_users "$T/A.out" "$T/B.out" | grep -qE ' (both|b1)$'
	pres online --room r3 | grep -q '"users":\["b1","both"\],"count":2'
	[ "$(pres online --room r1 | jq .count)" -eq 0 ]
}

@test "an entry the heartbeats stop naming expires by its own deadline" {
	track_start A --ttl 10s --sweep 100ms --coalesce 10ms
	# stale has the 0.8 s of the one heartbeat that names it; the next
	# ones, the first right behind it, name stay alone with 5 s each: a
	# slow turn of the loop on a loaded machine cannot outlast stay's
	# deadline or the node's (--ttl caps a heartbeat's ttl, hence 10s)
	feed A '{"type":"heartbeat","node":"gw1","ttl":800,"rooms":{"r1":["stay","stale"]}}' \
		'{"type":"heartbeat","node":"gw1","ttl":5000,"rooms":{"r1":["stay"]}}'
	wait_for 5 grep -q '"joined":\["stale","stay"\]' "$T/A.out"
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		feed A '{"type":"heartbeat","node":"gw1","ttl":5000,"rooms":{"r1":["stay"]}}'
		grep -q '"left":\["stale"\]' "$T/A.out" && break
		sleep 0.25
	done
	wait_for 3 grep -q '"left":\["stale"\]' "$T/A.out"
	track_stop A
	[ "$(left_users "$T/A.out")" = "r1 stale" ]
}

@test "down: the node's users leave at once, a restarted gateway's joins stay" {
	track_start A --ttl 60s --coalesce 10ms
	feed A "{\"type\":\"heartbeat\",\"node\":\"gw1\",\"rooms\":{\"r1\":$(users 20),\"r2\":[\"x\"]}}" \
		'{"type":"join","node":"gw2","room":"r1","users":["u00001"]}'
	wait_for 5 grep -q '"room":"r1","joined"' "$T/A.out"
	feed A '{"type":"down","node":"gw1"}' \
		'{"type":"join","node":"gw1","room":"r2","users":["new"]}'
	wait_for 5 grep -q '"joined":\["new"\]' "$T/A.out"
	track_stop A
	[ "$WAIT_STATUS" -eq 0 ]
	# u00001 is still held by gw2; the 19 others left, long before the ttl
	[ "$(left_users "$T/A.out" | grep -c '^r1 ')" -eq 19 ]
	! left_users "$T/A.out" | grep -q 'u00001$'
	[ "$(left_users "$T/A.out" | grep '^r2 ')" = "r2 x" ]
	pres online --room r2 | grep -q '"users":\["new"\],"count":1'
}

# --- queries -----------------------------------------------------------------

@test "queries on a room of 10,000: limit, exact count, more, sorted users" {
	local out
	{
		echo "{\"type\":\"heartbeat\",\"node\":\"gw1\",\"rooms\":{\"big\":$(users 6000 | sed 's/]$//'),$(seq -f '"u%05g"' 6001 10000 | paste -sd,)]}}"
		echo '{"type":"presence","rpc":"q1","node":"gw1","conn":1,"room":"big","limit":100}'
		echo '{"type":"presence","rpc":{"n":2},"node":"gw1","conn":1,"room":"big","limit":0}'
		echo '{"type":"presence","rpc":"q3","node":"gw1","conn":1,"room":"big","limit":20000}'
		echo '{"type":"presence","rpc":"q4","node":"gw1","conn":1,"room":"empty"}'
		echo '{"type":"presence","rpc":"q5","node":"gw1","conn":1,"room":"big"}'
	} >"$T/in"
	run --separate-stderr pres track <"$T/in"
	[ "$status" -eq 0 ]
	out=$(grep '"rpc"' <<<"$output")
	[ "$(jq -c 'select(.rpc == "q1") | [(.users|length), .users[0], .users[99], .count, .more, .route]' <<<"$out")" = \
	  '[100,"u00001","u00100",10000,true,"node.gw1"]' ]
	[ "$(jq -c 'select(.rpc == {"n":2}) | [(.users|length), .count, .more]' <<<"$out")" = '[0,10000,true]' ]
	[ "$(jq -c 'select(.rpc == "q3") | [(.users|length), .users[9999], .count, .more]' <<<"$out")" = \
	  '[10000,"u10000",10000,false]' ]
	[ "$(jq -c 'select(.rpc == "q4") | [.users, .count, .more, .room]' <<<"$out")" = '[[],0,false,"empty"]' ]
	# limit defaults to 100
	[ "$(jq -c 'select(.rpc == "q5") | [(.users|length), .count]' <<<"$out")" = '[100,10000]' ]
	# the users are in byte order: a second page starts where the first ended
	[ "$(jq -r 'select(.rpc == "q3") | .users | . == sort' <<<"$out")" = true ]
}

@test "a storm of 10,000 joins into one room gives a bounded number of lines" {
	local t0 t1 n
	awk 'BEGIN { for (i = 1; i <= 10000; i++)
		printf "{\"type\":\"join\",\"node\":\"gw%d\",\"room\":\"storm\",\"users\":[\"s%05d\"]}\n", i % 4, i }' >"$T/in"
	run --separate-stderr pres -v 2 track --coalesce 50ms <"$T/in"
	[ "$status" -eq 0 ]
	n=${#lines[@]}
	# The storm's length by the tracker's own log: from connected (no
	# change before it) to its exit line (after the last flush); without
	# the start and exit of the process, or a loaded machine's delays
	# around them, which would let more lines through.
	t0=$(log_ms 'msg="connected to Redis"' <<<"$stderr")
	t1=$(log_ms 'msg="exit"' <<<"$stderr")
	echo "# $n lines for 10000 joins in $((t1 - t0)) ms" >&3
	# every user announced exactly once
	[ "$(joined_users <<<"$output" | sort -u | wc -l)" -eq 10000 ]
	[ "$(joined_users <<<"$output" | wc -l)" -eq 10000 ]
	# at most one line per window (and one more for the end of input)
	[ "$n" -le $(((t1 - t0) / 50 + 2)) ]
}

# --- Redis away --------------------------------------------------------------

@test "Redis restarted mid-stream: the process survives, counts the gap, the next heartbeat restores the state" {
	track_start A --backoff-max 200ms --coalesce 10ms --metrics-file "$T/m.prom" --stats-interval 100ms
	feed A '{"type":"heartbeat","node":"gw1","rooms":{"r1":["a","b"]}}'
	wait_for 5 grep -q '"joined":\["a","b"\]' "$T/A.out"
	"$TOP/scripts/redis" stop "$REDIS_DIR"
	feed A '{"type":"join","node":"gw1","room":"r1","users":["c"]}' \
		'{"type":"presence","rpc":"q1","node":"gw1","room":"r1"}'
	# a query while Redis is away gets an error at once
	wait_for 5 grep -q '"type":"error","rpc":"q1","room":"r1","error":"presence store unavailable","route":"node.gw1"' "$T/A.out"
	"$TOP/scripts/redis" start "$REDIS_DIR" >/dev/null
	wait_for 10 grep -q 'reconnected to Redis' "$T/A.err"
	# the join kept while Redis was away is applied after the reconnect
	wait_for 5 bash -c "'$BIN/chat-presence' --prefix $PFX online --room r1 | grep -q '\"users\":\[\"c\"\],\"count\":1'"
	feed A '{"type":"heartbeat","node":"gw1","rooms":{"r1":["a","b","c"]}}'
	wait_for 5 bash -c "'$BIN/chat-presence' --prefix $PFX online --room r1 | grep -q '\"count\":3'"
	kill -0 "$A_PID"
	grep -q 'msg="lost Redis' "$T/A.err"
	grep -q 'Redis lost the presence state' "$T/A.err"
	wait_for 5 bash -c "[ \"\$('$TOP/tests/tools/prom' '$T/m.prom' chat_presence_redis_reconnects_total)\" = 1 ]"
	[ "$(metric_of "$T/m.prom" chat_presence_redis_gaps_total)" -eq 1 ]
	[ "$(metric_of "$T/m.prom" chat_presence_redis_state_lost_total)" -eq 1 ]
	[ "$(metric_of "$T/m.prom" chat_presence_query_errors_total)" -eq 1 ]
	[ "$(metric_of "$T/m.prom" chat_presence_redis_gap_milliseconds_total)" -gt 0 ]
	track_stop A
	[ "$WAIT_STATUS" -eq 0 ]
	[ "$(joined_users "$T/A.out" | sort | uniq -c | awk '{ print $1 $2 $3 }' | paste -sd' ')" = "2r1a 2r1b 1r1c" ]
}

@test "lines past --backlog while Redis is away are dropped and counted" {
	track_start A --backoff-max 200ms --backlog 100 --metrics-file "$T/m.prom" --stats-interval 100ms
	feed A '{"type":"join","node":"gw1","room":"r1","users":["a"]}'
	wait_for 5 grep -q '"joined":\["a"\]' "$T/A.out"
	"$TOP/scripts/redis" stop "$REDIS_DIR"
	feed A '{"type":"join","node":"gw1","room":"r1","users":["b"]}' \
		'{"type":"join","node":"gw1","room":"r1","users":["c"]}' \
		'{"type":"join","node":"gw1","room":"r1","users":["d"]}'
	wait_for 5 bash -c "[ \"\$('$TOP/tests/tools/prom' '$T/m.prom' chat_presence_dropped_lines_total)\" = 2 ]"
	grep -q 'backlog full' "$T/A.err"
	"$TOP/scripts/redis" start "$REDIS_DIR" >/dev/null
	wait_for 10 grep -q '"joined":\["b"\]' "$T/A.out"
	track_stop A
	grep -q 'dropped=2' "$T/A.err"
}

@test "Redis away longer than --retry-budget: exit 75" {
	track_start A --backoff-max 100ms --retry-budget 1s
	feed A '{"type":"join","node":"gw1","room":"r1","users":["a"]}'
	wait_for 5 grep -q '"joined":\["a"\]' "$T/A.out"
	"$TOP/scripts/redis" stop "$REDIS_DIR"
	wait_exit "$A_PID" 10
	"$TOP/scripts/redis" start "$REDIS_DIR" >/dev/null
	[ "$WAIT_STATUS" -eq 75 ]
	grep -q 'retry budget is spent' "$T/A.err"
}

# --- bad lines -----------------------------------------------------------------

@test "malformed lines: a clear log line each, counted, the stream goes on" {
	run --separate-stderr pres track --metrics-file "$T/m.prom" <<-'EOF'
	not json
	[1,2]
	{"type":"wave","node":"gw1"}
	{"type":"join","node":"gw 1","room":"r1","users":["a"]}
	{"type":"join","node":"gw1","room":"r 1","users":["a"]}
	{"type":"join","node":"gw1","room":"r1","users":"a"}
	{"type":"heartbeat","node":"gw1","ttl":-5,"rooms":{}}
	{"type":"presence","node":"gw1","room":"r1"}
	{"type":"join","node":"gw1","room":"r1","users":["ok","bad user","x\"y",7]}
	{"type":"bus","state":"down"}
	EOF
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"presence","room":"r1","joined":["ok"],"left":[],"route":"evt.r1"}' ]
	[ "$(grep -c 'msg="bad input line"' <<<"$stderr")" -eq 8 ]
	[[ "$stderr" == *'err="not valid JSON'* ]]
	[[ "$stderr" == *"unknown type 'wave'"* ]]
	[[ "$stderr" == *"bad node name 'gw 1'"* ]]
	[[ "$stderr" == *'msg="invalid names skipped" kind=join node="gw1" count=3'* ]]
	[ "$(metric_of "$T/m.prom" chat_presence_bad_lines_total)" -eq 8 ]
	[ "$(metric_of "$T/m.prom" chat_presence_bad_names_total)" -eq 3 ]
	[ "$(metric_of "$T/m.prom" chat_presence_lines_total)" -eq 10 ]
}

@test "a line over --max-line is dropped and counted" {
	{
		echo "{\"type\":\"join\",\"node\":\"gw1\",\"room\":\"r1\",\"users\":$(users 500)}"
		echo '{"type":"join","node":"gw1","room":"r1","users":["small"]}'
	} >"$T/in"
	run --separate-stderr pres track --max-line 2K <"$T/in"
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"presence","room":"r1","joined":["small"],"left":[],"route":"evt.r1"}' ]
	[[ "$stderr" == *"line longer than --max-line"* ]]
}

# --- shells ------------------------------------------------------------------

@test "online: one room, every room, --limit" {
	pres track <<-'EOF'
	{"type":"heartbeat","node":"gw1","rooms":{"b-room":["z","y","x"],"a-room":["w"]}}
	EOF
	run --separate-stderr pres online --room b-room --limit 2
	[ "$status" -eq 0 ]
	[ "$output" = '{"room":"b-room","users":["x","y"],"count":3,"more":true}' ]
	run --separate-stderr pres online
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = '{"room":"a-room","users":["w"],"count":1,"more":false}' ]
	[ "${lines[1]}" = '{"room":"b-room","users":["x","y","z"],"count":3,"more":false}' ]
	[ "${#lines[@]}" -eq 2 ]
	run --separate-stderr pres online --room nobody-here
	[ "$output" = '{"room":"nobody-here","users":[],"count":0,"more":false}' ]
}

@test "watch prints every tracker's changes as they happen, --room filters" {
	"$BIN/chat-presence" --prefix "$PFX" -v 2 watch >"$T/w.out" 2>"$T/w.err" 3>&- &
	PIDS="$PIDS $!"
	local wpid=$!
	"$BIN/chat-presence" --prefix "$PFX" -v 2 watch --room r2 >"$T/w2.out" 2>"$T/w2.err" 3>&- &
	PIDS="$PIDS $!"
	local w2pid=$!
	wait_for 5 grep -q 'msg="watching"' "$T/w.err"
	wait_for 5 grep -q 'msg="watching"' "$T/w2.err"
	pres track <<-'EOF'
	{"type":"join","node":"gw1","room":"r1","users":["a"]}
	{"type":"join","node":"gw1","room":"r2","users":["b"]}
	EOF
	wait_for 5 grep -q '"room":"r2"' "$T/w.out"
	wait_for 5 grep -q '"room":"r1"' "$T/w.out"
	wait_for 5 grep -q '"room":"r2"' "$T/w2.out"
	kill -TERM "$wpid" "$w2pid"
	wait_exit "$wpid" 5
	[ "$WAIT_STATUS" -eq 0 ]
	wait_exit "$w2pid" 5
	grep -qx '{"type":"presence","room":"r1","joined":\["a"\],"left":\[\]}' "$T/w.out"
	[ "$(cat "$T/w2.out")" = '{"type":"presence","room":"r2","joined":["b"],"left":[]}' ]
}

@test "SIGTERM: pending changes go out, exit 0" {
	track_start A --coalesce 10s
	feed A '{"type":"join","node":"gw1","room":"r1","users":["a"]}'
	wait_for 5 bash -c "'$BIN/chat-presence' --prefix $PFX online --room r1 | grep -q '\"count\":1'"
	[ ! -s "$T/A.out" ]
	kill -TERM "$A_PID"
	wait_exit "$A_PID" 5
	[ "$WAIT_STATUS" -eq 0 ]
	[ "$(cat "$T/A.out")" = '{"type":"presence","room":"r1","joined":["a"],"left":[],"route":"evt.r1"}' ]
}

# man_blocks: the .EX blocks of EXAMPLES in chat-presence(1), groff
# escapes undone, separated by NUL.
man_blocks() {
	sed -n '/^\.SH EXAMPLES/,/^\.SH CAVEATS/p' "$TOP/man/chat-presence.1" |
		awk '/^\.EX/ { on = 1; blk = ""; next }
		     /^\.EE/ { on = 0; printf "%s%c", blk, 0; next }
		     on { blk = blk $0 "\n" }' |
		sed 's/\\e/\\/g; s/\\(aq/'"'"'/g; s/\\-/-/g'
}

@test "the pipe EXAMPLE of chat-presence(1) prints what the page says" {
	local blocks=() b url
	while IFS= read -r -d '' b; do
		blocks+=("$b")
	done < <(man_blocks)
	[ "${#blocks[@]}" -ge 4 ]
	[[ "${blocks[1]}" == printf* ]]
	# database 2 of the test server: the example uses the default prefix
	url=${CHAT_REDIS_URL%/0}/2
	CHAT_REDIS_URL=$url PATH="$BIN:$PATH" run --separate-stderr bash -o pipefail -c "${blocks[1]}"
	[ "$status" -eq 0 ]
	[ "$output" = "${blocks[2]%$'\n'}" ]
	[[ "${blocks[0]}" == *"chat-relay --single-active --queue chat.presence"* ]]
}

# backlog_says NAME N: ask tracker NAME for its stats (SIGUSR1); true once
# a stats line says it keeps N lines for after the reconnect.
backlog_says() {
	local pid_var=${1}_PID
	kill -USR1 "${!pid_var}" &&
		grep -q "msg=\"stats\".* backlog=$2 " "$T/$1.err"
}

@test "--ready-fd: a newline once connected; SIGTERM while Redis is away: exit 0 at once" {
	track_start A --ready-fd 5 --backoff-max 200ms 5>"$T/ready"
	wait_for 10 test -s "$T/ready"
	[ "$(od -An -c "$T/ready" | tr -d ' ')" = '\n' ]
	feed A '{"type":"join","node":"gw1","room":"r1","users":["a"]}'
	wait_for 5 grep -q '"joined":\["a"\]' "$T/A.out"
	"$TOP/scripts/redis" stop "$REDIS_DIR"
	feed A '{"type":"join","node":"gw1","room":"r1","users":["b"]}'
	wait_for 5 grep -q 'lost Redis' "$T/A.err"
	# "lost Redis" can come before the line is read: wait until the
	# stats (SIGUSR1) say it is kept.
	wait_for 5 backlog_says A 1
	kill -TERM "$A_PID"
	wait_exit "$A_PID" 5
	"$TOP/scripts/redis" start "$REDIS_DIR" >/dev/null
	[ "$WAIT_STATUS" -eq 0 ]
	grep -q 'msg="stopping with lines not applied" backlog_lines=1' "$T/A.err"
}

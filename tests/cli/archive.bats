#!/usr/bin/env bats
# chat-archive against a real private PostgreSQL (scripts/postgres), no
# broker: the command line, init, store through plain pipes and through a
# fake relay (tags, confirms, nacks), serve's answers, the shell commands,
# a PostgreSQL restart in the middle of a stream, and two writers at once.
# Every test uses rooms of its own ("tN-..."), so they share one database.

bats_require_minimum_version 1.5.0
load ../helper

FAKE_RELAY="python3 $TOP/tests/tools/fake_relay.py"

setup_file() {
	postgres_up || return 1
	"$BIN/chat-archive" init >/dev/null || return 1
}

teardown_file() {
	postgres_down
}

setup() {
	R=t$BATS_TEST_NUMBER
}

# ingest ID ROOM [BODY [TAG [TS]]]: one ingest line as the gateway writes it.
ingest() {
	printf '{"type":"publish","id":"%s","room":"%s","from":"u1","ts":%s,"node":"gw1","body":%s%s}\n' \
		"$1" "$2" "${5:-1700000000000}" "${3:-\"hi\"}" "${4:+,\"tag\":$4}"
}

# seqs_of ROOM FILE: the seqs of ROOM's message lines in FILE, one line.
seqs_of() {
	jq -r --arg r "$1" 'select(.room == $r) | .seq' "$2" | tr '\n' ' '
}

# metric FILE NAME: a value from a metrics file.
mfile() {
	"$TOP/tests/tools/prom" "$1" "$2"
}

# --- the command line ------------------------------------------------------

@test "--help: usage on stdout, exit 0; --version" {
	run --separate-stderr "$BIN/chat-archive" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"usage: chat-archive"* ]]
	[[ "$output" == *"--batch N"* ]]
	[ -z "$stderr" ]
	run --separate-stderr "$BIN/chat-archive" --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^chat-archive\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "usage errors: usage on stderr, nothing on stdout, exit 64" {
	run --separate-stderr "$BIN/chat-archive"
	[ "$status" -eq 64 ]
	[ -z "$output" ]
	[[ "$stderr" == *"no subcommand"*"usage: chat-archive"* ]]
	run --separate-stderr "$BIN/chat-archive" --no-such-option store
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"unknown option '--no-such-option'"* ]]
	run --separate-stderr "$BIN/chat-archive" dance
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"unknown subcommand 'dance'"* ]]
	run --separate-stderr "$BIN/chat-archive" serve --batch 10
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"serve takes no --batch"* ]]
	run --separate-stderr "$BIN/chat-archive" store --batch lots
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"'lots' is not a number"* ]]
	run --separate-stderr "$BIN/chat-archive" history
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"history needs --room"* ]]
	run --separate-stderr "$BIN/chat-archive" history --room 'bad room'
	[ "$status" -eq 64 ]
	run --separate-stderr "$BIN/chat-archive" history --room a --since 1 --before 2
	[ "$status" -eq 64 ]
	run --separate-stderr "$BIN/chat-archive" prune
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"prune needs --older-than"* ]]
	run --separate-stderr "$BIN/chat-archive" --db x --db-file y stats
	[ "$status" -eq 64 ]
}

@test "configuration errors exit 78, an unreachable database 69" {
	run --separate-stderr "$BIN/chat-archive" --db 'host=' stats
	[ "$status" -eq 78 ] || [ "$status" -eq 69 ]
	run --separate-stderr "$BIN/chat-archive" --db 'nonsense no equals' stats
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"bad conninfo"* ]]
	run --separate-stderr "$BIN/chat-archive" --db-file /nonexistent/db stats
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"unable to read '/nonexistent/db'"* ]]
	run --separate-stderr "$BIN/chat-archive" --db postgresql://chat@127.0.0.1:1/chat store </dev/null
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"unable to start on PostgreSQL"* ]]
	[ -z "$output" ]
	run --separate-stderr "$BIN/chat-archive" --db postgresql://chat@127.0.0.1:1/chat serve </dev/null
	[ "$status" -eq 69 ]
}

@test "a database without the schema: store and serve exit 78 and say to run init" {
	sql "DROP DATABASE IF EXISTS t${BATS_TEST_NUMBER}empty" >/dev/null
	sql "CREATE DATABASE t${BATS_TEST_NUMBER}empty" >/dev/null
	local url=${CHAT_DB_URL%/*}/t${BATS_TEST_NUMBER}empty
	run --separate-stderr "$BIN/chat-archive" --db "$url" store </dev/null
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"run 'chat-archive init'"* ]]
	run --separate-stderr "$BIN/chat-archive" --db "$url" serve </dev/null
	[ "$status" -eq 78 ]
}

@test "the conninfo from --db-file; a password on the command line is warned about" {
	printf '%s\n' "$CHAT_DB_URL" >"$BATS_TEST_TMPDIR/db"
	run --separate-stderr env -u CHAT_DB_URL "$BIN/chat-archive" --db-file "$BATS_TEST_TMPDIR/db" stats
	[ "$status" -eq 0 ]
	[[ "$(jq -r .schema_version <<<"$output")" == 1 ]]
	[[ "$stderr" != *password* ]]
	local url=${CHAT_DB_URL/chat@/chat:secret@}
	run --separate-stderr "$BIN/chat-archive" --db "$url" stats
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"password on the command line"* ]]
	[[ "$stderr" != *secret* ]]
}

# --- init -------------------------------------------------------------------

@test "init creates the schema once and is idempotent" {
	sql "DROP DATABASE IF EXISTS t${BATS_TEST_NUMBER}db" >/dev/null
	sql "CREATE DATABASE t${BATS_TEST_NUMBER}db" >/dev/null
	local url=${CHAT_DB_URL%/*}/t${BATS_TEST_NUMBER}db
	run --separate-stderr "$BIN/chat-archive" --db "$url" init
	[ "$status" -eq 0 ]
	[ "$output" = '{"schema_version":1,"migrated_from":0}' ]
	run --separate-stderr "$BIN/chat-archive" --db "$url" init
	[ "$status" -eq 0 ]
	[ "$output" = '{"schema_version":1,"migrated_from":1}' ]
	run psql -X -q -A -t "$url" -c "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"
	[ "$output" = "messages,rooms,schema_version" ]
	run psql -X -q -A -t "$url" -c "SELECT count(*) FROM schema_version"
	[ "$output" = 1 ]
}

# --- store through a pipe ---------------------------------------------------

@test "store: ingest lines in, message lines out in the contract's member order" {
	run --separate-stderr "$BIN/chat-archive" store < <(ingest "$R-1" "$R-a" '{"text":"hi"}')
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"message","room":"'$R'-a","seq":1,"id":"'$R'-1","from":"u1","ts":1700000000000,"body":{"text":"hi"},"route":"msg.'$R'-a"}' ]
	[ -z "$stderr" ]
}

@test "store: seq consecutive per room; the same lines again keep their first seq and add no row" {
	local i in=$BATS_TEST_TMPDIR/in.jsonl
	for i in $(seq 1 30); do
		ingest "$R-$i" "$R-$((i % 3))" "{\"n\":$i}"
	done >"$in"
	"$BIN/chat-archive" store <"$in" >"$BATS_TEST_TMPDIR/out1"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/out1")" -eq 30 ]
	for i in 0 1 2; do
		[ "$(seqs_of "$R-$i" "$BATS_TEST_TMPDIR/out1")" = "1 2 3 4 5 6 7 8 9 10 " ]
	done
	# in input order: line i is the ((i-1)/3+1)th of its room
	[ "$(jq -r 'select(.id == "'$R'-7") | .seq' "$BATS_TEST_TMPDIR/out1")" = 3 ]
	"$BIN/chat-archive" -v 2 --metrics-file "$BATS_TEST_TMPDIR/m" store <"$in" \
		>"$BATS_TEST_TMPDIR/out2" 2>"$BATS_TEST_TMPDIR/err"
	cmp "$BATS_TEST_TMPDIR/out1" "$BATS_TEST_TMPDIR/out2"
	[ "$(sql "SELECT count(*) FROM messages WHERE room LIKE '$R-%'")" = 30 ]
	[ "$(sql "SELECT string_agg(last_seq::text, ',' ORDER BY room) FROM rooms WHERE room LIKE '$R-%'")" = "10,10,10" ]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_duplicates_total)" = 30 ]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_messages_stored_total)" = 0 ]
	grep -q 'msg="exit" lines_in=30 stored=0 duplicates=30' "$BATS_TEST_TMPDIR/err"
}

@test "store: an id twice in one batch gets one seq; a retried id later keeps it" {
	{
		ingest "$R-x" "$R-a"
		ingest "$R-y" "$R-a"
		ingest "$R-x" "$R-a"
	} >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$BIN/chat-archive" store <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[ "$(jq -r '"\(.id) \(.seq)"' <<<"$output" | tr '\n' ' ')" = "$R-x 1 $R-y 2 $R-x 1 " ]
	run --separate-stderr "$BIN/chat-archive" store < <(ingest "$R-z" "$R-a"; ingest "$R-y" "$R-a")
	[ "$(jq -r '"\(.id) \(.seq)"' <<<"$output" | tr '\n' ' ')" = "$R-z 3 $R-y 2 " ]
	[ "$(sql "SELECT last_seq FROM rooms WHERE room = '$R-a'")" = 3 ]
}

@test "store: SQL-looking, non-ASCII, \\u0000, emoji and quoted bodies are stored and returned byte for byte" {
	local bodies=(
		'"'"'"'); DROP TABLE messages; --"'
		'{"k":"Grüße 日本語 😀","z":"\u0000","q":"\"\\","e":"\ud83d\ude00"}'
		'[1,2.50,-0,1e3,true,null,{"a":{}},"\/"]'
		'{ "spaced" : [ 1 , 2 ] }'
		'"a\tb\nc\\u0041 {\"} ,"'
	)
	local i
	for i in "${!bodies[@]}"; do
		ingest "$R-$i" "$R-a" "${bodies[$i]}"
	done >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$BIN/chat-archive" store <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq ${#bodies[@]} ]
	for i in "${!bodies[@]}"; do
		# the line carries the body verbatim, between "body": and ,"route"
		[[ "${lines[$i]}" == *',"body":'"${bodies[$i]}"',"route":"msg.'$R'-a"}' ]]
		[ "$(sql "SELECT body FROM messages WHERE id = '$R-$i'")" = "${bodies[$i]}" ]
	done
	run "$BIN/chat-archive" history --room "$R-a"
	[ "$status" -eq 0 ]
	for i in "${!bodies[@]}"; do
		[[ "${lines[$i]}" == *',"body":'"${bodies[$i]}"'}' ]]
	done
	[ "$(sql "SELECT count(*) FROM messages")" -gt 0 ]
}

@test "store: bad lines are logged with their reason, counted, and the stream goes on" {
	local big
	big=$(head -c 2000 /dev/zero | tr '\0' x)
	{
		echo 'not json'
		echo '[1,2]'
		echo '{"type":"publish","room":"'$R'-a","from":"u1","ts":1,"body":1}'
		echo '{"type":"publish","id":"'$R'-2","room":"bad room","from":"u1","ts":1,"body":1}'
		echo '{"type":"publish","id":"'$R'-3","room":"'$R'-a","from":"u1","ts":"1","body":1}'
		echo '{"type":"publish","id":"'$R'-4","room":"'$R'-a","from":"u 1","ts":1,"body":1}'
		echo '{"type":"publish","id":"'$R'-5","room":"'$R'-a","from":"u1","ts":1}'
		echo '{"type":"publish","id":"'$R'-6","room":"'$R'-a","from":"u1","ts":1,"body":"'$big'"}'
		echo '{"type":"publish","id":"'$R'-7","id":"'$R'-7","room":"'$R'-a","from":"u1","ts":1,"body":1}'
		echo '{"type":"history","room":"'$R'-a"}'
		ingest "$R-ok" "$R-a"
	} >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$BIN/chat-archive" --metrics-file "$BATS_TEST_TMPDIR/m" \
		store --max-body 1K <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r .id <<<"$output") $(jq -r .seq <<<"$output")" = "$R-ok 1" ]
	[ "$(grep -c 'msg="bad input line"' <<<"$stderr")" -eq 10 ]
	[[ "$stderr" == *'err="not valid JSON'* ]]
	[[ "$stderr" == *'no valid \"id\"'* ]]
	[[ "$stderr" == *'no valid \"room\"'* ]]
	[[ "$stderr" == *'\"ts\" is not a non-negative integer'* ]]
	[[ "$stderr" == *'no valid \"from\"'* ]]
	[[ "$stderr" == *'no \"body\"'* ]]
	[[ "$stderr" == *'over --max-body (1024)'* ]]
	[[ "$stderr" == *'duplicate'* ]]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_bad_lines_total)" = 10 ]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_lines_in_total)" = 11 ]
	[ "$(sql "SELECT count(*) FROM messages WHERE room LIKE '$R-%'")" = 1 ]
}

@test "store: a line PostgreSQL refuses is found by sending its batch line by line, then acked as bad" {
	sql "DROP DATABASE IF EXISTS t${BATS_TEST_NUMBER}db" >/dev/null
	sql "CREATE DATABASE t${BATS_TEST_NUMBER}db" >/dev/null
	local url=${CHAT_DB_URL%/*}/t${BATS_TEST_NUMBER}db i
	"$BIN/chat-archive" --db "$url" init >/dev/null
	# A rule of this database's own that one body breaks (a check
	# violation, SQLSTATE class 23: the data is refused).
	psql -X -q "$url" -c "ALTER TABLE messages ADD CONSTRAINT no_evil CHECK (body <> '\"evil\"')"
	for i in 1 2 3 4 5 6; do
		if [ "$i" = 4 ]; then ingest "$R-$i" "$R-a" '"evil"' "$i"; else ingest "$R-$i" "$R-a" "$i" "$i"; fi
	done >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$BIN/chat-archive" --db "$url" --metrics-file "$BATS_TEST_TMPDIR/m" store <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	# the refused line is acked at once; the others go out with their
	# confirm, seqs 1..5 with no gap
	[ "$(grep -c '"type":"ack"' <<<"$output")" -eq 1 ]
	[[ "$output" == *'{"type":"ack","tag":4}'* ]]
	[ "$(jq -r 'select(.type == "message") | .seq' <<<"$output" | tr '\n' ' ')" = "1 2 3 4 5 " ]
	[[ "$stderr" == *"batch refused, sending its lines one by one"* ]]
	[[ "$stderr" == *'bad input line, refused by PostgreSQL'*'sqlstate=23514'* ]]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_bad_lines_total)" = 1 ]
	[ "$(psql -X -q -A -t "$url" -c "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM messages")" = "1,2,3,4,5" ]
}

# --- store with tags: the relay's side, driven through a coprocess ---------

# arch_start CMD...: run CMD as a coprocess (stderr to $BATS_TEST_TMPDIR/err);
# sets pid, AIN (its stdin) and AOUT (its stdout), copies of the
# coprocess's descriptors that bash does not close when it exits.
arch_start() {
	coproc ARCH { exec "$@" 2>"$BATS_TEST_TMPDIR/err"; }
	pid=$ARCH_PID
	exec {AIN}>&"${ARCH[1]}" {AOUT}<&"${ARCH[0]}"
	exec {ARCH[1]}>&-
}

# arch_line VAR: read one line of the coprocess into VAR (bounded).
arch_line() {
	read -r -t 10 "$1" <&"$AOUT"
}

# arch_close: end the coprocess's input.
arch_close() {
	exec {AIN}>&-
}

@test "store with tags: acks only after the confirms come back; a nack requeues" {
	local pid
	arch_start "$BIN/chat-archive" store
	local m1 m2 m3 m4 a c1 c2 c3 c4
	{
		ingest "$R-1" "$R-a" '"one"' 7
		ingest "$R-2" "$R-a" '"two"' 8
		ingest "$R-3" "$R-b" '"three"' 9
	} >&"$AIN"
	arch_line m1 && arch_line m2 && arch_line m3
	[ "$m1" = '{"type":"message","room":"'$R'-a","seq":1,"id":"'$R'-1","from":"u1","ts":1700000000000,"body":"one","route":"msg.'$R'-a","confirm":1}' ]
	c1=$(jq -r .confirm <<<"$m1")
	c2=$(jq -r .confirm <<<"$m2")
	c3=$(jq -r .confirm <<<"$m3")
	[ "$(jq -r '"\(.id) \(.seq)"' <<<"$m2")" = "$R-2 2" ]
	[ "$(jq -r '"\(.id) \(.seq)"' <<<"$m3")" = "$R-3 1" ]
	# Nothing was acked yet: the first line after the second confirm is
	# its ack, and only its.
	echo '{"type":"confirm","confirm":'"$c2"'}' >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"ack","tag":8}' ]
	echo '{"type":"nack","confirm":'"$c1"'}' >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"nack","tag":7,"requeue":true}' ]
	echo '{"type":"confirm","confirm":'"$c3"'}' >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"ack","tag":9}' ]
	# The broker delivers the nacked one again: the same seq, published
	# again, acked after its new confirm.
	ingest "$R-1" "$R-a" '"one"' 10 >&"$AIN"
	arch_line m4
	[ "$(jq -r '"\(.id) \(.seq) \(.body)"' <<<"$m4")" = "$R-1 1 one" ]
	c4=$(jq -r .confirm <<<"$m4")
	[ "$c4" != "$c1" ]
	# A confirm for nothing pending is counted, not acted on.
	echo '{"type":"confirm","confirm":999}' >&"$AIN"
	echo '{"type":"bus","state":"up"}' >&"$AIN"
	echo '{"type":"confirm","confirm":'"$c4"'}' >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"ack","tag":10}' ]
	# A bad delivery is acked at once, with its reason logged.
	echo '{"type":"publish","id":"x","tag":11}' >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"ack","tag":11}' ]
	arch_close
	wait "$pid"
	grep -q 'msg="bad input line, acked" err="no valid \\"room\\"" tag=11' "$BATS_TEST_TMPDIR/err"
	grep -q 'message refused by the broker' "$BATS_TEST_TMPDIR/err"
	[ "$(sql "SELECT count(*) FROM messages WHERE room LIKE '$R-%'")" = 3 ]
}

@test "store: SIGTERM under a relay: held lines committed, confirms still acked, later deliveries requeued, exit 0" {
	local pid
	arch_start "$BIN/chat-archive" -v 2 store
	local m1 m2 a
	{
		ingest "$R-1" "$R-a" '"one"' 1
		ingest "$R-2" "$R-a" '"two"' 2
	} >&"$AIN"
	arch_line m1 && arch_line m2
	kill -TERM "$pid"
	wait_for 10 grep -q 'msg="stopping"' "$BATS_TEST_TMPDIR/err"
	# a delivery after the signal goes back to the queue
	ingest "$R-3" "$R-a" '"three"' 3 >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"nack","tag":3,"requeue":true}' ]
	echo '{"type":"confirm","confirm":'"$(jq -r .confirm <<<"$m1")"'}' >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"ack","tag":1}' ]
	echo '{"type":"confirm","confirm":'"$(jq -r .confirm <<<"$m2")"'}' >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"ack","tag":2}' ]
	# nothing pending any more: it exits without waiting for EOF
	local status=0
	wait "$pid" || status=$?
	[ "$status" -eq 0 ]
	[ "$(sql "SELECT count(*) FROM messages WHERE room = '$R-a'")" = 2 ]
}

@test "store: SIGTERM on a plain pipe that stays open: exit 0 once what was read is written" {
	mkfifo "$BATS_TEST_TMPDIR/in"
	"$BIN/chat-archive" store <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$! status=0
	exec {w}>"$BATS_TEST_TMPDIR/in"
	ingest "$R-1" "$R-a" >&"$w"
	wait_for 10 test -s "$BATS_TEST_TMPDIR/out"
	kill -TERM "$pid"
	wait "$pid" || status=$?
	exec {w}>&-
	[ "$status" -eq 0 ]
	[ "$(jq -r .seq "$BATS_TEST_TMPDIR/out")" = 1 ]
}

@test "store with tags: 2,000 deliveries through a fake relay, every tenth message nacked" {
	run --separate-stderr $FAKE_RELAY --count 2000 --rooms 7 --room-prefix "$R" --nack-every 10 \
		--prefetch 300 -- "$BIN/chat-archive" store --batch 64
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .acked <<<"$output")" = 2000 ]
	[ "$(jq -r .nacks <<<"$output")" -ge 200 ]
	[ "$(sql "SELECT count(*) FROM messages WHERE room LIKE '$R-%'")" = 2000 ]
}

@test "store: more deliveries than --max-pending are requeued, never held" {
	run --separate-stderr $FAKE_RELAY --count 300 --rooms 3 --room-prefix "$R" --prefetch 100 \
		-- "$BIN/chat-archive" --metrics-file "$BATS_TEST_TMPDIR/m" store --max-pending 20 --batch 8
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .acked <<<"$output")" = 300 ]
	[ "$(jq -r .nacks <<<"$output")" -gt 0 ]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_refused_total)" -gt 0 ]
	[ "$(sql "SELECT count(*) FROM messages WHERE room LIKE '$R-%'")" = 300 ]
}

# --- serve ---------------------------------------------------------------------

# seed ROOM N [BODY]: store N messages in ROOM.
seed() {
	local i
	for i in $(seq 1 "$2"); do
		ingest "$1-m$i" "$1" "${3:-\"m$i\"}"
	done | "$BIN/chat-archive" store >/dev/null
}

@test "serve: history pages backwards with more; answers go to node.NODE with room and rpc" {
	seed "$R-a" 10
	{
		echo '{"type":"history","route":"rpc.history","rpc":"gw9-1-q1","node":"gw9","conn":4,"room":"'$R'-a","limit":3}'
		echo '{"type":"history","rpc":"gw9-1-q2","node":"gw9","conn":4,"room":"'$R'-a","limit":3,"before":8}'
		echo '{"type":"history","rpc":{"n":3},"node":"gw9","conn":4,"room":"'$R'-a","limit":5,"before":3}'
		echo '{"type":"history","rpc":"q4","node":"gw9","conn":4,"room":"'$R'-none"}'
	} >"$BATS_TEST_TMPDIR/q"
	run --separate-stderr "$BIN/chat-archive" serve <"$BATS_TEST_TMPDIR/q"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 4 ]
	[[ "${lines[0]}" == '{"type":"history","rpc":"gw9-1-q1","room":"'$R'-a","messages":[{"type":"message","room":"'$R'-a","seq":8,'* ]]
	[[ "${lines[0]}" == *'"more":true,"route":"node.gw9"}' ]]
	[ "$(jq -c '[.messages[].seq]' <<<"${lines[0]}")" = "[8,9,10]" ]
	[ "$(jq -c '[.messages[].seq]' <<<"${lines[1]}")" = "[5,6,7]" ]
	[ "$(jq -r .more <<<"${lines[1]}")" = true ]
	[[ "${lines[2]}" == '{"type":"history","rpc":{"n":3},"room":"'$R'-a","messages":['* ]]
	[ "$(jq -c '[.messages[].seq]' <<<"${lines[2]}")" = "[1,2]" ]
	[ "$(jq -r .more <<<"${lines[2]}")" = false ]
	[ "${lines[3]}" = '{"type":"history","rpc":"q4","room":"'$R'-none","messages":[],"more":false,"route":"node.gw9"}' ]
	# never the query's route
	[[ "$output" != *rpc.history* ]]
	# a message in an answer is the live line without route and confirm
	[ "$(jq -c '.messages[0]' <<<"${lines[0]}")" = "$(jq -c 'del(.route)' < <("$BIN/chat-archive" history --room "$R-a" --since 7 --limit 1))" ]
}

@test "serve: recover gives exactly what came after since, LAST from the same snapshot" {
	seed "$R-a" 10
	{
		echo '{"type":"recover","rpc":"r1","node":"gw9","conn":1,"room":"'$R'-a","since":7}'
		echo '{"type":"recover","rpc":"r2","node":"gw9","room":"'$R'-a","since":10}'
		echo '{"type":"recover","rpc":"r3","node":"gw9","room":"'$R'-a"}'
		echo '{"type":"recover","rpc":"r4","node":"gw9","room":"'$R'-new","since":0}'
		echo '{"type":"recover","rpc":"r5","node":"gw9","room":"'$R'-a","since":0}'
	} >"$BATS_TEST_TMPDIR/q"
	run --separate-stderr "$BIN/chat-archive" serve --recover-limit 4 <"$BATS_TEST_TMPDIR/q"
	[ "$status" -eq 0 ]
	[ "$(jq -c '[.type, .rpc, .room, .seq, [.messages[].seq], .gap]' <<<"${lines[0]}")" = '["recovered","r1","'$R'-a",10,[8,9,10],null]' ]
	[ "${lines[1]}" = '{"type":"recovered","rpc":"r2","room":"'$R'-a","seq":10,"messages":[],"route":"node.gw9"}' ]
	[ "${lines[2]}" = '{"type":"recovered","rpc":"r3","room":"'$R'-a","seq":10,"messages":[],"route":"node.gw9"}' ]
	[ "${lines[3]}" = '{"type":"recovered","rpc":"r4","room":"'$R'-new","seq":0,"messages":[],"route":"node.gw9"}' ]
	# over --recover-limit: the newest contiguous run, the rest a gap
	[ "$(jq -c '[.seq, [.messages[].seq], .gap]' <<<"${lines[4]}")" = '[10,[7,8,9,10],{"from":1,"to":6}]' ]
	[[ "${lines[4]}" == *'],"gap":{"from":1,"to":6},"route":"node.gw9"}' ]]
}

@test "serve: an answer cut to fit --max-line says so (history more, recover gap)" {
	local body
	body=\"$(head -c 1000 /dev/zero | tr '\0' b)\"
	seed "$R-a" 12 "$body"
	{
		echo '{"type":"history","rpc":"h","node":"gw9","conn":1,"room":"'$R'-a","limit":12}'
		echo '{"type":"recover","rpc":"r","node":"gw9","conn":1,"room":"'$R'-a","since":0}'
	} >"$BATS_TEST_TMPDIR/q"
	run --separate-stderr "$BIN/chat-archive" --metrics-file "$BATS_TEST_TMPDIR/m" serve --max-line 4096 <"$BATS_TEST_TMPDIR/q"
	[ "$status" -eq 0 ]
	[ "${#lines[0]}" -lt 4096 ]
	[ "${#lines[1]}" -lt 4096 ]
	# history: the newest that fit, more=true although nothing older is
	# stored beyond the limit
	[ "$(jq -c '[[.messages[].seq], .more]' <<<"${lines[0]}")" = '[[10,11,12],true]' ]
	[ "$(jq -c '[.seq, [.messages[].seq], .gap]' <<<"${lines[1]}")" = '[12,[10,11,12],{"from":1,"to":9}]' ]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_answer_cuts_total)" = 2 ]
}

@test "serve: a malformed query is logged and counted, never answered; the next one is" {
	{
		echo 'nope'
		echo '{"type":"history","rpc":"a","room":"'$R'-a"}'
		echo '{"type":"history","rpc":"b","node":"gw9","room":"bad room"}'
		echo '{"type":"recover","rpc":"c","node":"gw9","room":"'$R'-a","since":-1}'
		echo '{"type":"history","node":"gw9","room":"'$R'-a"}'
		echo '{"type":"bus","state":"up"}'
		echo '{"type":"recover","rpc":"ok","node":"gw9","room":"'$R'-a","since":0}'
	} >"$BATS_TEST_TMPDIR/q"
	run --separate-stderr "$BIN/chat-archive" --metrics-file "$BATS_TEST_TMPDIR/m" serve <"$BATS_TEST_TMPDIR/q"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$(jq -r .rpc <<<"$output")" = ok ]
	[ "$(grep -c 'bad query, not answered' <<<"$stderr")" -eq 5 ]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_bad_lines_total)" = 5 ]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_queries_total)" = 1 ]
}

# --- the shell commands -----------------------------------------------------------

@test "history, stats and prune from the shell" {
	local now old
	now=$(($(date +%s) * 1000))
	old=$((now - 7200 * 1000))
	for i in 1 2 3; do ingest "$R-o$i" "$R-a" '"old"' '' "$old"; done >"$BATS_TEST_TMPDIR/in"
	for i in 4 5 6 7; do ingest "$R-n$i" "$R-a" '"new"' '' "$now"; done >>"$BATS_TEST_TMPDIR/in"
	"$BIN/chat-archive" store <"$BATS_TEST_TMPDIR/in" >/dev/null
	run "$BIN/chat-archive" history --room "$R-a" --limit 2
	[ "$(jq -r .seq <<<"$output" | tr '\n' ' ')" = "6 7 " ]
	run "$BIN/chat-archive" history --room "$R-a" --since 2 --limit 3
	[ "$(jq -r .seq <<<"$output" | tr '\n' ' ')" = "3 4 5 " ]
	run "$BIN/chat-archive" history --room "$R-a" --before 3
	[ "$(jq -r .seq <<<"$output" | tr '\n' ' ')" = "1 2 " ]
	run "$BIN/chat-archive" history --room "$R-a" --since 0 --limit 0
	[ "${#lines[@]}" -eq 7 ]
	[[ "${lines[0]}" == '{"type":"message","room":"'$R'-a","seq":1,"id":"'$R'-o1","from":"u1","ts":'$old',"body":"old"}' ]]
	run --separate-stderr "$BIN/chat-archive" stats --top 1000
	[ "$status" -eq 0 ]
	[ "$(jq -c '.top[] | select(.room == "'$R'-a") | [.messages, .last_seq]' <<<"$output")" = "[7,7]" ]
	[ "$(jq -r '.messages > 0 and .rooms > 0 and .oldest_ts <= .newest_ts' <<<"$output")" = true ]

	run --separate-stderr "$BIN/chat-archive" prune --older-than 1h
	[ "$status" -eq 0 ]
	[ "$(jq -r '.deleted >= 3' <<<"$output")" = true ]
	[ "$(sql "SELECT count(*) FROM messages WHERE room = '$R-a'")" = 4 ]
	# the room keeps its last seq: a new message goes on from it
	ingest "$R-n8" "$R-a" '"new"' '' "$now" | "$BIN/chat-archive" store >"$BATS_TEST_TMPDIR/out"
	[ "$(jq -r .seq "$BATS_TEST_TMPDIR/out")" = 8 ]
	# what is gone is reported: a gap for recover, no more for history
	{
		echo '{"type":"recover","rpc":"r","node":"gw9","room":"'$R'-a","since":1}'
		echo '{"type":"history","rpc":"h","node":"gw9","room":"'$R'-a","limit":10}'
	} | "$BIN/chat-archive" serve >"$BATS_TEST_TMPDIR/ans"
	[ "$(head -n 1 "$BATS_TEST_TMPDIR/ans" | jq -c '[.seq, [.messages[].seq], .gap]')" = '[8,[4,5,6,7,8],{"from":2,"to":3}]' ]
	[ "$(tail -n 1 "$BATS_TEST_TMPDIR/ans" | jq -c '[[.messages[].seq], .more]')" = '[[4,5,6,7,8],false]' ]
}

# --- PostgreSQL going away -----------------------------------------------------

@test "PostgreSQL restarted during a stream of 10,000 tagged messages: each committed once, no gap, no seq twice, no ack before commit" {
	run --separate-stderr $FAKE_RELAY --count 10000 --rooms 20 --room-prefix "$R" --prefetch 1000 \
		--pairs "$BATS_TEST_TMPDIR/pairs" --hook-at 2500 \
		--hook "PG_FSYNC=off '$TOP/scripts/postgres' stop '$PG_DIR' && PG_FSYNC=off '$TOP/scripts/postgres' start '$PG_DIR' >/dev/null" \
		--timeout 120 \
		-- "$BIN/chat-archive" -v 2 --metrics-file "$BATS_TEST_TMPDIR/m" store --batch 100
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .acked <<<"${lines[-1]}")" = 10000 ]
	[ "$(mfile "$BATS_TEST_TMPDIR/m" chat_archive_db_reconnects_total)" -ge 1 ]
	# in the database: 10,000 rows, each room 1..n, last_seq = n
	[ "$(sql "SELECT count(*) FROM messages WHERE room LIKE '$R-%'")" = 10000 ]
	[ "$(sql "SELECT count(*) FROM (SELECT room, count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM messages WHERE room LIKE '$R-%' GROUP BY room) x JOIN rooms r USING (room) WHERE n <> hi OR lo <> 1 OR r.last_seq <> hi")" = 0 ]
	# what was published is what was committed
	sql "SELECT id || ' ' || seq FROM messages WHERE room LIKE '$R-%' ORDER BY id" >"$BATS_TEST_TMPDIR/db"
	cmp "$BATS_TEST_TMPDIR/pairs" "$BATS_TEST_TMPDIR/db"
}

@test "store: the connection killed with a batch in flight: the batch is sent again after the reconnect, one seq" {
	# backend APP CONDITION: one session of APP is in that state now.
	backend() {
		[ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND $2")" = 1 ]
	}
	ingest "$R-0" "$R-a" | "$BIN/chat-archive" store >/dev/null
	# Another session holds the room's lock, so the batch waits in flight.
	PGAPPNAME=locker psql -X -q "$CHAT_DB_URL" -c "BEGIN" \
		-c "SELECT 1 FROM rooms WHERE room = '$R-a' FOR UPDATE" \
		-c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
	local locker=$! pid m a
	wait_for 10 backend locker "query LIKE '%pg_sleep%'"
	arch_start "$BIN/chat-archive" -v 2 store --backoff-max 200ms
	ingest "$R-1" "$R-a" '"x"' 5 >&"$AIN"
	wait_for 10 backend chat-archive "wait_event_type = 'Lock'"
	sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'chat-archive'" >/dev/null
	wait_for 10 grep -q 'reconnected to PostgreSQL' "$BATS_TEST_TMPDIR/err"
	# in flight again, behind the same lock; then the lock goes
	wait_for 10 backend chat-archive "wait_event_type = 'Lock'"
	sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'locker'" >/dev/null
	wait "$locker" || true
	arch_line m
	[ "$(jq -r '"\(.id) \(.seq)"' <<<"$m")" = "$R-1 2" ]
	echo '{"type":"confirm","confirm":'"$(jq -r .confirm <<<"$m")"'}' >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"ack","tag":5}' ]
	arch_close
	wait "$pid"
	grep -q 'lost PostgreSQL.*in_flight=1' "$BATS_TEST_TMPDIR/err"
	[ "$(sql "SELECT string_agg(seq::text, ',' ORDER BY seq) FROM messages WHERE room = '$R-a'")" = "1,2" ]
}

@test "serve: a query the database cannot answer gets an error answer; serve reconnects" {
	seed "$R-a" 3
	local pid
	arch_start "$BIN/chat-archive" serve --backoff-max 200ms
	local a i
	echo '{"type":"recover","rpc":"r0","node":"gw9","room":"'$R'-a","since":0}' >&"$AIN"
	arch_line a
	[ "$(jq -r .seq <<<"$a")" = 3 ]
	"$TOP/scripts/postgres" stop "$PG_DIR"
	echo '{"type":"recover","rpc":"r1","node":"gw9","room":"'$R'-a","since":0}' >&"$AIN"
	arch_line a
	[ "$a" = '{"type":"error","rpc":"r1","room":"'$R'-a","error":"archive database unavailable","route":"node.gw9"}' ]
	PG_FSYNC=off "$TOP/scripts/postgres" start "$PG_DIR" >/dev/null
	for i in $(seq 1 50); do
		echo '{"type":"recover","rpc":"r'$i'","node":"gw9","room":"'$R'-a","since":0}' >&"$AIN"
		arch_line a
		[ "$(jq -r .type <<<"$a")" = recovered ] && break
		sleep 0.1
	done
	[ "$(jq -r .seq <<<"$a")" = 3 ]
	arch_close
	wait "$pid"
	grep -q 'reconnected to PostgreSQL' "$BATS_TEST_TMPDIR/err"
}

@test "store: PostgreSQL away longer than --retry-budget: exit 75, nothing acked" {
	local pid
	arch_start "$BIN/chat-archive" store --retry-budget 1s --backoff-max 200ms
	local m
	ingest "$R-1" "$R-a" '"x"' 1 >&"$AIN"
	arch_line m
	[ "$(jq -r .seq <<<"$m")" = 1 ]
	"$TOP/scripts/postgres" stop "$PG_DIR"
	ingest "$R-2" "$R-a" '"y"' 2 >&"$AIN"
	local status=0
	wait "$pid" || status=$?
	PG_FSYNC=off "$TOP/scripts/postgres" start "$PG_DIR" >/dev/null
	[ "$status" -eq 75 ]
	grep -q 'retry budget is spent' "$BATS_TEST_TMPDIR/err"
	[ "$(sql "SELECT count(*) FROM messages WHERE room = '$R-a'")" = 1 ]
}

# --- two writers ---------------------------------------------------------------------

@test "two stores on the same rooms at once: seqs stay exact, no gap, no duplicate" {
	local i k
	for i in $(seq 1 3000); do ingest "$R-a$i" "$R-$((i % 4))" "{\"w\":1,\"i\":$i}"; done >"$BATS_TEST_TMPDIR/a"
	for i in $(seq 1 3000); do ingest "$R-b$i" "$R-$((i % 4))" "{\"w\":2,\"i\":$i}"; done >"$BATS_TEST_TMPDIR/b"
	mkfifo "$BATS_TEST_TMPDIR/fa" "$BATS_TEST_TMPDIR/fb"
	"$BIN/chat-archive" store --batch 20 <"$BATS_TEST_TMPDIR/fa" >"$BATS_TEST_TMPDIR/oa" &
	local pa=$!
	"$BIN/chat-archive" store --batch 20 <"$BATS_TEST_TMPDIR/fb" >"$BATS_TEST_TMPDIR/ob" &
	local pb=$!
	exec {FA}>"$BATS_TEST_TMPDIR/fa" {FB}>"$BATS_TEST_TMPDIR/fb"
	# in lock step, ten chunks of 300 lines: both stores work on a chunk at
	# once, and neither gets the next before both have written this one
	# (so their writes surely overlap, however the machine is loaded)
	for k in $(seq 1 10); do
		sed -n "$(((k - 1) * 300 + 1)),$((k * 300))p" "$BATS_TEST_TMPDIR/a" >&"$FA"
		sed -n "$(((k - 1) * 300 + 1)),$((k * 300))p" "$BATS_TEST_TMPDIR/b" >&"$FB"
		wait_for 60 bash -c "[ \$(wc -l <'$BATS_TEST_TMPDIR/oa') -ge $((k * 300)) ] &&
			[ \$(wc -l <'$BATS_TEST_TMPDIR/ob') -ge $((k * 300)) ]"
	done
	exec {FA}>&- {FB}>&-
	wait "$pa"
	wait "$pb"
	[ "$(sql "SELECT count(*) FROM messages WHERE room LIKE '$R-%'")" = 6000 ]
	[ "$(sql "SELECT count(*) FROM (SELECT room, count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM messages WHERE room LIKE '$R-%' GROUP BY room) x JOIN rooms r USING (room) WHERE n <> hi OR lo <> 1 OR r.last_seq <> hi")" = 0 ]
	# both writers really overlapped in every room: their seqs interleave
	# (at least once per chunk)
	[ "$(cat "$BATS_TEST_TMPDIR/oa" "$BATS_TEST_TMPDIR/ob" | jq -r 'select(.room == "'$R'-1") | "\(.seq) \(.body.w)"' | sort -n | awk '{print $2}' | uniq | wc -l)" -ge 10 ]
	# each wrote what was committed
	cat "$BATS_TEST_TMPDIR/oa" "$BATS_TEST_TMPDIR/ob" | jq -r '"\(.id) \(.seq)"' | sort >"$BATS_TEST_TMPDIR/pairs"
	sql "SELECT id || ' ' || seq FROM messages WHERE room LIKE '$R-%' ORDER BY id" | sort >"$BATS_TEST_TMPDIR/db"
	cmp "$BATS_TEST_TMPDIR/pairs" "$BATS_TEST_TMPDIR/db"
}

@test "two stores fed the same lines at once: each id stored once, both publish the same seq" {
	local i
	for i in $(seq 1 2000); do ingest "$R-$i" "$R-$((i % 3))"; done >"$BATS_TEST_TMPDIR/in"
	"$BIN/chat-archive" store --batch 50 <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/o1" &
	local p1=$!
	"$BIN/chat-archive" store --batch 30 <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/o2" &
	local p2=$!
	wait "$p1"
	wait "$p2"
	[ "$(sql "SELECT count(*) FROM messages WHERE room LIKE '$R-%'")" = 2000 ]
	[ "$(sql "SELECT count(*) FROM (SELECT room, count(*) AS n, max(seq) AS hi FROM messages WHERE room LIKE '$R-%' GROUP BY room) x WHERE n <> hi")" = 0 ]
	diff <(jq -r '"\(.id) \(.seq)"' "$BATS_TEST_TMPDIR/o1" | sort) \
		<(jq -r '"\(.id) \(.seq)"' "$BATS_TEST_TMPDIR/o2" | sort)
}

# --- the man page ----------------------------------------------------------------------

@test "the EXAMPLES of chat-archive(1) run as written (the chat-archive side of the relay ones)" {
	local T=$BATS_TEST_TMPDIR f
	sql "DROP DATABASE IF EXISTS t${BATS_TEST_NUMBER}ex" >/dev/null
	sql "CREATE DATABASE t${BATS_TEST_NUMBER}ex" >/dev/null
	export CHAT_DB_URL=${CHAT_DB_URL%/*}/t${BATS_TEST_NUMBER}ex
	# Each .EX block of the section, as shell text, in $T/ex.N.
	sed -n '/^\.SH EXAMPLES/,/^\.SH SEE ALSO/p' "$TOP/man/chat-archive.1" |
		awk -v dir="$T" '/^\.EX/ { n++; ex = 1; next } /^\.EE/ { ex = 0; next }
			ex { print > (dir "/ex." n) }'
	for f in "$T"/ex.*; do
		sed -i 's/\\-/-/g; s/\\e/\\/g' "$f"
	done
	[ -e "$T/ex.6" ]
	{
		ingest ex-1 lobby '"hello"' '' "$(($(date +%s) * 1000))"
		ingest ex-2 lobby '{"text":"again"}' '' "$(($(date +%s) * 1000))"
	} >"$T/ingest.jsonl"
	for f in 1 2 3 4; do
		run --separate-stderr bash -c "cd '$T' && PATH='$BIN:$PATH' timeout 30 bash -e ex.$f"
		[ "$status" -eq 0 ] || { echo "ex.$f: $status $stderr"; false; }
		case $f in
		2) [ "$(jq -r .seq "$T/messages.jsonl" | tr '\n' ' ')" = "1 2 " ] ;;
		3) [ "$output" = $'"hello"\n{"text":"again"}' ] ;;
		4) [ "$(jq -s -c '.[0].messages, .[1].deleted' <<<"$output" | tr '\n' ' ')" = "2 0 " ] ;;
		esac
	done
	# 5, 6: the archive side of the relay compositions, on empty input.
	echo "$CHAT_DB_URL" >"$T/db"
	for f in 5 6; do
		tr -d '\n' <"$T/ex.$f" | sed -e 's/\\ *//g' \
			-e 's/^chat-relay .* -- chat-archive/chat-archive/' \
			-e 's|/etc/chat/db|'"$T/db"'|' >"$T/ex.$f.one"
		grep -q '^ *chat-archive ' "$T/ex.$f.one" || { cat "$T/ex.$f.one"; false; }
		run --separate-stderr bash -c "PATH='$BIN:$PATH' timeout 30 bash '$T/ex.$f.one' </dev/null"
		[ "$status" -eq 0 ] || { echo "ex.$f: $status $stderr"; false; }
	done
}

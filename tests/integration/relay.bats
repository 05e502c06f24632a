#!/usr/bin/env bats
# chat-relay against a real, private RabbitMQ (scripts/rabbitmq) on loopback:
# pub/sub round trip, child mode with confirms and manual acks, a broker
# restart in the middle of a stream, bad input lines, the command line; the
# bus v2 contract (the envelope cut out, expire, ingest shards with a single
# active consumer and mandatory publishes, the node), the metrics file.
# Every wait is for a condition, bounded; each test has its own queues, and
# the tests of the ingest shards their own virtual host.

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	export ROOT=$TOP BIN
	rabbitmq_up
}

teardown_file() {
	rabbitmq_down
}

setup() {
	T=$BATS_TEST_TMPDIR
	Q=relay.t$BATS_TEST_NUMBER
	PIDS=
}

teardown() {
	local p
	for p in $PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait_exit "$p" 10 || kill -KILL "$p" 2>/dev/null
	done
	# The restart test may leave the broker down if it failed midway.
	if ! "$ROOT/scripts/rabbitmq" status "$RMQ_DIR"; then
		"$ROOT/scripts/rabbitmq" stop "$RMQ_DIR"
		"$ROOT/scripts/rabbitmq" start "$RMQ_DIR" >/dev/null
	fi
}

# wait_for SECONDS CMD...: run CMD every 0.05 s until it succeeds.
wait_for() {
	local limit=$(($1 * 20)) i
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	echo "# timed out waiting for: $*" >&3
	return 1
}

# wait_exit PID SECONDS: wait for a child of this shell to exit; its status
# is in $EXIT.
wait_exit() {
	local pid=$1 limit=$(($2 * 20)) i
	for ((i = 0; i < limit; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			EXIT=0
			wait "$pid" || EXIT=$?
			PIDS=${PIDS// $pid/}
			return 0
		fi
		sleep 0.05
	done
	echo "# pid $pid still running after $2 s" >&3
	return 1
}

has_lines() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }

# ctl ARGS...: rabbitmqctl against the test broker.
ctl() { "$ROOT/scripts/rabbitmq" ctl "$RMQ_DIR" "$@"; }

# fresh_vhost: a virtual host of this test's own (so chat.ingest.K are
# new), guest allowed in; its URL in $VURL.
fresh_vhost() {
	VHOST=t$BATS_TEST_NUMBER.$$
	ctl add_vhost "$VHOST" >/dev/null &&
		ctl set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null ||
		return 1
	VURL=${CHAT_AMQP_URL%/}/$VHOST
}

# queue_messages VHOST QUEUE: messages ready + unacked in QUEUE.
queue_messages() {
	ctl -q list_queues -p "$1" name messages | awk -v q="$2" '$1 == q { print $2 }'
}

# shard_empty: queue chat.ingest.0 of $VHOST holds no message.
shard_empty() { [ "$(queue_messages "$VHOST" chat.ingest.0)" = 0 ]; }

# distinct_ge FILE N: FILE holds at least N distinct values of "n".
distinct_ge() {
	[ -f "$1" ] && [ "$(jq -r .n "$1" 2>/dev/null | sort -un | wc -l)" -ge "$2" ]
}

# bg NAME ARGS...: chat-relay ARGS in the background, stdout and stderr in
# $T/NAME.out and $T/NAME.err, stdin from $T/NAME.in when that exists (else
# /dev/null); waits for its --ready-fd. Its pid is in $PID.
bg() {
	local name=$1 in=/dev/null
	shift
	[ -e "$T/$name.in" ] && in=$T/$name.in
	"$BIN/chat-relay" --ready-fd 5 "$@" <"$in" >"$T/$name.out" \
		2>"$T/$name.err" 5>"$T/$name.ready" 3>&- &
	PID=$!
	PIDS="$PIDS $PID"
	wait_for 15 test -s "$T/$name.ready" || {
		cat "$T/$name.err" >&3
		return 1
	}
}

# lines N [ROUTE]: N JSON lines {"route":ROUTE,"n":i} on stdout.
lines() {
	awk -v n="$1" -v r="${2:-t}" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "{\"route\":\"%s\",\"n\":%d,\"text\":\"line %d\"}\n", r, i, i
	}'
}

# stripped: the lines of lines() as a consumer gets them, without "route"
# (the relay cuts its envelope members out, every other byte as written).
stripped() {
	sed 's/^{"route":"[^"]*",/{/'
}

@test "--help: usage and options on stdout, exit 0" {
	run --separate-stderr "$BIN/chat-relay" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"usage: chat-relay [options] pub"* ]]
	[[ "$output" == *"--max-inflight N"* ]]
	[ -z "$stderr" ]
}

@test "--version: name and version on stdout, exit 0" {
	run --separate-stderr "$BIN/chat-relay" --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^chat-relay\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "usage errors: usage on stderr, nothing on stdout, exit 64" {
	for args in "--no-such-option pub" "" "put" "sub" "pub --route" \
		"--prefetch 0 sub --queue q" "--manual-ack -- cat" "pub -- cat" \
		"sub --bind nocolon" "--url http://x pub"; do
		# shellcheck disable=SC2086
		run --separate-stderr "$BIN/chat-relay" $args
		[ "$status" -eq 64 ] || { echo "args: $args -> $status"; false; }
		[ -z "$output" ]
		[[ "$stderr" == *"usage: chat-relay"* || "$stderr" == *"not an AMQP URL"* ]]
	done
}

@test "broker unreachable at start: exit 69, password masked" {
	run --separate-stderr "$BIN/chat-relay" \
		--url amqp://alice:s3cret@127.0.0.1:1/ pub </dev/null
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"unable to start on the broker"* ]]
	[[ "$stderr" == *"amqp://alice:***@127.0.0.1:1/"* ]]
	[[ "$stderr" != *s3cret* ]]
}

@test "pub/sub round trip of 10,000 lines: nothing lost, order kept" {
	bg sub sub --queue "$Q" --bind "chat:$Q.#"
	lines 10000 "$Q.x" >"$T/in"
	run --separate-stderr timeout 60 "$BIN/chat-relay" pub <"$T/in"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	wait_for 60 has_lines "$T/sub.out" 10000
	kill -TERM "$PID"
	wait_exit "$PID" 10
	[ "$EXIT" -eq 0 ]
	# The very lines (less their route), in the same order, not one more.
	stripped <"$T/in" | cmp - "$T/sub.out"
}

@test "pub: confirm ids come back on stdout in order, after the broker's confirm" {
	printf '%s\n' '{"route":"x","confirm":"a"}' '{"route":"x"}' \
		'{"route":"x","confirm":2}' '{"route":"x","confirm":{"k":[1]}}' >"$T/in"
	run --separate-stderr timeout 30 "$BIN/chat-relay" pub <"$T/in"
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"confirm","confirm":"a"}
{"type":"confirm","confirm":2}
{"type":"confirm","confirm":{"k":[1]}}' ]
}

@test "malformed and oversize lines: error on stderr, not published, stream goes on" {
	{
		lines 1 "$Q.x"
		echo 'this is not json'
		echo '[1,2,3]'
		echo '{"route":"'"$Q"'.x","n":2,"pad":"'"$(head -c 600 /dev/zero | tr '\0' x)"'"}'
		echo '{"n":3,"no":"route"}'
		echo '{"route":"'"$Q"'.x","n":4}'
	} >"$T/in"
	bg sub sub --queue "$Q" --bind "chat:$Q.#"
	run --separate-stderr timeout 30 "$BIN/chat-relay" --max-line 300 pub <"$T/in"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"not valid JSON"*"line=2"* ]]
	[[ "$stderr" == *"not a JSON object"*"line=3"* ]]
	[[ "$stderr" == *"line longer than --max-line"*"line=4"* ]]
	[[ "$stderr" == *"no \\\"route\\\""*"line=5"* ]]
	wait_for 20 has_lines "$T/sub.out" 2
	kill -TERM "$PID"
	wait_exit "$PID" 10
	[ "$(jq -r .n "$T/sub.out" | tr '\n' ' ')" = "1 4 " ]
}

@test "child mode: child's lines published, confirms on its stdin, its exit status" {
	cat >"$T/child" <<-'EOF'
	#!/bin/bash
	for i in 1 2 3; do
		echo "{\"route\":\"$Q.c\",\"n\":$i,\"confirm\":\"c$i\"}"
	done
	# Deliveries (our own lines, from the bound queue) and confirms.
	n=0
	while [ $n -lt 6 ] && read -r line; do
		echo "$line" >>"$T/child.got"
		n=$((n + 1))
	done
	exit 7
	EOF
	chmod +x "$T/child"
	export Q T
	run --separate-stderr timeout 30 "$BIN/chat-relay" --queue "$Q" \
		--bind "chat:$Q.#" -- "$T/child"
	[ "$status" -eq 7 ]
	[ -z "$output" ]
	[ "$(grep -c '"type":"confirm"' "$T/child.got")" -eq 3 ]
	# Confirms answer in the order of the child's lines.
	[ "$(grep '"type":"confirm"' "$T/child.got" | jq -r .confirm | tr '\n' ' ')" = "c1 c2 c3 " ]
	[ "$(grep -v '"type":"confirm"' "$T/child.got" | jq -r .n | tr '\n' ' ')" = "1 2 3 " ]
}

@test "child mode: a child that cannot run exits 127" {
	run -127 --separate-stderr timeout 30 "$BIN/chat-relay" -- /nonexistent/prog
	[ "$status" -eq 127 ]
	[[ "$stderr" == *"unable to run child"* ]]
}

@test "manual acks: only acked deliveries leave, the rest are redelivered after the child dies" {
	lines 4 "$Q.m" >"$T/in"
	run timeout 30 "$BIN/chat-relay" pub --queue "$Q" --bind "chat:$Q.#" <"$T/in"
	[ "$status" -eq 0 ]
	cat >"$T/child" <<-'EOF'
	#!/bin/bash
	# Ack the odd ones, then die without a word after the fourth.
	n=0
	while read -r line; do
		echo "$line" >>"$T/child.got"
		tag=$(jq -r .tag <<<"$line")
		num=$(jq -r .n <<<"$line")
		[ $((num % 2)) -eq 1 ] && echo "{\"type\":\"ack\",\"tag\":$tag}"
		n=$((n + 1))
		[ $n -ge 4 ] && kill -KILL $$
	done
	EOF
	chmod +x "$T/child"
	export T
	run --separate-stderr timeout 30 "$BIN/chat-relay" --manual-ack \
		--queue "$Q" -- "$T/child"
	[ "$status" -eq 137 ]
	# Each delivery carried a tag.
	[ "$(jq -r .tag "$T/child.got" | tr '\n' ' ')" = "1 2 3 4 " ]
	# The unacked ones are back in the queue; the acked ones are gone.
	bg sub sub --queue "$Q"
	wait_for 20 has_lines "$T/sub.out" 2
	kill -TERM "$PID"
	wait_exit "$PID" 10
	[ "$(jq -r .n "$T/sub.out" | tr '\n' ' ')" = "2 4 " ]
}

@test "manual acks: nack with requeue false drops, stale and unknown tags are refused" {
	lines 2 "$Q.m" >"$T/in"
	run timeout 30 "$BIN/chat-relay" pub --queue "$Q" --bind "chat:$Q.#" <"$T/in"
	[ "$status" -eq 0 ]
	cat >"$T/child" <<-'EOF'
	#!/bin/bash
	read -r a; read -r b
	echo "{\"type\":\"nack\",\"tag\":$(jq .tag <<<"$a"),\"requeue\":false}"
	echo "{\"type\":\"ack\",\"tag\":$(jq .tag <<<"$b")}"
	echo '{"type":"ack","tag":99}'
	exit 0
	EOF
	chmod +x "$T/child"
	run --separate-stderr timeout 30 "$BIN/chat-relay" --manual-ack \
		--queue "$Q" -- "$T/child"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *"unknown tag"*"tag=99"* ]]
	# Both settled: nothing left for the next consumer.
	bg sub sub --queue "$Q"
	run timeout 30 "$BIN/chat-relay" pub --route "$Q.m" <<<'{"n":"marker"}'
	wait_for 20 has_lines "$T/sub.out" 1
	[ "$(jq -r .n "$T/sub.out")" = marker ]
}

@test "SIGTERM: passed to the child, its last line confirmed, its status returned" {
	cat >"$T/child" <<-'EOF'
	#!/bin/bash
	trap 'echo "{\"route\":\"$Q.z\",\"n\":\"last\",\"confirm\":\"bye\"}"
	      read -r l; echo "$l" >>"$T/child.got"; exit 0' TERM
	echo "{\"route\":\"$Q.z\",\"n\":\"first\",\"confirm\":\"hi\"}"
	read -r l; echo "$l" >>"$T/child.got"
	while :; do sleep 0.05; done
	EOF
	chmod +x "$T/child"
	export Q T
	bg sub sub --queue "$Q" --bind "chat:$Q.#"
	bg child -- "$T/child"
	wait_for 15 grep -q '"hi"' "$T/child.got"
	kill -TERM "$PID"
	wait_exit "$PID" 15
	[ "$EXIT" -eq 0 ]
	grep -q '{"type":"confirm","confirm":"bye"}' "$T/child.got"
	wait_for 15 has_lines "$T/sub.out" 2
	[ "$(jq -r .n "$T/sub.out" | tr '\n' ' ')" = "first last " ]
}

@test "fan-out: two exclusive queues bound to chat both get every message" {
	bg a sub --exclusive --bind "chat:$Q.#"
	bg b sub --exclusive --bind "chat:$Q.#"
	lines 100 "$Q.room" >"$T/in"
	run timeout 30 "$BIN/chat-relay" pub <"$T/in"
	[ "$status" -eq 0 ]
	wait_for 20 has_lines "$T/a.out" 100
	wait_for 20 has_lines "$T/b.out" 100
	stripped <"$T/in" | cmp - "$T/a.out"
	stripped <"$T/in" | cmp - "$T/b.out"
}

@test "sub: an oversize delivery is refused on stderr, the next one goes through" {
	bg sub --max-line 200 sub --queue "$Q" --bind "chat:$Q.#"
	{
		echo '{"route":"'"$Q"'.x","pad":"'"$(head -c 400 /dev/zero | tr '\0' x)"'"}'
		echo '{"route":"'"$Q"'.x","n":"small"}'
	} >"$T/in"
	run timeout 30 "$BIN/chat-relay" pub <"$T/in"
	[ "$status" -eq 0 ]
	wait_for 20 has_lines "$T/sub.out" 1
	wait_for 10 grep -q "body over --max-line" "$T/sub.err"
	[ "$(jq -r .n "$T/sub.out")" = small ]
}

@test "broker restart mid-stream: reconnect, every confirmed line arrives; budget spent: exit 75" {
	n=3000
	# The queue exists before the first line, so nothing is unroutable.
	run timeout 30 "$BIN/chat-relay" pub --queue "$Q" --bind "chat:$Q.#" </dev/null
	[ "$status" -eq 0 ]
	# A slow producer on a pipe: the restart falls in the middle of its
	# stream (its second half waits until the broker is stopped), and it
	# blocks while the relay does not read (backpressure).
	mkfifo "$T/gen"
	(
		for ((i = 1; i <= n; i++)); do
			echo "{\"route\":\"$Q.r\",\"n\":$i,\"confirm\":$i}"
			((i % 10 == 0)) && sleep 0.02
			((i == n / 2)) && wait_for 90 test -e "$T/stopped"
		done
	) >"$T/gen" 3>&- &
	GEN=$!
	"$BIN/chat-relay" -v 2 --backoff-max 500ms --retry-budget 60s pub \
		<"$T/gen" >"$T/pub.out" 2>"$T/pub.err" 3>&- &
	PUB=$!
	PIDS="$PIDS $PUB $GEN"
	# A second relay with a tiny budget, idle on a fifo we hold open.
	mkfifo "$T/idle"
	exec 7<>"$T/idle"
	"$BIN/chat-relay" --retry-budget 1s --backoff-max 200ms pub \
		<"$T/idle" >/dev/null 2>"$T/short.err" 3>&- &
	SHORT=$!
	PIDS="$PIDS $SHORT"

	wait_for 30 has_lines "$T/pub.out" 300
	"$ROOT/scripts/rabbitmq" stop "$RMQ_DIR"
	touch "$T/stopped"
	# While the broker is away the short-budget relay gives up with 75.
	wait_exit "$SHORT" 20
	exec 7>&-
	[ "$EXIT" -eq 75 ]
	grep -q "retry budget is spent" "$T/short.err"
	confirmed_at_stop=$(wc -l <"$T/pub.out")
	"$ROOT/scripts/rabbitmq" start "$RMQ_DIR" >/dev/null

	wait_exit "$PUB" 120
	[ "$EXIT" -eq 0 ]
	grep -q "lost the broker" "$T/pub.err"
	grep -q "reconnected to the broker" "$T/pub.err"
	# Every line confirmed, each once, in order.
	[ "$(wc -l <"$T/pub.out")" -eq "$n" ]
	[ "$(jq -r .confirm "$T/pub.out" | sort -n | uniq | wc -l)" -eq "$n" ]
	[ "$confirmed_at_stop" -lt "$n" ]

	# Every confirmed line is in the durable queue (duplicates allowed:
	# at-least-once), in order of first appearance.
	bg sub sub --queue "$Q"
	wait_for 60 distinct_ge "$T/sub.out" "$n"
	[ "$(jq -r .n "$T/sub.out" | sort -un | wc -l)" -eq "$n" ]
	[ "$(jq -r .n "$T/sub.out" | awk '!seen[$1]++' | awk '$1 != NR' | wc -l)" -eq 0 ]
}

@test "the EXAMPLES of chat-relay(1) that need no other program run as written" {
	# Each .EX block of the EXAMPLES section, as shell text, in $T/ex.N.
	sed -n '/^\.SH EXAMPLES/,/^\.SH SEE ALSO/p' "$ROOT/man/chat-relay.1" |
		awk -v dir="$T" '/^\.EX/ { n++; ex = 1; next } /^\.EE/ { ex = 0; next }
			ex { print > (dir "/ex." n) }'
	for f in "$T"/ex.*; do
		sed -i 's/\\-/-/g; s/\\e/\\/g' "$f"
	done
	[ -e "$T/ex.6" ] && [ ! -e "$T/ex.7" ]
	grep -q '^chat-relay pub < lines.jsonl$' "$T/ex.1"
	# 1: publish a file of lines.
	lines 20 "$Q.e" >"$T/lines.jsonl"
	run --separate-stderr bash -c "cd '$T' && PATH='$BIN:$PATH' timeout 30 bash ex.1"
	[ "$status" -eq 0 ]
	# 5: a shell child publishes a line and reads its confirm.
	run --separate-stderr bash -c "PATH='$BIN:$PATH' timeout 30 bash '$T/ex.5'"
	[ "$status" -eq 0 ]
	[[ "$stderr" == *'{"type":"confirm","confirm":1}'* ]]
	# 3, 4: the gateway and the sequencer, with true for the child and
	# the metrics file in $T.
	for i in 3 4; do
		sed -i 's/-- chat-[a-z]*.*/-- true/; s|/run/chat/|'"$T"'/|' "$T/ex.$i"
		grep -q -- '-- true$' "$T/ex.$i"
		run --separate-stderr bash -c "PATH='$BIN:$PATH' timeout 30 bash '$T/ex.$i'"
		[ "$status" -eq 0 ] || { echo "ex.$i: $status $stderr"; false; }
	done
	grep -q '^chat_relay_broker_up{node="[^"]*"} ' "$T/relay-gw.prom"
	# 6: URLs from a file (here the test broker, no TLS: the CA is unused).
	echo "$CHAT_AMQP_URL" >"$T/amqp.urls"
	cp "$ROOT/man/chat-relay.1" "$T/rabbit-ca.pem"
	sed -i 's|/etc/chat/|'"$T"'/|g' "$T/ex.6"
	run --separate-stderr bash -c "cd '$T' && PATH='$BIN:$PATH' CHAT_AMQP_URL= timeout 30 bash ex.6"
	[ "$status" -eq 0 ] || { echo "ex.6: $status $stderr"; false; }
	# 2 follows forever: it must start (and be stopped).
	grep -q '^chat-relay sub ' "$T/ex.2"
}

@test "a declaration the broker refuses at start: exit 69 with the broker's reason" {
	# chat.ingest.0 exists as a classic queue: it cannot become a quorum one.
	run timeout 30 "$BIN/chat-relay" pub </dev/null
	[ "$status" -eq 0 ]
	run --separate-stderr timeout 30 "$BIN/chat-relay" --quorum sub --queue "$Q"
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"unable to declare queue 'chat.ingest.0'"*"PRECONDITION_FAILED"* ]]
}

@test "SIGUSR1: one stats line with the counters, and the relay goes on" {
	bg sub -v 1 sub --queue "$Q" --bind "chat:$Q.#"
	lines 3 "$Q.s" | timeout 30 "$BIN/chat-relay" pub
	wait_for 20 has_lines "$T/sub.out" 3
	kill -USR1 "$PID"
	wait_for 10 grep -q 'msg="stats".*deliveries=3 ' "$T/sub.err"
	kill -0 "$PID"
	kill -TERM "$PID"
	wait_exit "$PID" 10
	[ "$EXIT" -eq 0 ]
}

@test "a window of one and a prefetch of one: every line, in order" {
	bg sub --prefetch 1 sub --queue "$Q" --bind "chat:$Q.#"
	lines 500 "$Q.w" >"$T/in"
	run --separate-stderr timeout 60 "$BIN/chat-relay" -v 2 --max-inflight 1 pub <"$T/in"
	[ "$status" -eq 0 ]
	# The window was full at every line but the last.
	[[ "$stderr" == *"window_full="[1-9]* ]]
	wait_for 30 has_lines "$T/sub.out" 500
	stripped <"$T/in" | cmp - "$T/sub.out"
}

@test "envelope: route, confirm and expire never reach a consumer; every other byte does" {
	bg sub sub --queue "$Q" --bind "chat:$Q.#"
	cat >"$T/in" <<-EOF
	{"route":"$Q.x","type":"t","confirm":"c1","body":{"route":"inner","expire":1},"expire":60000,"n": 1.50 ,"s":"é \u00e9 \"q\""}
	{ "x" : [1, 2],  "y":{} }
	{"confirm":{"k":[1]},"route":"$Q.x"}
	EOF
	run --separate-stderr timeout 30 "$BIN/chat-relay" --route "$Q.x" pub <"$T/in"
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"confirm","confirm":"c1"}
{"type":"confirm","confirm":{"k":[1]}}' ]
	wait_for 20 has_lines "$T/sub.out" 3
	# Members cut out with their comma; the rest byte for byte (a line
	# without envelope members as it was, spaces and all).
	cat >"$T/want" <<-'EOF'
	{"type":"t","body":{"route":"inner","expire":1},"n": 1.50,"s":"é \u00e9 \"q\""}
	{ "x" : [1, 2],  "y":{} }
	{}
	EOF
	diff "$T/want" "$T/sub.out"
}

@test "expire: the broker drops a line not consumed in time; a bad expire is refused" {
	printf '%s\n' '{"route":"'"$Q"'.e","n":1,"expire":1}' \
		'{"route":"'"$Q"'.e","n":2,"expire":600000}' \
		'{"route":"'"$Q"'.e","n":3}' >"$T/in"
	# The queue exists, nobody consumes: the first line's millisecond is
	# long gone once pub has exited and sub has connected.
	run timeout 30 "$BIN/chat-relay" pub --queue "$Q" --bind "chat:$Q.#" <"$T/in"
	[ "$status" -eq 0 ]
	bg sub sub --queue "$Q"
	wait_for 20 has_lines "$T/sub.out" 2
	[ "$(jq -r .n "$T/sub.out" | tr '\n' ' ')" = "2 3 " ]
	! grep -q expire "$T/sub.out"
	for bad in 0 -1 86400001 '"5"' 1.5; do
		run --separate-stderr timeout 30 "$BIN/chat-relay" pub \
			<<<'{"route":"'"$Q"'.e","expire":'"$bad"'}'
		[ "$status" -eq 65 ] || { echo "expire $bad: $status"; false; }
		[[ "$stderr" == *'"expire\" is not an integer of milliseconds'* ]]
	done
}

@test "ingest shards: chat.ingest.0..N-1, single active consumer; a line past them is a nack, exit 69" {
	fresh_vhost
	printf '%s\n' '{"route":"ingest.0","confirm":"a","n":1}' \
		'{"route":"ingest.7","confirm":"b","n":2}' \
		'{"route":"ingest.2","confirm":"c","n":3}' >"$T/in"
	run --separate-stderr timeout 30 "$BIN/chat-relay" --url "$VURL" \
		--ingest-shards 3 pub <"$T/in"
	[ "$status" -eq 69 ]
	# Each answer in the order of the lines; the unroutable one a nack.
	[ "$output" = '{"type":"confirm","confirm":"a"}
{"type":"nack","confirm":"b"}
{"type":"confirm","confirm":"c"}' ]
	[[ "$stderr" == *"broker returned a line"*"NO_ROUTE route=ingest.7"* ]]
	run ctl -q list_queues -p "$VHOST" name durable arguments
	[ "$status" -eq 0 ]
	[ "$(grep -c '^chat\.ingest\.[0-2][[:space:]]true[[:space:]].*x-single-active-consumer",true' <<<"$output")" -eq 3 ]
	[[ "$output" != *"chat.ingest	"* && "$output" != *"chat.ingest.3"* ]]
	# With CHAT_INGEST_SHARDS=8 every relay declares shard 7 too.
	run --separate-stderr env CHAT_INGEST_SHARDS=8 timeout 30 \
		"$BIN/chat-relay" --url "$VURL" pub <<<'{"route":"ingest.7","confirm":"d"}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"confirm","confirm":"d"}' ]
	[ "$(queue_messages "$VHOST" chat.ingest.0)" -eq 1 ]
	[ "$(queue_messages "$VHOST" chat.ingest.2)" -eq 1 ]
	[ "$(queue_messages "$VHOST" chat.ingest.7)" -eq 1 ]
}

@test "ingest shards under --quorum: quorum queues with a single active consumer" {
	fresh_vhost
	run --separate-stderr timeout 60 "$BIN/chat-relay" --url "$VURL" --quorum \
		--ingest-shards 2 pub <<<'{"route":"ingest.1","confirm":1}'
	[ "$status" -eq 0 ]
	run ctl -q list_queues -p "$VHOST" name type arguments
	[ "$(grep -c '^chat\.ingest\.[01][[:space:]]quorum[[:space:]].*x-single-active-consumer",true' <<<"$output")" -eq 2 ]
}

@test "single active consumer: one relay gets the shard, a standby takes over its unacked lines when it is killed" {
	fresh_vhost
	export CHAT_AMQP_URL=$VURL
	# Both hold their stdin (ack lines) open and ack nothing yet.
	mkfifo "$T/a.in" "$T/b.in"
	exec 7<>"$T/a.in" 8<>"$T/b.in"
	bg a --manual-ack sub --queue chat.ingest.0
	A=$PID
	bg b --manual-ack sub --queue chat.ingest.0
	B=$PID
	lines 5 ingest.0 | timeout 30 "$BIN/chat-relay" pub
	wait_for 20 has_lines "$T/a.out" 5
	[ "$(jq -r .n "$T/a.out" | tr '\n' ' ')" = "1 2 3 4 5 " ]
	# The standby got nothing while the active one lives.
	[ ! -s "$T/b.out" ]
	kill -KILL "$A"
	wait_exit "$A" 10
	wait_for 30 has_lines "$T/b.out" 5
	[ "$(jq -r .n "$T/b.out" | tr '\n' ' ')" = "1 2 3 4 5 " ]
	# It acks them: the shard is empty.
	jq -c '{type: "ack", tag: .tag}' "$T/b.out" >&8
	wait_for 20 shard_empty
	exec 7>&- 8>&-
	kill -TERM "$B"
	wait_exit "$B" 10
	[ "$EXIT" -eq 0 ]
}

@test "--single-active: any queue with one active consumer, the other relay a standby" {
	fresh_vhost
	export CHAT_AMQP_URL=$VURL
	bg a sub --single-active --queue "sa-$Q" --bind "chat:sa.$Q"
	bg b sub --single-active --queue "sa-$Q" --bind "chat:sa.$Q"
	run ctl -q list_queues -p "$VHOST" name arguments
	[[ "$output" == *"sa-$Q"*'x-single-active-consumer",true'* ]]
	lines 5 "sa.$Q" | timeout 30 "$BIN/chat-relay" pub
	wait_for 20 bash -c "[ \$(cat '$T/a.out' '$T/b.out' | wc -l) -ge 5 ]"
	# all five to one of them, in order
	if [ -s "$T/a.out" ]; then act=a sb=b; else act=b sb=a; fi
	[ "$(jq -r .n "$T/$act.out" | tr '\n' ' ')" = "1 2 3 4 5 " ]
	[ ! -s "$T/$sb.out" ]
}

@test "--node: the child gets CHAT_NODE (host-pid by default), and with --exclusive node.ID reaches it" {
	cat >"$T/child" <<-'EOF'
	#!/bin/sh
	echo "$CHAT_NODE $PPID $CHAT_INGEST_SHARDS" >"$T/env"
	echo "{\"route\":\"node.$CHAT_NODE\",\"n\":\"to-me\"}"
	read -r line
	echo "$line" >"$T/got"
	EOF
	chmod +x "$T/child"
	export T
	run --separate-stderr timeout 30 "$BIN/chat-relay" --exclusive -- "$T/child"
	[ "$status" -eq 0 ]
	read -r node ppid shards <"$T/env"
	[ "$node" = "$(hostname -s)-$ppid" ]
	[ "$shards" = 1 ]
	[ "$(cat "$T/got")" = '{"n":"to-me"}' ]
	# An explicit node, and a line from another relay routed to it.
	cat >"$T/child2" <<-'EOF'
	#!/bin/sh
	echo "$CHAT_NODE" >"$T/env2"
	read -r line
	echo "$line" >"$T/got2"
	EOF
	chmod +x "$T/child2"
	bg gw --exclusive --node "gw-$Q" --ingest-shards 4 -- "$T/child2"
	wait_for 10 test -s "$T/env2"
	[ "$(cat "$T/env2")" = "gw-$Q" ]
	run timeout 30 "$BIN/chat-relay" pub <<<'{"route":"node.gw-'"$Q"'","n":"answer"}'
	[ "$status" -eq 0 ]
	wait_for 10 test -s "$T/got2"
	[ "$(cat "$T/got2")" = '{"n":"answer"}' ]
	wait_exit "$PID" 10
	[ "$EXIT" -eq 0 ]
}

# prom_check FILE: FILE parses as the Prometheus text format (Debian's
# python3-prometheus-client), every sample is a chat_relay_* metric with
# a TYPE and the node label; prints "name value" lines.
prom_check() {
	/usr/bin/python3 - "$1" <<-'EOF'
	import sys
	from prometheus_client.parser import text_string_to_metric_families
	text = open(sys.argv[1]).read()
	types = {l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")}
	n = 0
	for fam in text_string_to_metric_families(text):
	    assert fam.name in types or fam.name + "_total" in types, fam.name
	    assert fam.type in ("counter", "gauge"), fam.type
	    for s in fam.samples:
	        assert s.name.startswith("chat_relay_"), s.name
	        assert set(s.labels) == {"node"}, s.labels
	        print(s.name, int(s.value))
	        n += 1
	assert n >= 20, n
	EOF
}

@test "--metrics-file: Prometheus text, rewritten every interval, counts what went through" {
	bg sub --metrics-file "$T/sub.prom" --stats-interval 100ms \
		sub --queue "$Q" --bind "chat:$Q.#"
	lines 25 "$Q.m" >"$T/in"
	echo 'not json' >>"$T/in"
	run --separate-stderr timeout 30 "$BIN/chat-relay" --node "pub-$Q" \
		--metrics-file "$T/pub.prom" pub <"$T/in"
	[ "$status" -eq 65 ]
	# Written at exit (the interval is 10s by default).
	run prom_check "$T/pub.prom"
	[ "$status" -eq 0 ]
	[[ "$output" == *"chat_relay_lines_in_total 26"* ]]
	[[ "$output" == *"chat_relay_published_total 25"* ]]
	[[ "$output" == *"chat_relay_confirmed_total 25"* ]]
	[[ "$output" == *"chat_relay_bad_lines_total 1"* ]]
	[[ "$output" == *"chat_relay_nacked_total 0"* ]]
	grep -q '^chat_relay_published_total{node="pub-'"$Q"'"} 25$' "$T/pub.prom"
	grep -q '^# TYPE chat_relay_inflight gauge$' "$T/pub.prom"
	# The running sub's file catches up within an interval or so.
	wait_for 10 grep -q '^chat_relay_deliveries_total{node="[^"]*"} 25$' "$T/sub.prom"
	run prom_check "$T/sub.prom"
	[ "$status" -eq 0 ]
	[[ "$output" == *"chat_relay_lines_out_total 25"* ]]
	[[ "$output" == *"chat_relay_broker_up 1"* ]]
	# Atomic: once the writers are done, no temporary file beside it.
	kill -TERM "$PID"
	wait_exit "$PID" 10
	[ "$EXIT" -eq 0 ]
	grep -q '^chat_relay_broker_up{node="[^"]*"} 0$' "$T/sub.prom"
	[ -z "$(find "$T" -name '*.prom.tmp.*')" ]
}

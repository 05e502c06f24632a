#!/usr/bin/env bats
# chat-relay with several brokers and with TLS: two private RabbitMQ nodes
# (scripts/rabbitmq; not clustered: what is tested is the relay's
# connection), the second with a TLS listener whose certificate the test
# makes with openssl. The relay connects to the first URL that answers,
# fails over to the next when its broker goes, republishing what was not
# confirmed; amqps is verified against --ca (peer and host name); the
# password stays out of argv with --url-file.

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	export ROOT=$TOP BIN
	local tls=$BATS_FILE_TMPDIR/tls
	mkdir -p "$tls" "$tls/other"
	# A CA, a broker certificate for localhost signed by it, and another
	# CA that signed nothing of ours.
	(
		cd "$tls" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=chat-test-ca &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -keyout key.pem -out broker.csr -subj /CN=localhost &&
		printf 'subjectAltName=DNS:localhost\n' >broker.ext &&
		openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key \
			-CAcreateserial -out cert.pem -days 2 -extfile broker.ext &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -keyout other/ca.key -out other/ca.pem -days 2 \
			-subj /CN=chat-other-ca
	) >/dev/null 2>&1 || return 1
	export TLS=$tls
	# Both nodes start at once: each takes a few seconds.
	export RMQ_A=$BATS_FILE_TMPDIR/rmq-a RMQ_B=$BATS_FILE_TMPDIR/rmq-b
	"$TOP/scripts/rabbitmq" start "$RMQ_A" >"$BATS_FILE_TMPDIR/a.url" &
	local a=$!
	RABBITMQ_TLS_DIR=$tls "$TOP/scripts/rabbitmq" start "$RMQ_B" \
		>"$BATS_FILE_TMPDIR/b.url" &
	local b=$!
	wait "$a" && wait "$b" || return 1
	export URL_A URL_B URL_TLS
	URL_A=$(cat "$BATS_FILE_TMPDIR/a.url")
	URL_B=$(cat "$BATS_FILE_TMPDIR/b.url")
	URL_TLS=$("$TOP/scripts/rabbitmq" tls-url "$RMQ_B")
	unset CHAT_AMQP_URL
}

teardown_file() {
	"$TOP/scripts/rabbitmq" stop "$RMQ_A"
	"$TOP/scripts/rabbitmq" stop "$RMQ_B"
}

setup() {
	T=$BATS_TEST_TMPDIR
	Q=brokers.t$BATS_TEST_NUMBER
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
	# The failover test stops A; the next test wants it back.
	if ! "$ROOT/scripts/rabbitmq" status "$RMQ_A"; then
		"$ROOT/scripts/rabbitmq" stop "$RMQ_A"
		"$ROOT/scripts/rabbitmq" start "$RMQ_A" >/dev/null
	fi
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

# bg NAME ARGS...: chat-relay ARGS in the background (see relay.bats).
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

# drain DIR URL QUEUE: the "n" of every message in QUEUE of the node in DIR
# (as many as rabbitmqctl counts), one per line.
drain() {
	local count pid
	count=$("$ROOT/scripts/rabbitmq" ctl "$1" -q list_queues name messages |
		awk -v q="$3" '$1 == q { print $2 }')
	[ -n "$count" ] || return 1
	"$BIN/chat-relay" --url "$2" sub --queue "$3" >"$T/drain.out" \
		2>"$T/drain.err" </dev/null 3>&- &
	pid=$!
	wait_for 30 has_lines "$T/drain.out" "$count" || true
	kill -TERM "$pid"
	wait "$pid" || true
	jq -r .n "$T/drain.out"
}

@test "the first broker does not answer: the relay takes the next one of CHAT_AMQP_URL and says which" {
	bg sub --url "$URL_B" sub --queue "$Q" --bind "chat:$Q.#"
	run --separate-stderr env CHAT_AMQP_URL="amqp://guest:guest@127.0.0.1:1/,$URL_B" \
		timeout 30 "$BIN/chat-relay" -v 2 pub <<<'{"route":"'"$Q"'.x","n":1,"confirm":1}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"confirm","confirm":1}' ]
	[[ "$stderr" == *'msg="unable to connect" url="amqp://guest:***@127.0.0.1:1/"'* ]]
	[[ "$stderr" == *'msg="connected" url="'"${URL_B/:guest@/:***@}"'" broker=1 '* ]]
	wait_for 10 has_lines "$T/sub.out" 1
	[ "$(cat "$T/sub.out")" = '{"n":1}' ]
	# None answers: exit 69, each URL tried once.
	run --separate-stderr timeout 30 "$BIN/chat-relay" -v 2 \
		--url amqp://127.0.0.1:1/,amqp://127.0.0.1:2/ pub </dev/null
	[ "$status" -eq 69 ]
	[ "$(grep -c 'msg="unable to connect"' <<<"$stderr")" -eq 2 ]
}

@test "its broker goes away mid-stream: the relay fails over to the next URL and republishes what was not confirmed" {
	local n=2000 i
	# The queue on both brokers before the first line.
	for u in "$URL_A" "$URL_B"; do
		run timeout 30 "$BIN/chat-relay" --url "$u" pub --queue "$Q" \
			--bind "chat:$Q.#" </dev/null
		[ "$status" -eq 0 ]
	done
	# (the second half of the stream waits until broker A is stopped, so
	# the stop falls in the middle of it)
	mkfifo "$T/gen"
	(
		for ((i = 1; i <= n; i++)); do
			echo "{\"route\":\"$Q.r\",\"n\":$i,\"confirm\":$i}"
			((i % 10 == 0)) && sleep 0.01
			((i == n / 2)) && wait_for 90 test -e "$T/stopped"
		done
	) >"$T/gen" 3>&- &
	PIDS="$PIDS $!"
	"$BIN/chat-relay" -v 2 --backoff-max 300ms --url "$URL_A" --url "$URL_B" \
		pub <"$T/gen" >"$T/pub.out" 2>"$T/pub.err" 3>&- &
	PUB=$!
	PIDS="$PIDS $PUB"
	wait_for 30 has_lines "$T/pub.out" 200
	"$ROOT/scripts/rabbitmq" stop "$RMQ_A"
	touch "$T/stopped"
	wait_exit "$PUB" 60
	[ "$EXIT" -eq 0 ]
	grep -q 'msg="connected" url="amqp://guest:\*\*\*@127.0.0.1:[0-9]*/" broker=0 ' "$T/pub.err"
	grep -q 'msg="lost the broker"' "$T/pub.err"
	grep -qF 'msg="reconnected to the broker" url="'"${URL_B/:guest@/:***@}"'" broker=1 ' "$T/pub.err"
	# Every line confirmed once, in order.
	[ "$(jq -r .confirm "$T/pub.out" | tr '\n' ' ')" = "$(seq -s ' ' 1 $n) " ]
	# Every line is on one broker or the other (at-least-once: some on
	# both). A comes back with its data.
	"$ROOT/scripts/rabbitmq" start "$RMQ_A" >/dev/null
	drain "$RMQ_A" "$URL_A" "$Q" >"$T/a.n"
	drain "$RMQ_B" "$URL_B" "$Q" >"$T/b.n"
	[ -s "$T/a.n" ] && [ -s "$T/b.n" ]
	[ "$(sort -un "$T/a.n" "$T/b.n" | wc -l)" -eq "$n" ]
}

@test "amqps: the broker verified against --ca, peer and host name" {
	bg sub --url "$URL_B" sub --queue "$Q" --bind "chat:$Q.#"
	run --separate-stderr timeout 30 "$BIN/chat-relay" -v 2 --url "$URL_TLS" \
		--ca "$TLS/ca.pem" pub <<<'{"route":"'"$Q"'.x","n":"tls","confirm":1}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"confirm","confirm":1}' ]
	[[ "$stderr" == *'msg="connected" url="amqps://guest:***@localhost:'* ]]
	wait_for 10 has_lines "$T/sub.out" 1
	[ "$(cat "$T/sub.out")" = '{"n":"tls"}' ]
	# Deliveries over TLS too.
	bg tsub --url "$URL_TLS" --ca "$TLS/ca.pem" sub --exclusive --bind "chat:$Q.y"
	run timeout 30 "$BIN/chat-relay" --url "$URL_B" pub <<<'{"route":"'"$Q"'.y","n":2}'
	[ "$status" -eq 0 ]
	wait_for 10 has_lines "$T/tsub.out" 1
	[ "$(cat "$T/tsub.out")" = '{"n":2}' ]
}

@test "amqps: another host name, another CA or no --ca is refused (exit 69); --insecure skips the checks" {
	local by_ip=${URL_TLS/localhost/127.0.0.1}
	run --separate-stderr timeout 30 "$BIN/chat-relay" --url "$by_ip" \
		--ca "$TLS/ca.pem" pub </dev/null
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"hostname verification failed"* ]]
	run --separate-stderr timeout 30 "$BIN/chat-relay" --url "$URL_TLS" \
		--ca "$TLS/other/ca.pem" pub </dev/null
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"peer cert verification failed"* ]]
	# Without --ca, the system's CAs: they never signed the test CA.
	run --separate-stderr timeout 30 "$BIN/chat-relay" --url "$URL_TLS" pub </dev/null
	[ "$status" -eq 69 ]
	[[ "$stderr" == *"verification failed"* ]]
	# TLS to the plain port is no AMQP at all.
	run --separate-stderr timeout 30 "$BIN/chat-relay" --connect-timeout 2s \
		--url "${URL_B/amqp:/amqps:}" --insecure pub </dev/null
	[ "$status" -eq 69 ]
	run --separate-stderr timeout 30 "$BIN/chat-relay" --url "$by_ip" --insecure \
		pub <<<'{"route":"x","confirm":1}'
	[ "$status" -eq 0 ]
	[ "$output" = '{"type":"confirm","confirm":1}' ]
}

@test "--url-file: the password stays out of argv and the logs; one on the command line is blanked and warned about" {
	# One per line, a comment, a dead one first.
	printf '# brokers of the test\namqp://guest:guest@127.0.0.1:1/\n%s\n' \
		"$URL_B" >"$T/urls"
	chmod 600 "$T/urls"
	bg sub --url-file "$T/urls" -v 2 sub --queue "$Q" --bind "chat:$Q.#"
	! grep -q ':guest@' /proc/"$PID"/cmdline
	! grep -q 'password given on the command line' "$T/sub.err"
	! grep -q ':guest@' "$T/sub.err"
	# The password on the command line works, is warned about, and ps
	# shows it blanked once the relay runs.
	bg pub2 --url "$URL_B" sub --exclusive --bind "chat:$Q.none"
	tr '\0' ' ' </proc/"$PID"/cmdline >"$T/cmdline"
	grep -q -- '--url amqp://guest:xxxxx@127.0.0.1:' "$T/cmdline"
	! grep -q ':guest@' "$T/cmdline"
	grep -q 'msg="broker password given on the command line" why="ps shows' "$T/pub2.err"
	run timeout 30 "$BIN/chat-relay" --url-file "$T/urls" pub \
		<<<'{"route":"'"$Q"'.x","n":"from-file"}'
	[ "$status" -eq 0 ]
	wait_for 10 has_lines "$T/sub.out" 1
	[ "$(cat "$T/sub.out")" = '{"n":"from-file"}' ]
}

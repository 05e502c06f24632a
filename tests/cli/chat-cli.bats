#!/usr/bin/env bats
# chat-cli: flags, exit codes and which stream gets what; tokens checked with
# openssl; then connect, send and bench against a chat-gw --standalone on a
# free loopback port (started per test, waited for by its readiness line).

bats_require_minimum_version 1.5.0
load ../helper

teardown() {
	stop_gw
}

# usage_error ARGS...: chat-cli ARGS must fail with 64, usage on stderr only.
usage_error() {
	run --separate-stderr "$BIN/chat-cli" "$@"
	[ "$status" -eq 64 ]
	[ -z "$output" ]
	[[ "$stderr" == *"usage: chat-cli"* ]]
}

# b64url_json PART: decode one base64url JWT part.
b64url_json() {
	local s
	s=$(printf '%s' "$1" | tr '_-' '/+')
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	printf '%s' "$s" | base64 -d
}

# A closed port: bind one, note it, close it.
closed_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---- without a server ------------------------------------------------------

@test "--help: usage of every command on stdout, exit 0" {
	run --separate-stderr "$BIN/chat-cli" --help
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	for c in connect send token bench; do
		[[ "$output" == *"chat-cli $c "* ]]
	done
}

@test "COMMAND --help: that command's usage and options on stdout, exit 0" {
	for c in connect send token bench; do
		run --separate-stderr "$BIN/chat-cli" "$c" --help
		[ "$status" -eq 0 ]
		[ -z "$stderr" ]
		[[ "${lines[0]}" == "usage: chat-cli $c "* ]]
	done
	run "$BIN/chat-cli" bench --help
	[[ "$output" == *"--hold"* ]]
	run "$BIN/chat-cli" connect --help
	[[ "$output" == *"--window N"* ]]
}

@test "--version prints chat-cli and the Makefile's VERSION" {
	version=$(sed -n 's/^VERSION *:= *//p' "$BATS_TEST_DIRNAME/../../Makefile")
	run --separate-stderr "$BIN/chat-cli" --version
	[ "$status" -eq 0 ]
	[ "$output" = "chat-cli $version" ]
}

@test "no command, unknown command: usage on stderr, exit 64" {
	usage_error
	usage_error frobnicate
	[[ "$stderr" == *"unknown command 'frobnicate'"* ]]
}

@test "connect: usage errors exit 64 with nothing on stdout" {
	usage_error connect
	usage_error connect ws://127.0.0.1:1/ws
	usage_error connect ws://127.0.0.1:1/ws --user a --token t
	usage_error connect http://127.0.0.1:1/ws --user a
	usage_error connect ws://127.0.0.1:99999/ws --user a
	usage_error connect ws://127.0.0.1:1/ws --user a --window 0
	usage_error connect ws://127.0.0.1:1/ws --user a --since x
	usage_error connect ws://127.0.0.1:1/ws --user a --timeout soon
	usage_error connect ws://127.0.0.1:1/ws --user a --json
	usage_error connect ws://127.0.0.1:1/ws --user a --no-such-option
	usage_error connect ws://127.0.0.1:1/ws --user a extra
	usage_error connect ws://127.0.0.1:1/ws --user
	[[ "$stderr" == *"needs a value"* ]]
}

@test "send: usage errors exit 64 with nothing on stdout" {
	usage_error send ws://127.0.0.1:1/ws --user a --room r
	usage_error send ws://127.0.0.1:1/ws --user a hello
	usage_error send ws://127.0.0.1:1/ws --user a --room r --room s hello
	usage_error send ws://127.0.0.1:1/ws --room r hello
	usage_error send ws://127.0.0.1:1/ws --user a --room r --json '{nope'
	[[ "$stderr" == *"not JSON"* ]]
	usage_error send ws://127.0.0.1:1/ws --user a --room r --window 3 hello
}

@test "token: usage errors exit 64; unreadable secret exits 66" {
	echo s3cret >"$BATS_TEST_TMPDIR/secret"
	usage_error token --sub alice
	usage_error token --secret-file "$BATS_TEST_TMPDIR/secret"
	usage_error token --secret-file "$BATS_TEST_TMPDIR/secret" --sub alice --ttl forever
	usage_error token --secret-file "$BATS_TEST_TMPDIR/secret" --sub alice --rooms '{"a":1}'
	usage_error token --secret-file "$BATS_TEST_TMPDIR/secret" --sub alice --rooms '[1]'
	usage_error token --secret-file "$BATS_TEST_TMPDIR/secret" --sub alice extra
	run --separate-stderr "$BIN/chat-cli" token --secret-file "$BATS_TEST_TMPDIR/none" --sub alice
	[ "$status" -eq 66 ]
	[ -z "$output" ]
	[[ "$stderr" == *"unable to read secret file"* ]]
}

@test "bench: usage errors exit 64" {
	usage_error bench
	usage_error bench ws://127.0.0.1:1/ws --conns 0
	usage_error bench ws://127.0.0.1:1/ws --conns 2 --publishers 3
	usage_error bench ws://127.0.0.1:1/ws --rate -5
	usage_error bench ws://127.0.0.1:1/ws,http://x/ --conns 2
	usage_error bench ws://127.0.0.1:1/ws --duration 0
	usage_error bench ws://127.0.0.1:1/ws --size 1T
	usage_error bench ws://127.0.0.1:1/ws --churn -1
	usage_error bench ws://127.0.0.1:1/ws --churn x
	usage_error bench ws://127.0.0.1:1/ws --backoff-max 0
	usage_error bench ws://127.0.0.1:1/ws --room-prefix 'a"b'
	usage_error bench ws://127.0.0.1:1/ws --room-prefix ''
}

@test "token: HS256, sub, exp = now + ttl, rooms; signature checks with openssl" {
	printf 'the secret\n' >"$BATS_TEST_TMPDIR/secret"
	now=$(date +%s)
	run --separate-stderr "$BIN/chat-cli" token --secret-file "$BATS_TEST_TMPDIR/secret" \
		--sub alice --ttl 15m --rooms '["team-*","lobby"]'
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 1 ]
	IFS=. read -r h p sig <<<"$output"
	[ "$(b64url_json "$h" | jq -r .alg)" = HS256 ]
	payload=$(b64url_json "$p")
	[ "$(echo "$payload" | jq -r .sub)" = alice ]
	[ "$(echo "$payload" | jq -c .rooms)" = '["team-*","lobby"]' ]
	exp=$(echo "$payload" | jq .exp)
	[ "$exp" -ge $((now + 900)) ]
	[ "$exp" -le $((now + 905)) ]
	# The trailing newline of the secret file is not part of the secret.
	want=$(printf '%s' "$h.$p" | openssl dgst -sha256 -hmac 'the secret' -binary |
		base64 | tr '+/' '-_' | tr -d '=\n')
	[ "$sig" = "$want" ]
}

@test "token --ttl 0: no exp claim, no rooms claim by default" {
	printf 'k' >"$BATS_TEST_TMPDIR/secret"
	run "$BIN/chat-cli" token --secret-file "$BATS_TEST_TMPDIR/secret" --sub bob --ttl 0
	[ "$status" -eq 0 ]
	IFS=. read -r h p sig <<<"$output"
	[ "$(b64url_json "$p")" = '{"sub":"bob"}' ]
}

@test "connect and send to a closed port: exit 69, the reason on stderr" {
	port=$(closed_port)
	run --separate-stderr "$BIN/chat-cli" connect "ws://127.0.0.1:$port/ws" --user a --room r </dev/null
	[ "$status" -eq 69 ]
	[ -z "$output" ]
	[[ "$stderr" == *'msg="unable to connect"'* ]]
	[[ "$stderr" == *"ws://127.0.0.1:$port/ws"* ]]
	[[ "$stderr" == *"Connection refused"* ]]
	run --separate-stderr "$BIN/chat-cli" send "ws://127.0.0.1:$port/ws" --user a --room r hi
	[ "$status" -eq 69 ]
	[ -z "$output" ]
	[[ "$stderr" == *"Connection refused"* ]]
}

@test "bench with no reachable gateway: exit 69" {
	port=$(closed_port)
	run --separate-stderr "$BIN/chat-cli" bench "ws://127.0.0.1:$port/ws" --conns 3 --duration 1s
	[ "$status" -eq 69 ]
	[ -z "$output" ]
	[[ "$stderr" == *"unable to connect"* ]]
}

# ---- against chat-gw --standalone -----------------------------------------

@test "send: the ack on stdout, exit 0, nothing on stderr" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-cli" send "$GW_URL" --user alice --room lobby "hello"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 1 ]
	[ "$(echo "$output" | jq -r .type)" = ack ]
	[ "$(echo "$output" | jq -r .ref)" = 1 ]
	[ -n "$(echo "$output" | jq -r .id)" ]
}

@test "send --json: the body is that JSON; the history shows it" {
	start_gw --standalone --auth none
	run "$BIN/chat-cli" send "$GW_URL" --user alice --room j --json '{"a":[1,2]}'
	[ "$status" -eq 0 ]
	id=$(echo "$output" | jq -r .id)
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --user bob \
		<<<'{"type":"history","room":"j"}'
	[ "$status" -eq 0 ]
	h=$(echo "$output" | frames_of history)
	[ "$(echo "$h" | jq -c '.messages[0].body')" = '{"a":[1,2]}' ]
	[ "$(echo "$h" | jq -r '.messages[0].id')" = "$id" ]
	[ "$(echo "$h" | jq -r '.messages[0].from')" = alice ]
}

@test "send refused by the gateway: the error frame on stdout, exit 65" {
	start_gw --standalone --auth none --max-body 16
	run --separate-stderr "$BIN/chat-cli" send "$GW_URL" --user alice --room r \
		"this message is longer than sixteen bytes"
	[ "$status" -eq 65 ]
	[ "$(echo "$output" | jq -r .type)" = error ]
	[ "$(echo "$output" | jq -r .code)" = too_large ]
	[ "$(echo "$output" | jq -r .ref)" = 1 ]
	[[ "$stderr" == *"too_large"* ]]
}

@test "connect: each line becomes a publish; JSON lines keep their type" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --user alice --room r < <(
		printf '%s\n' 'hello world' 42 '[1,"x"]' '{"text":"obj"}' '"quoted"' 'null'
		printf 'last line without newline')
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$(echo "$output" | head -n 1 | jq -c '[.type,.room,.seq,.ref]')" = '["joined","r",0,"join:r"]' ]
	run bash -c "jq -c 'select(.type==\"message\") | [.seq, .from, .body]' <<<'$output'"
	[ "${lines[0]}" = '[1,"alice","hello world"]' ]
	[ "${lines[1]}" = '[2,"alice",42]' ]
	[ "${lines[2]}" = '[3,"alice",[1,"x"]]' ]
	[ "${lines[3]}" = '[4,"alice",{"text":"obj"}]' ]
	[ "${lines[4]}" = '[5,"alice","quoted"]' ]
	[ "${lines[5]}" = '[6,"alice",null]' ]
	[ "${lines[6]}" = '[7,"alice","last line without newline"]' ]
	[ "${#lines[@]}" -eq 7 ]
}

@test "connect: one ack per publish, refs 1..N; every frame one compact line" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --user alice --room r < <(seq 1 20)
	[ "$status" -eq 0 ]
	refs=$(echo "$output" | frames_of ack | jq -r .ref | tr '\n' ' ')
	[ "$refs" = "$(seq 1 20 | tr '\n' ' ')" ]
	# Every line is one JSON object.
	[ "$(echo "$output" | jq -c . | wc -l)" -eq "${#lines[@]}" ]
}

@test "connect --text: JSON-looking lines stay strings" {
	start_gw --standalone --auth none
	run "$BIN/chat-cli" connect "$GW_URL" --user alice --room r --text < <(printf '42\n[1]\n')
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of message | jq -c .body | tr '\n' ' ')" = '"42" "[1]" ' ]
}

@test "connect: raw requests are sent as they are and answered before the close" {
	start_gw --standalone --auth none
	"$BIN/chat-cli" send "$GW_URL" --user alice --room r one >/dev/null
	"$BIN/chat-cli" send "$GW_URL" --user alice --room r two >/dev/null
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --user bob --room r < <(
		echo '{"type":"history","room":"r","limit":1,"ref":"h1"}'
		echo '{"type":"presence","room":"r"}'
		echo '{"type":"history","room":"r"}')
	[ "$status" -eq 0 ]
	hist=$(echo "$output" | frames_of history)
	[ "$(echo "$hist" | wc -l)" -eq 2 ]
	[ "$(echo "$hist" | head -n 1 | jq -c '[.ref, [.messages[].body], .more]')" = '["h1",["two"],true]' ]
	[ "$(echo "$hist" | tail -n 1 | jq -c '[.messages[].body]')" = '["one","two"]' ]
	[ "$(echo "$output" | frames_of presence | jq -c 'select(.users) | .users')" = '["bob"]' ]
	[ -z "$(echo "$output" | frames_of message)" ]
}

@test "connect: an error frame answers a raw request; exit still 0, warning on stderr" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --user bob < <(
		echo '{"type":"no-such-request"}'
		echo '{"type":"leave","room":"never-joined","ref":"l"}')
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of error | wc -l)" -eq 2 ]
	[ "$(echo "$output" | frames_of error | tail -n 1 | jq -r .ref)" = l ]
	[[ "$stderr" == *'msg="server refused a request"'* ]]
	[[ "$stderr" == *"refused=2"* ]]
}

@test "connect: a line with no --room to publish to is skipped with a warning" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --user bob <<<'hello'
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[[ "$stderr" == *"no --room to publish to"* ]]
}

@test "connect --window 1: 300 lines, each acked, in order" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --user alice --room w --window 1 < <(seq 1 300)
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of ack | wc -l)" -eq 300 ]
	[ "$(echo "$output" | frames_of message | jq -r '"\(.seq) \(.body)"' | awk '$1 != $2' | wc -l)" -eq 0 ]
	[ "$(echo "$output" | frames_of message | wc -l)" -eq 300 ]
}

@test "connect --since: the missed messages, recovered, before the close" {
	start_gw --standalone --auth none
	for m in m1 m2 m3 m4; do
		"$BIN/chat-cli" send "$GW_URL" --user alice --room s "$m" >/dev/null
	done
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --user bob --room s --since 2 </dev/null
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of joined | jq .seq)" -eq 4 ]
	[ "$(echo "$output" | frames_of message | jq -c '[.seq,.body,.recovered]' | tr '\n' ' ')" = \
		'[3,"m3",true] [4,"m4",true] ' ]
}

@test "connect --no-stdin: a listener gets what send publishes; SIGTERM ends it with 0" {
	start_gw --standalone --auth none
	out=$BATS_TEST_TMPDIR/listen.out
	"$BIN/chat-cli" connect "$GW_URL" --user bob --room l --no-stdin >"$out" 2>"$out.err" 3>&- &
	pid=$!
	wait_for 10 grep -q '"type":"joined"' "$out"
	"$BIN/chat-cli" send "$GW_URL" --user alice --room l "for bob" >/dev/null
	wait_for 10 grep -q '"body":"for bob"' "$out"
	kill -TERM "$pid"
	wait_exit "$pid" 10
	[ "$WAIT_STATUS" -eq 0 ]
	[ "$(frames_of message <"$out" | jq -r .from)" = alice ]
}

@test "connect: the gateway shutting down (1001) exits 75 with the code on stderr" {
	start_gw --standalone --auth none
	out=$BATS_TEST_TMPDIR/c.out
	"$BIN/chat-cli" connect "$GW_URL" --user bob --room r --no-stdin >"$out" 2>"$out.err" 3>&- &
	pid=$!
	wait_for 10 grep -q '"type":"joined"' "$out"
	stop_gw
	wait_exit "$pid" 10
	[ "$WAIT_STATUS" -eq 75 ]
	grep -q 'msg="connection closed by server" code=1001' "$out.err"
}

@test "connect: acks that never come time out with 75" {
	start_gw --standalone --auth none
	out=$BATS_TEST_TMPDIR/c.out
	mkfifo "$BATS_TEST_TMPDIR/in"
	"$BIN/chat-cli" connect "$GW_URL" --user bob --room r --timeout 500ms \
		<"$BATS_TEST_TMPDIR/in" >"$out" 2>"$out.err" 3>&- &
	pid=$!
	exec {w}>"$BATS_TEST_TMPDIR/in"
	wait_for 10 grep -q '"type":"joined"' "$out"
	kill -STOP "$GW_PID"
	echo "never acked" >&$w
	exec {w}>&-
	wait_exit "$pid" 20
	kill -CONT "$GW_PID"
	[ "$WAIT_STATUS" -eq 75 ]
	grep -q 'timed out waiting for answers' "$out.err"
}

@test "connect: stdout failing exits 74, reported once" {
	start_gw --standalone --auth none
	run --separate-stderr bash -c "'$BIN/chat-cli' connect '$GW_URL' --user a --room r </dev/null >&-"
	[ "$status" -eq 74 ]
	[[ "$stderr" == *'msg="unable to write to stdout"'* ]]
	# A reader that goes away: more output than a pipe holds.
	pad=$(printf '%0300d' 0)
	run bash -c "seq 1 300 | sed 's/\$/ $pad/' |
		'$BIN/chat-cli' connect '$GW_URL' --user a --room r 2>'$BATS_TEST_TMPDIR/err' |
		head -n 1 >/dev/null; echo \${PIPESTATUS[2]}"
	[ "$output" = 74 ]
	[ "$(grep -c 'unable to write to stdout' "$BATS_TEST_TMPDIR/err")" -eq 1 ]
}

@test "JWT: a token from chat-cli token is accepted; a wrong one exits 77" {
	head -c 32 /dev/urandom | base64 >"$BATS_TEST_TMPDIR/secret"
	start_gw --standalone --auth jwt --jwt-secret-file "$BATS_TEST_TMPDIR/secret"
	tok=$("$BIN/chat-cli" token --secret-file "$BATS_TEST_TMPDIR/secret" --sub alice --rooms '["team-*"]')
	run --separate-stderr "$BIN/chat-cli" send "$GW_URL" --token "$tok" --room team-a hi
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r .type)" = ack ]
	echo "$tok" >"$BATS_TEST_TMPDIR/tok"
	run "$BIN/chat-cli" send "$GW_URL" --token-file "$BATS_TEST_TMPDIR/tok" --room team-b hi
	[ "$status" -eq 0 ]
	# A room the token does not allow: forbidden.
	run --separate-stderr "$BIN/chat-cli" send "$GW_URL" --token "$tok" --room lobby hi
	[ "$status" -eq 77 ]
	[ "$(echo "$output" | jq -r .code)" = forbidden ]
	# Signed with another secret: refused at the handshake.
	echo other >"$BATS_TEST_TMPDIR/other"
	bad=$("$BIN/chat-cli" token --secret-file "$BATS_TEST_TMPDIR/other" --sub alice)
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --token "$bad" --room team-a </dev/null
	[ "$status" -eq 77 ]
	# (the token went in the first frame: the refusal is an error frame,
	# then close 1008)
	[ "$(echo "$output" | jq -r 'select(.type=="error") | .code')" = unauthorized ]
	[[ "$stderr" == *"server refused the credentials"* ]]
	# in the URL, for older gateways: refused at the handshake
	run --separate-stderr "$BIN/chat-cli" connect "$GW_URL" --token "$bad" --token-in-url --room team-a </dev/null
	[ "$status" -eq 77 ]
	[ -z "$output" ]
	[[ "$stderr" == *"server refused the credentials"* ]]
	run --separate-stderr "$BIN/chat-cli" send "$GW_URL" --user alice --room team-a hi
	[ "$status" -eq 77 ]
}

@test "bench: every delivery accounted for, as one JSON object" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-cli" bench "$GW_URL" --conns 30 --rooms 3 \
		--publishers 3 --rate 150 --duration 1s --warmup 200ms --json
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	r=$output
	[ "$(echo "$r" | jq .connections.opened)" -eq 30 ]
	[ "$(echo "$r" | jq .connections.failed)" -eq 0 ]
	[ "$(echo "$r" | jq .messages.planned)" -eq 180 ]
	[ "$(echo "$r" | jq .messages.published)" -eq 180 ]
	[ "$(echo "$r" | jq .messages.acked)" -eq 180 ]
	# Each room: 10 subscribers, 60 messages.
	[ "$(echo "$r" | jq .deliveries.expected)" -eq 1800 ]
	[ "$(echo "$r" | jq .deliveries.received)" -eq 1800 ]
	[ "$(echo "$r" | jq .deliveries.lost)" -eq 0 ]
	[ "$(echo "$r" | jq .deliveries.duplicates)" -eq 0 ]
	# Timed: what was sent in the measured second (give or take a tick).
	[ "$(echo "$r" | jq ".latency_us.count >= 1000 and .latency_us.count <= 1800")" = true ]
	[ "$(echo "$r" | jq '.latency_us.p50 <= .latency_us.p99 and .latency_us.p99 <= .latency_us.max')" = true ]
}

@test "bench: text report with the loss count and latency percentiles" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-cli" bench "$GW_URL" --conns 5 --rate 50 --duration 500ms --warmup 0
	[ "$status" -eq 0 ]
	[[ "$output" == *"0 lost, 0 duplicates"* ]]
	[[ "$output" == *"latency      p50 "* ]]
}

@test "bench: rate limited publishers are counted as refused, not lost" {
	start_gw --standalone --auth none --rate 10 --burst 10
	run --separate-stderr "$BIN/chat-cli" bench "$GW_URL" --conns 4 --rate 200 \
		--duration 500ms --warmup 0 --json
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq '.messages.refused > 0')" = true ]
	[ "$(echo "$output" | jq '.errors.rate_limited == .messages.refused')" = true ]
	[ "$(echo "$output" | jq '.messages.acked + .messages.refused == .messages.published')" = true ]
	[ "$(echo "$output" | jq .deliveries.lost)" -eq 0 ]
	[ "$(echo "$output" | jq '.deliveries.expected == .messages.acked * 4')" = true ]
}

@test "bench --churn: subscribers closed and reopened on purpose resume from the ring, nothing lost" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-cli" bench "$GW_URL" --conns 100 --rooms 4 \
		--publishers 4 --rate 200 --duration 2s --warmup 0 --churn 50 \
		--room-prefix churn- --json
	[ "$status" -eq 0 ]
	r=$output
	echo "$r" | jq -c '{connections, messages, deliveries, resume_us}' >&2
	# about 50/s for 2 s, subscribers only, each back and rejoined
	[ "$(echo "$r" | jq '.connections.churned >= 50')" = true ]
	[ "$(echo "$r" | jq '.connections.reconnects == .connections.churned')" = true ]
	[ "$(echo "$r" | jq '.connections.drops')" -eq 0 ]
	[ "$(echo "$r" | jq '.connections.dropped')" -eq 0 ]
	[ "$(echo "$r" | jq '.resume_us.count == .connections.churned')" = true ]
	# what they missed while away came back recovered from the ring
	[ "$(echo "$r" | jq '.deliveries.recovered > 0')" = true ]
	[ "$(echo "$r" | jq .messages.acked)" -eq 400 ]
	[ "$(echo "$r" | jq '.deliveries.expected == .deliveries.received')" = true ]
	[ "$(echo "$r" | jq .deliveries.lost)" -eq 0 ]
	[ "$(echo "$r" | jq .deliveries.duplicates)" -eq 0 ]
	[ "$(echo "$r" | jq .deliveries.holes)" -eq 0 ]
	[ "$(echo "$r" | jq .deliveries.acked_missing)" -eq 0 ]
	# the gateway saw them come and go
	[ "$(metric chat_gw_connections)" -eq 0 ]
}

@test "bench --reconnect: clients of a restarted gateway come back, trying the next URL first; lost history is reported" {
	# The gateway takes a free port itself, and the restart reuses it,
	# bound by the new process before the old one lets it go
	# (--reuseport): a port found free and given later, or left free
	# between two processes, can meanwhile become another process's
	# outgoing port, and the gateway then cannot listen on it.
	start_gw --standalone --auth none --reuseport
	port=${GW_ADDR##*:}
	out=$BATS_TEST_TMPDIR/rc.json
	# half the connections start on a closed URL: they fail over to the
	# gateway's, and every reconnect tries the closed one in turn
	"$BIN/chat-cli" bench "ws://127.0.0.1:$(closed_port)/ws,ws://127.0.0.1:$port/ws" \
		--conns 20 --rooms 2 --publishers 2 --rate 50 --duration 3s --warmup 0 \
		--reconnect --backoff-max 200ms --json >"$out" 2>"$out.err" 3>&- &
	pid=$!
	wait_for 20 bash -c "[ \"\$(curl -s '$GW_HTTP/metrics' | awk '\$1 == \"chat_gw_connections\" { print \$2 }')\" = 20 ]"
	# and the rooms have messages (the bench publishes only once all 20
	# joined): restarted before any, no seq could go back
	wait_for 20 bash -c "[ \"\$(curl -s '$GW_HTTP/metrics' | awk '\$1 == \"chat_gw_messages_total\" { print \$2 }')\" -ge 10 ]"
	first=$GW_PID
	start_gw --standalone --auth none --reuseport --listen "127.0.0.1:$port" || {
		GW_PID=$first
		false
	}
	second=$GW_PID
	GW_PID=$first
	stop_gw
	GW_PID=$second
	wait_exit "$pid" 30
	[ "$WAIT_STATUS" -eq 0 ]
	r=$(cat "$out")
	echo "$r" | jq -c '{connections, messages, deliveries, closes}' >&2
	[ "$(echo "$r" | jq .connections.opened)" -eq 20 ]
	[ "$(echo "$r" | jq .connections.drops)" -eq 20 ]
	[ "$(echo "$r" | jq .closes.\"1001\")" -eq 20 ]
	[ "$(echo "$r" | jq .connections.reconnects)" -eq 20 ]
	[ "$(echo "$r" | jq .connections.dropped)" -eq 0 ]
	[ "$(echo "$r" | jq '.connections.connect_errors >= 10')" = true ]
	# a standalone gateway's history goes with it: the rooms start again
	# from seq 0, which the bench reports instead of calling it duplicates
	[ "$(echo "$r" | jq '.connections.resets > 0')" = true ]
	[ "$(echo "$r" | jq .deliveries.duplicates)" -eq 0 ]
	grep -q "the room's seq went back" "$out.err"
}

@test "bench --hold: ready N once all joined, then SIGTERM closes them and exits 0" {
	start_gw --standalone --auth none
	out=$BATS_TEST_TMPDIR/hold.out
	"$BIN/chat-cli" bench "$GW_URL" --conns 300 --rooms 30 --hold >"$out" 2>"$out.err" 3>&- &
	pid=$!
	wait_for 30 grep -q '^ready' "$out"
	[ "$(cat "$out")" = "ready 300" ]
	[ "$(metric chat_gw_connections)" -eq 300 ]
	kill -TERM "$pid"
	wait_exit "$pid" 20
	[ "$WAIT_STATUS" -eq 0 ]
	[ "$(cat "$out")" = "ready 300" ]
}

# man_examples: the code blocks of EXAMPLES in chat-cli(1), as rendered,
# separated by NUL. A block is code when the paragraph before it ends
# with a colon.
man_examples() {
	LC_ALL=C.UTF-8 MANWIDTH=300 man -l -E UTF-8 "$TOP/man/chat-cli.1" 2>/dev/null |
		sed 's/\xe2\x80\x90/-/g; s/\xe2\x88\x92/-/g' |
		awk '/^[A-Z]/ { on = ($0 == "EXAMPLES"); next }
		     !on { next }
		     /^$/ { if (blk != "") { if (code) printf "%s%c", blk, 0; code = (last ~ /:$/); blk = "" } next }
		     { sub(/^       /, ""); blk = blk $0 "\n"; last = $0 }
		     END { if (blk != "" && code) printf "%s%c", blk, 0 }'
}

@test "the EXAMPLES of chat-cli(1) run against a gateway" {
	start_gw --standalone --auth none
	cd "$BATS_TEST_TMPDIR"
	printf 'first note\nsecond note\n' >notes.txt
	n=0
	while IFS= read -r -d '' ex; do
		# Skip what needs a terminal, a second gateway, a JWT gateway or
		# waits for a signal.
		case $ex in
		*--no-stdin*|*--hold*|*8081*|*--token*) continue ;;
		esac
		ex=${ex%$'\n'}
		ex=${ex//ws:\/\/127.0.0.1:8080\/ws/$GW_URL}
		ex=${ex//chat-cli /$BIN/chat-cli }
		ex=${ex//--duration 10s/--duration 1s}
		run bash -o pipefail -c "$ex" </dev/null
		if [ "$status" -ne 0 ]; then
			echo "example failed ($status): $ex" >&2
			echo "$output" >&2
			return 1
		fi
		n=$((n + 1))
	done < <(man_examples)
	[ "$n" -ge 6 ]
}

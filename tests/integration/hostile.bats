#!/usr/bin/env bats
# tests/run: alone (it measures a client's round trip)
# Hostile clients against chat-gw, each beside a well-behaved client that
# publishes every 50 ms and times each publish to its ack
# (tests/tools/hostile.py): whatever one client does, the others keep a
# round trip under 50 ms, and the gateway's memory stays bounded. Each
# attack is bounded in time. Under the sanitizer build (BIN under
# build-asan) the times and memory mean nothing and are not asserted;
# what the gateway answers still is.

bats_require_minimum_version 1.5.0
load ../helper
load hostile

ATTACK_LIMIT=120

# fast: the well-behaved client's round trip stayed under 50 ms (p99),
# every one of its publishes was answered, and no loop turn took 50 ms.
fast() { answered 10 50; }

@test "connections that never send, past the descriptor limit: accepting resumes once they go" {
	# (its limit is low on purpose; prlimit is util-linux's)
	GW_PREFIX="prlimit --nofile=600:600" start_gw --standalone --auth none
	attack fdflood 650
	[ "$(r .result.opened)" -ge 600 ]
	[ "$(r .result.healthz_after)" = true ]
	[ "$(r .result.client_after)" = true ]
	fast
}

@test "CONNECT, POST and garbage get a status, not a hang" {
	start_gw --standalone --auth none
	attack connect
	[ "$(r '[.result.connect, .result.post, .result.garbage] | map(tostring) | join(" ")')" = "405 405 405" ]
	fast
}

@test "slow request heads: 408 after --handshake-timeout; /healthz and new clients are never held up" {
	start_gw --standalone --auth none --handshake-timeout 3s
	attack slowheaders 200 6
	[ "$(r .result.conns)" -eq 200 ]
	[ "$(r '.result.slow_answered["408"]')" -eq 200 ]
	[ -n "$ASAN" ] || [ "$(r '.result.healthz_max_ms < 500')" = true ]
	[ -n "$ASAN" ] || [ "$(r '.result.handshake_max_ms < 500')" = true ]
	fast
}

@test "a request head over --max-header is answered 431, a token of 4 KB still gets in" {
	start_gw --standalone --auth none --max-header 2K
	run curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 3000 /dev/zero | tr '\0' a)" "$GW_HTTP/healthz"
	[ "$output" = 431 ]
	run curl -s "$GW_HTTP/healthz"
	[ "$output" = ok ]
	[ "$(metric 'chat_gw_refused_total{reason="header_too_large"}')" -eq 1 ]
}

@test "a client that never reads asks 1,100 histories of 200 messages of 16 KB: cut, memory bounded" {
	start_gw --standalone --auth none
	attack historyflood 1100
	grew_under 64
	fast
	# it was cut (bytes queued) or limited (requests), and counted
	[ $(( $(metric 'chat_gw_closes_total{reason="slow_consumer"}') + $(metric 'chat_gw_errors_total{code="rate_limited"}') )) -ge 1 ]
}

@test "40 clients that never read join a room of 200 messages of 16 KB with since 0: memory bounded" {
	start_gw --standalone --auth none
	attack sincejoin 40
	# each recovered message is one frame shared by all forty
	grew_under 48
	fast
}

@test "handshakes refused after the token check leak nothing" {
	printf 'hostile-secret' >"$T/secret"
	token=$("$BIN/chat-cli" token --secret-file "$T/secret" --sub leaky \
		--rooms "$(seq -f '"room-pattern-%g-*"' 1 20 | paste -sd, | sed 's/^/[/; s/$/]/')")
	good=$("$BIN/chat-cli" token --secret-file "$T/secret" --sub good)
	start_gw --standalone --jwt-secret-file "$T/secret"
	attack --token "$token" --good-token "$good" refusedleak 2000
	[ "$(r .result.handshakes)" -eq 2000 ]
	# 2,000 refused handshakes with a 20-pattern claim each: no growth
	# beyond the allocator's noise (the leak was ~2.6 KB each, 5 MB)
	[ -n "$ASAN" ] || [ "$(r '(.rss_kb.after - .rss_kb.before) < 2048')" = true ]
	fast
}

@test "a join flood at a full room table is refused cheaply, and joins are rate-limited" {
	# 999 rooms with members, and the well-behaved client's: full
	start_gw --standalone --auth none --max-rooms 1000
	"$BIN/chat-cli" bench "$GW_URL" --conns 999 --rooms 999 --publishers 0 --hold \
		>"$T/hold.out" 2>"$T/hold.err" &
	hold=$!
	wait_for 60 grep -q '^ready' "$T/hold.out"
	[ "$(metric chat_gw_rooms)" -eq 999 ]
	attack joinflood 5
	fast
	# the flood was refused: unavailable (table full) or rate_limited
	[ "$(metric 'chat_gw_errors_total{code="rate_limited"}')" -ge 1 ]
	# and cost little: under half a core over five seconds
	[ -n "$ASAN" ] || [ "$(r '.cpu_s < 2.5')" = true ]
	kill -TERM "$hold"
	wait_exit "$hold" 20 || true
}

@test "bus mode: one client's 70,000 queries do not block everyone's publishes" {
	rm -f "$T/gw.in" "$T/gw.out" "$T/ready"
	mkfifo "$T/gw.in" "$T/gw.out" "$T/ready"
	# (opened in the order the gateway opens them, or both would wait)
	python3 "$TOP/tests/tools/confirmer.py" >"$T/gw.in" <"$T/gw.out" &
	conf=$!
	"$BIN/chat-gw" --auth none --node hostile --listen 127.0.0.1:0 --ready-fd 3 \
		--bus-timeout 3s --request-rate 1000000 --request-burst 1000000 \
		<"$T/gw.in" >"$T/gw.out" 2>"$T/gw.err" 3>"$T/ready" &
	GW_PID=$!
	read -r -t 20 addr <"$T/ready"
	GW_URL="ws://$addr/ws"
	GW_HTTP="http://$addr"
	attack queryflood 70000
	fast
	# the flood was capped per connection, not for everyone
	grep -q '"code":"unavailable"' "$T/gw.err" || [ "$(metric 'chat_gw_errors_total{code="unavailable"}')" -ge 1 ]
	stop_gw
	wait_exit "$conf" 10 || true
}

@test "an empty first fragment, then the rest: the request is read whole" {
	start_gw --standalone --auth none
	attack emptyfrag
	[ "$(r .result.answer.type)" = joined ]
	[ "$(r .result.answer.ref)" = e ]
}

@test "a client that publishes but never answers pings is alive: any frame counts" {
	start_gw --standalone --auth none --ping-interval 1s --ping-timeout 3s
	attack nopong 6
	[ "$(r .result.alive)" = true ]
}

@test "the lesser ones: POST upgrade 405, version 12 426, close code 5000 1002, nothing after a close, a foreign origin 403" {
	start_gw --standalone --auth none --allow-origin https://chat.example
	attack lesser
	[ "$(r .result.post_upgrade)" = 405 ]
	[ "$(r .result.version_12)" = 426 ]
	[ "$(r .result.close_5000)" = 1002 ]
	[ "$(r .result.after_close_answered)" = false ]
	[ "$(r .result.foreign_origin)" = 403 ]
	fast
}

@test "--auth jwt without --allow-origin warns at start" {
	printf 'hostile-secret' >"$T/secret"
	start_gw --standalone --jwt-secret-file "$T/secret"
	grep -q 'no --allow-origin' "$GW_LOG"
}

@test "5,000 clients joining one room at once: no loop turn over 50 ms, the others' round trip under 200 ms" {
	start_gw --standalone --auth none
	attack spawn 25 -- "$BIN/chat-cli" bench "$GW_URL" --conns 5000 --rooms 1 \
		--publishers 0 --hold
	[ "$(r .result.ready)" = true ]
	[ "$(r .good.unanswered)" = 0 ]
	[ -n "$ASAN" ] || [ "$(r '.good.p99_ms < 200')" = true ]
	[ -n "$ASAN" ] || [ "$(r .result.turns.over_50ms)" = 0 ]
	# a room of 5,000 is past --presence-max-members: no change storm
	[ "$(metric chat_gw_presence_quiet_total)" -ge 1 ]
}

@test "5,000 idle clients pinged every second: the pings are spread, no loop turn over 50 ms" {
	start_gw --standalone --auth none --ping-interval 1s --ping-timeout 10s
	attack spawn 25 -- "$BIN/chat-cli" bench "$GW_URL" --conns 5000 --rooms 100 \
		--publishers 0 --hold --then-wait 5
	[ "$(r .result.ready)" = true ]
	[ "$(r .good.unanswered)" = 0 ]
	[ -n "$ASAN" ] || [ "$(r '.good.p99_ms < 200')" = true ]
	[ -n "$ASAN" ] || [ "$(r .result.turns.over_50ms)" = 0 ] || { grep 'long loop' "$GW_LOG" >&2; false; }
	# every one answered its pings while it held (its going at the end is
	# no answer, and counts as dropped)
	[ "$(r .result.turns.dropped)" = 0 ]
}

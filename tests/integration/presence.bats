#!/usr/bin/env bats
# chat-presence behind chat-relay, against a private RabbitMQ and a private
# Redis, the way a system runs it: presence lines published on route
# "presence" and queries on "rpc.presence" reach the durable queue
# chat.presence; changes come back to every gateway on evt.ROOM and
# answers to one gateway on node.NODE; with two chat-presence behind two
# relays on the same queue, a silent gateway's users leave exactly once.
# Lines are matched by their members, so the test holds whether the relay
# strips the envelope members (route, confirm, expire) or not.

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	export BIN
	rabbitmq_up
	redis_up
}

teardown_file() {
	redis_down
	rabbitmq_down
}

setup() {
	T=$BATS_TEST_TMPDIR
	PFX=it$BATS_TEST_NUMBER
	PIDS=
}

teardown() {
	local p
	for p in $PIDS; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $PIDS; do
		wait_exit "$p" 10 || true
	done
}

# relay_start NAME ARGS...: a chat-relay, ready (--ready-fd) before this
# returns; output in $T/NAME.out, log in $T/NAME.err.
relay_start() {
	local name=$1 ready
	shift
	mkfifo "$T/$name.ready"
	"$BIN/chat-relay" --ready-fd 4 "$@" 4>"$T/$name.ready" \
		>"$T/$name.out" 2>"$T/$name.err" </dev/null 3>&- &
	PIDS="$PIDS $!"
	read -r -t 30 ready <"$T/$name.ready" || {
		cat "$T/$name.err" >&2
		return 1
	}
}

# sweeps FILE: sweeps done, from a metrics file.
sweeps() {
	"$TOP/tests/tools/prom" "$1" chat_presence_sweeps_total
}

publish() {
	printf '%s\n' "$@" | "$BIN/chat-relay" pub
}

# joined_in FILE: every user in a "joined" list of FILE, sorted, one line.
joined_in() {
	jq -r 'select(.joined) | .joined[]' "$1" | sort | paste -sd' '
}

# has_joined FILE USERS: true once the "joined" lists of FILE name USERS
# ("a b", sorted), each at least once.
has_joined() {
	[ "$(jq -r 'select(.joined) | .joined[]' "$1" | sort -u | paste -sd' ')" = "$2" ]
}

@test "through the relay: changes on evt.ROOM to every gateway, answers on node.NODE to one" {
	relay_start pres --queue chat.presence --bind chat:presence \
		--bind chat:rpc.presence -- "$BIN/chat-presence" --prefix "$PFX" track
	relay_start gw1 sub --exclusive --bind chat:evt.# --bind chat:node.gw1
	relay_start gw2 sub --exclusive --bind chat:evt.# --bind chat:node.gw2
	publish '{"type":"join","route":"presence","node":"gw1","room":"lobby","users":["alice"]}' \
		'{"type":"join","route":"presence","node":"gw2","room":"lobby","users":["alice","bob"]}' \
		'{"type":"presence","route":"rpc.presence","expire":5000,"rpc":"q1","node":"gw1","conn":3,"room":"lobby","limit":1}'
	wait_for 10 grep -q '"rpc":"q1"' "$T/gw1.out"
	# The two joins reach chat-presence one after the other: one change
	# line when both fall in one --coalesce window, two when a loaded
	# machine holds the second back past it. Either way every gateway
	# hears of each user, exactly once.
	for g in gw1 gw2; do
		wait_for 10 has_joined "$T/$g.out" "alice bob"
		[ "$(joined_in "$T/$g.out")" = "alice bob" ]
		[ "$(jq -c 'select(.joined) | [.room, .left, has("node")]' "$T/$g.out" | sort -u)" = \
		  '["lobby",[],false]' ]
	done
	[ "$(jq -c 'select(.rpc == "q1") | [.room, .users, .count, .more]' "$T/gw1.out")" = \
	  '["lobby",["alice"],2,true]' ]
	# the answer went to gw1 only
	! grep -q '"rpc"' "$T/gw2.out"
}

@test "two chat-presence on one queue: a silent gateway's users leave exactly once" {
	local users
	users=$(seq -f '"u%g"' 1 40 | paste -sd,)
	for p in p1 p2; do
		relay_start $p --queue chat.presence --bind chat:presence \
			--bind chat:rpc.presence -- "$BIN/chat-presence" --prefix "$PFX" \
			track --ttl 2s --sweep 200ms --metrics-file "$T/$p.prom" \
			--stats-interval 100ms
	done
	relay_start gw sub --exclusive --bind chat:evt.#
	publish "{\"type\":\"heartbeat\",\"route\":\"presence\",\"node\":\"gwA\",\"ttl\":1000,\"rooms\":{\"r1\":[$users],\"r2\":[$users]}}"
	wait_for 10 bash -c "[ \$(jq -r 'select(.joined) | .joined[]' '$T/gw.out' | wc -l) -eq 80 ]"
	wait_for 10 bash -c "[ \$(jq -r 'select(.left) | .left[]' '$T/gw.out' | wc -l) -ge 80 ]"
	# nothing more comes: both processes sweep twice more, and would
	# have reported a user twice by then
	local s1 s2
	s1=$(sweeps "$T/p1.prom")
	s2=$(sweeps "$T/p2.prom")
	wait_for 10 bash -c "[ \$('$TOP/tests/tools/prom' '$T/p1.prom' chat_presence_sweeps_total) -ge $((s1 + 2)) ] &&
		[ \$('$TOP/tests/tools/prom' '$T/p2.prom' chat_presence_sweeps_total) -ge $((s2 + 2)) ]"
	[ "$(jq -r 'select(.left) | .room as $r | .left[] | "\($r) \(.)"' "$T/gw.out" | wc -l)" -eq 80 ]
	[ -z "$(jq -r 'select(.left) | .room as $r | .left[] | "\($r) \(.)"' "$T/gw.out" | sort | uniq -d)" ]
}

#!/usr/bin/env bats
# scripts/sv: the tree as runit service directories. Every run script is
# executable, parses and ends in exec; under runsvdir in a temporary
# directory (private RabbitMQ, PostgreSQL and, when chat-presence is built,
# Redis), the archive and presence come up by themselves, the gateways
# (down files) when told, in the order of scripts/sv/README; a message goes
# through; the services stop in order, and none of their processes is left.

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	rabbitmq_up || return 1
	postgres_up || return 1
	"$BIN/chat-archive" init >/dev/null
	export D="$BATS_FILE_TMPDIR/runit"
	mkdir -p "$D/etc" "$D/sv"
	PRESENCE=
	if [ -x "$BIN/chat-presence" ] && [ -x "$TOP/scripts/redis" ]; then
		PRESENCE=1
		"$TOP/scripts/redis" start "$BATS_FILE_TMPDIR/redis" >"$D/etc/redis.url" 3>&- ||
			return 1
	fi
	export PRESENCE
	PORT=$(free_port)
	export PORT
	echo "$CHAT_AMQP_URL" >"$D/etc/amqp.url"
	echo "$CHAT_DB_URL" >"$D/etc/db.url"
	sed -e "s|^CHAT_BIN=.*|CHAT_BIN=$BIN|" -e "s|^CHAT_ETC=.*|CHAT_ETC=$D/etc|" \
		-e "s|^CHAT_METRICS=.*|CHAT_METRICS=$D/metrics|" \
		-e "s|^CHAT_LOG=.*|CHAT_LOG=$D/log|" \
		-e "s|^CHAT_LISTEN=.*|CHAT_LISTEN=127.0.0.1:$PORT|" \
		-e "s|^CHAT_AUTH=.*|CHAT_AUTH=none|" \
		"$TOP/scripts/sv/chat.conf" >"$D/etc/chat.conf"
	cp -R "$TOP"/scripts/sv/chat-* "$D/sv/"
	[ -n "$PRESENCE" ] || rm -rf "$D/sv/chat-presence"
}

teardown_file() {
	local p s rsv
	# whatever a failed test left: the services stopped (KILL after 7 s),
	# their runsv told to exit, then runsvdir and what is left below it
	rsv=$(head -n 1 "$D/pids" 2>/dev/null)
	if [ -n "$rsv" ] && alive "$rsv"; then
		tree "$rsv" >>"$D/pids"
		for s in "$D"/sv/chat-*; do
			sv force-shutdown "$s" >/dev/null 2>&1
		done
		kill -TERM "$rsv" 2>/dev/null
	fi
	for p in $(cat "$D/pids" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	[ -z "$PRESENCE" ] || "$TOP/scripts/redis" stop "$BATS_FILE_TMPDIR/redis"
	rabbitmq_down
	postgres_down
}

# tree PID: PID and everything below it.
tree() {
	local p
	echo "$1"
	for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree "$p"; done
}

alive() {
	[ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

none_alive() {
	local p
	for p in "$@"; do alive "$p" && return 1; done
	return 0
}

backend() { ls -d "$D"/sv/chat-store-* "$D/sv/chat-serve" ${PRESENCE:+"$D/sv/chat-presence"}; }

# svpid SERVICE: the pid runsv reports for it.
svpid() { cat "$D/sv/$1/supervise/pid" 2>/dev/null; }

# runs_relay SERVICE: the service's process is chat-relay (its run exec'ed).
runs_relay() {
	local p
	p=$(svpid "$1") && [ -n "$p" ] &&
		[[ "$(tr '\0' ' ' <"/proc/$p/cmdline")" == "$BIN/chat-relay "* ]]
}

@test "sv: every run and log/run is executable, parses and ends in exec; gateways have a down file" {
	local f last
	for f in "$TOP"/scripts/sv/chat-*/run "$TOP"/scripts/sv/chat-*/log/run; do
		[ -x "$f" ]
		sh -n "$f"
		# the last command (continuation lines joined) is an exec
		last=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$f" | grep -v '^\s*#' | grep -v '^\s*$' | tail -n 1)
		[[ "$last" == exec\ * ]] || { echo "$f: $last" >&3; false; }
	done
	[ -e "$TOP/scripts/sv/chat-gw-1/down" ] && [ -e "$TOP/scripts/sv/chat-gw-2/down" ]
	! [ -e "$TOP/scripts/sv/chat-store-0/down" ]
	! [ -e "$TOP/scripts/sv/chat-serve/down" ]
}

@test "sv: the tree under runsvdir: backend first, then the gateways; a message goes through; stopped in order, nothing left" {
	CHAT_CONF=$D/etc/chat.conf runsvdir -P "$D/sv" </dev/null >"$D/runsvdir.out" 2>&1 3>&- &
	rsv=$!
	echo "$rsv" >"$D/pids"
	# the backend starts by itself; the gateways stay down
	for s in $(backend); do
		wait_for 30 bash -c "sv status '$s' 2>/dev/null | grep -q '^run:'"
	done
	sv status "$D/sv/chat-gw-1" | grep -q '^down:'
	# each service's process is the relay itself: run exec'ed (sv says
	# run: once runsv has forked ./run, before its exec: wait for that)
	for s in $(backend); do
		wait_for 10 runs_relay "$(basename "$s")"
	done
	# and its log goes to svlogd (log/run makes the directory, then execs)
	wait_for 10 test -d "$D/log/chat-store-0"
	wait_for 10 bash -c "grep -q svlogd /proc/\$(cat '$D/sv/chat-store-0/log/supervise/pid')/cmdline"

	run sv -w 30 up "$D/sv/chat-gw-1" "$D/sv/chat-gw-2"
	[ "$status" -eq 0 ]
	wait_for 30 bash -c "[ \$(ss -Hltn 'sport = :$PORT' | wc -l) -eq 2 ]"
	p=$(svpid chat-gw-1)
	[[ "$(tr '\0' ' ' <"/proc/$p/cmdline")" == *"--node gw1 "*" -- $BIN/chat-gw --auth none --reuseport --listen 127.0.0.1:$PORT --metrics-file $D/metrics/gw1.prom " ]]
	c=$(cat "/proc/$p/task/$p/children")
	grep -q chat-gw "/proc/${c%% *}/cmdline"

	run --separate-stderr "$BIN/chat-cli" send "ws://127.0.0.1:$PORT/ws" --user carol --room sv "through runit"
	[ "$status" -eq 0 ]
	id=$(jq -r 'select(.type == "ack") | .id' <<<"$output")
	[[ "$id" == gw[12]-* ]]
	wait_for 20 bash -c "[ \"\$(PGOPTIONS='-c client_min_messages=warning' psql -X -q -A -t '$CHAT_DB_URL' -c \"SELECT seq FROM messages WHERE id = '$id'\")\" = 1 ]"
	wait_for 20 test -s "$D/metrics/relay-gw1.prom"
	wait_for 20 test -s "$D/metrics/gw1.prom"
	wait_for 20 test -s "$D/metrics/archive-store-0.prom"

	# every process below runsvdir now, to check that none outlives the stop
	tree "$rsv" | sort -u >"$D/pids"
	[ "$(wc -l <"$D/pids")" -ge 12 ]
	run sv -w 60 down "$D/sv/chat-gw-1" "$D/sv/chat-gw-2"
	[ "$status" -eq 0 ]
	sv status "$D/sv/chat-store-0" | grep -q '^run:'
	run sv -w 60 down $(backend)
	[ "$status" -eq 0 ]
	# then runsv and svlogd go, and runsvdir
	for s in "$D"/sv/chat-*; do sv exit "$s" >/dev/null; done
	kill -TERM "$rsv"
	wait_exit "$rsv" 20
	wait_for 20 none_alive $(cat "$D/pids")
}

#!/usr/bin/env bats
# tests/run: alone (a capacity test: it measures how fast 5,000 clients
# come back, which suites running beside it on the same cores would skew)
# Fault test of the whole system (issue 10): a reconnect storm. Every
# connection of a chat-cli bench --reconnect stream drops at once, twice
# (kill -9 of one gateway, then of the other once the first is back); the
# gateways stay up, /healthz answers, nothing acked is lost. The tree is
# described in faults.bash.

bats_require_minimum_version 1.5.0
load ../helper
load faults

setup_file() {
	tree_servers_up
}

teardown_file() {
	tree_servers_down
}

setup() {
	tree_setup
}

teardown() {
	tree_teardown
}

# The storm's size: 5,000 connections in 50 rooms. On this 2-core box,
# shared with other sessions, with two gateways, chat-presence, the
# archive, the servers and the bench on it, 5,000 come back within ~6 s
# even at a load average of 16 (test ~36 s; the ASan build ~4 s, test
# ~33 s, when it runs alone: beside two other suites of the ASan pass, its
# rejoins' recover queries kept timing out and being retried, and it did
# not settle within the bound). 10,000 (issue 10's figure,
# FAULTS_STORM_CONNS=10000) come back within 2-10 s when the box is quiet
# (test ~35-40 s, the ASan build too), but at a load average of 15-18 the
# gateways' handshakes time out ("closed before established", 145,000 of
# them in one run) and they are not all back within the 60 s bound.
STORM_CONNS=${FAULTS_STORM_CONNS:-5000}

# all_on PID N: PID holds N connections on the port.
all_on() {
	[ "$(conns_of "$1")" -ge "$2" ]
}

# all_joined N: N client connections on the port, all gateways together.
all_joined() {
	[ "$(ss -Htn state established "( sport = :$PORT )" | wc -l)" -ge "$1" ]
}

# healthz_while PID N SECONDS: poll /healthz every 100 ms until PID holds N
# connections (bounded); every answer must come within 2 s. Prints how
# long it took, in ms.
healthz_while() {
	local pid=$1 n=$2 limit=$3 t0=$SECONDS start=$(date +%s%N)
	until all_on "$pid" "$n"; do
		healthz || { echo "no /healthz answer during the storm" >&2; return 1; }
		[ $((SECONDS - t0)) -lt "$limit" ] || {
			echo "only $(conns_of "$pid") of $n back after ${limit}s" >&2
			# where the others are: the client sockets by TCP state,
			# the port's by owner, and what the bench said
			ss -Htan "( dport = :$PORT )" | awk '{ print $1 }' | sort | uniq -c >&2
			ss -Htnp state established "( sport = :$PORT )" |
				grep -o 'pid=[0-9]*' | sort | uniq -c >&2
			tail -n 20 "$T/storm.err" >&2
			return 1
		}
		sleep 0.1
	done
	echo $((($(date +%s%N) - start) / 1000000))
}

# (Before the fix described in faults-gateways.bats, the rejoins' seq
# jumps made this test fail: hundreds per run.)
@test "a reconnect storm: every connection dropped at once comes back; the gateways stay up, /healthz answers, nothing acked is lost" {
	n=$STORM_CONNS
	# 10,000 rejoins are 10,000 recover queries to one chat-archive serve,
	# on a bus busy with the presence changes of 10,000 joins: the default
	# --bus-timeout (10 s), not the suite's 2 s, or they time out
	GW_ARGS="--bus-timeout 10s" tree_up
	ga=$(gw_child "$gwa_PID")
	gb=$(gw_child "$gwb_PID")
	bench_bg storm --conns "$n" --rooms $((n / 100)) --publishers $((n / 100)) --rate 200 \
		--duration 30s --room-prefix st- --timeout 60s --handshakes 500 -v 2
	wait_for 60 all_joined "$n"
	wait_for 20 stored_at_least st- 200
	# half the connections drop at once: onto the other gateway
	na=$(conns_of "$ga")
	kill -KILL "$ga"
	wait_exit "$gwa_PID" 20
	t1=$(healthz_while "$gb" "$n" 60)
	# the dead one comes back; then the other dies: all of them at once
	gw_up gwa
	ga=$(gw_child "$gwa_PID")
	kill -KILL "$gb"
	wait_exit "$gwb_PID" 20
	t2=$(healthz_while "$ga" "$n" 60)
	kill -0 "$ga"
	echo "# storm: $na connections back on the other gateway in $t1 ms, then all $n in $t2 ms" >&3
	bench_wait storm 120
	r=$(cat "$T/storm.json")
	[ "$(echo "$r" | jq .connections.drops)" -ge $((na + n)) ]
	check_once storm st- $((n / 100))
}

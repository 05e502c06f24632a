# What hostile.bats and hostile-regress.bats share: a gateway per test, an
# attack by tests/tools/hostile.py beside its well-behaved client (the
# attack's report is JSON, in $R), and the checks on the gateway's loop
# and memory. Under the sanitizer build (BIN under build-asan) the times and
# memory mean nothing and are not asserted ($ASAN set); what the gateway
# answers still is.

# (Debian's python3: the one the README's dependencies install.)
HOSTILE="/usr/bin/python3 $TOP/tests/tools/hostile.py"

setup() {
	T=$BATS_TEST_TMPDIR
	ASAN=
	[[ "$BIN" == *build-asan* ]] && ASAN=1
	return 0
}

teardown() {
	stop_gw
}

# attack ARGS...: run hostile.py against the gateway, for at most
# ATTACK_LIMIT seconds (the suite sets it); its report in $R.
attack() {
	R=$(timeout "$ATTACK_LIMIT" $HOSTILE --url "$GW_URL" --pid "$GW_PID" "$@")
	echo "# $R" >&3
	[ -n "$R" ]
}

# r FILTER: a jq filter over the report.
r() { jq -r "$1" <<<"$R"; }

# answered N MS: every publish of the well-behaved client was answered, at
# least N of them, with a round trip under MS milliseconds (p99); and no
# loop turn took 50 ms of CPU.
answered() {
	[ "$(r .good.unanswered)" = 0 ]
	[ "$(r .good.n)" -ge "$1" ]
	[ -n "$ASAN" ] || [ "$(r ".good.p99_ms < $2")" = true ]
	turns_under
}

# turns_under: no turn of the gateway's event loop took more than 50 ms
# of CPU (its own chat_gw_loop_turn_cpu_seconds histogram: what the
# machine's other work does to the round trip is not in it).
turns_under() {
	[ -n "$ASAN" ] && return 0
	# (both from one scrape: every scrape is a turn or two more)
	curl -s "$GW_HTTP/metrics" | awk '
		$1 == "chat_gw_loop_turn_cpu_seconds_bucket{le=\"0.05\"}" { under = $2 }
		$1 == "chat_gw_loop_turn_cpu_seconds_count" { all = $2 }
		END { if (all == "" || under != all) { print "turns over 50 ms: " all - under; exit 1 } }'
}

# grew_under MB: the gateway's RSS grew less than MB megabytes at its peak.
grew_under() {
	[ -n "$ASAN" ] || [ "$(r "(.rss_kb.peak - .rss_kb.before) < $1 * 1024")" = true ]
}

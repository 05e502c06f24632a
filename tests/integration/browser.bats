#!/usr/bin/env bats
# chat-gw's browser client (GET /) in a real headless Chromium, driven by
# Playwright from tests/browser/chat.test.mjs (and token.test.mjs, with
# --auth jwt) against a standalone gateway on a free port; browser-bus.bats
# runs the page against the full system. Needs /usr/bin/chromium
# (scripts/deps) and the npm package playwright-core (npm ci into
# tests/browser/node_modules, once).

bats_require_minimum_version 1.5.0
load ../helper

setup_file() {
	if [ ! -d "$TOP/tests/browser/node_modules/playwright-core" ]; then
		timeout 300 npm ci --prefix "$TOP/tests/browser" --no-audit --no-fund \
			--loglevel=error >"$BATS_FILE_TMPDIR/npm.log" 2>&1 || {
			echo "npm ci in tests/browser failed:" >&2
			cat "$BATS_FILE_TMPDIR/npm.log" >&2
			return 1
		}
	fi
}

setup() {
	# A missing browser is a failure, not a skip: scripts/deps installs it.
	[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || {
		echo "no ${CHROMIUM:-/usr/bin/chromium} (scripts/deps installs chromium)" >&2
		return 1
	}
	start_gw --standalone --auth none --history 200
}

teardown() {
	stop_gw
}

# browser_test [NAME=VALUE...]: the Playwright suite against our gateway,
# with more environment for it, bounded; its report in $output.
browser_test() {
	run timeout 90 env GW_HTTP="$GW_HTTP" "$@" \
		node --test --test-reporter=spec "$TOP/tests/browser/chat.test.mjs"
}

@test "GET / serves the browser client" {
	run curl -sS -D - "$GW_HTTP/"
	[ "$status" -eq 0 ]
	[[ "$output" == *"200"* ]]
	[[ "$output" == *"text/html"* ]]
	[[ "$output" == *'"chat.v1"'* ]]
}

@test "browser: history with sender and time, send, escaping, rooms and unread, scroll back, presence, typing, resume with since, ring gap, retried publish, gap fill" {
	seed="said before the pages opened"
	json='{"n":1,"tags":["a","b"]}'
	run "$BIN/chat-cli" send "$GW_URL" --user carol --room lobby --json "{\"text\":\"$seed\"}"
	[ "$status" -eq 0 ]
	run "$BIN/chat-cli" send "$GW_URL" --user carol --room lobby --json "$json"
	[ "$status" -eq 0 ]
	seq 1 120 | sed 's/.*/{"text":"old &"}/' |
		"$BIN/chat-cli" connect "$GW_URL" --user carol --room long >/dev/null
	browser_test SEED="$seed" SEED_JSON="$json" SEED_FROM=carol ROOM=lobby LONG=long LONG_N=120
	if [ "$status" -ne 0 ]; then
		echo "node --test tests/browser/chat.test.mjs exited $status:"
		echo "$output"
		echo "chat-gw log:"
		cat "$GW_LOG"
		return 1
	fi
}

@test "browser: ?token=JWT names the user, a forbidden room is said so, an expired token stops the page" {
	stop_gw
	printf 'browser-test-secret\n' >"$BATS_TEST_TMPDIR/secret"
	# (no clock-skew leeway: the connection ends at the token's exp)
	start_gw --standalone --auth jwt --jwt-secret-file "$BATS_TEST_TMPDIR/secret" \
		--jwt-leeway 0
	# minted by the test right before each page opens, with the --ttl it
	# adds: one that outlives the test for naming and rooms, and a short one
	# on a page of its own for the expiry (a short token shared by all of
	# them had to last through a page load, a send and its delivery: in a
	# loaded run it could expire first)
	token_cmd="'$BIN/chat-cli' token --secret-file '$BATS_TEST_TMPDIR/secret' --sub erin --rooms '[\"team-*\"]'"
	run timeout 60 env GW_HTTP="$GW_HTTP" TOKEN_CMD="$token_cmd" \
		node --test --test-reporter=spec "$TOP/tests/browser/token.test.mjs"
	if [ "$status" -ne 0 ]; then
		echo "node --test tests/browser/token.test.mjs exited $status:"
		echo "$output"
		echo "chat-gw log:"
		cat "$GW_LOG"
		return 1
	fi
}

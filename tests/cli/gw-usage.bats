#!/usr/bin/env bats
# chat-gw's command line: help, version, usage errors and configuration errors.

bats_require_minimum_version 1.5.0
load ../helper

@test "--help: usage on stdout, exit 0" {
	run --separate-stderr "$BIN/chat-gw" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"usage: chat-gw"* ]]
	[ -z "$stderr" ]
}

@test "-h is --help" {
	run --separate-stderr "$BIN/chat-gw" -h
	[ "$status" -eq 0 ]
	[[ "$output" == *"usage: chat-gw"*"--max-conns"* ]]
}

@test "--version" {
	run --separate-stderr "$BIN/chat-gw" --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^chat-gw\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "unknown option: usage on stderr, nothing on stdout, exit 64" {
	run --separate-stderr "$BIN/chat-gw" --no-such-option
	[ "$status" -eq 64 ]
	[ -z "$output" ]
	[[ "$stderr" == *"usage: chat-gw"* ]]
	# the program's name, not the path it was run by
	[[ "$stderr" == "chat-gw: unknown option '--no-such-option'"* ]]
	run --separate-stderr "$BIN/chat-gw" --listen
	[ "$status" -eq 64 ]
	[[ "$stderr" == "chat-gw: option '--listen' needs a value"* ]]
}

@test "bad option values exit 64 with the reason" {
	run --separate-stderr "$BIN/chat-gw" --standalone --listen nowhere
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"'nowhere' is not ADDR:PORT"* ]]
	run --separate-stderr "$BIN/chat-gw" --standalone --max-frame lots
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"'lots' is not a size"* ]]
	run --separate-stderr "$BIN/chat-gw" --standalone --auth maybe
	[ "$status" -eq 64 ]
	run --separate-stderr "$BIN/chat-gw" --standalone --node 'bad node'
	[ "$status" -eq 64 ]
}

@test "--auth jwt without a secret file: usage error" {
	run --separate-stderr "$BIN/chat-gw" --standalone
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"--jwt-secret-file"* ]]
}

@test "an unreadable or empty secret file: exit 78" {
	run --separate-stderr "$BIN/chat-gw" --standalone --jwt-secret-file /nonexistent/secret
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"unable to open secret file"* ]]
	: >"$BATS_TEST_TMPDIR/empty"
	run --separate-stderr "$BIN/chat-gw" --standalone --jwt-secret-file "$BATS_TEST_TMPDIR/empty"
	[ "$status" -eq 78 ]
}

@test "a port in use: exit 71 with a clear message" {
	start_gw --standalone --auth none
	run --separate-stderr "$BIN/chat-gw" --standalone --auth none --listen "$GW_ADDR"
	[ "$status" -eq 71 ]
	[[ "$stderr" == *"unable to listen"* ]]
	stop_gw
}

@test "the readiness example of chat-gw(1) runs as written" {
	# the last EXAMPLES block: start on a free port, wait, check health
	ex=$(sed -n '/^\.SH EXAMPLES/,/^\.SH CAVEATS/p' "$TOP/man/chat-gw.1" |
		awk '/^\.EX/ { blk = ""; on = 1; next } /^\.EE/ { on = 0; last = blk; next }
		     on { blk = blk $0 "\n" } END { printf "%s", last }' |
		sed 's/\\-/-/g; s/\\e$/\\/')
	[[ "$ex" == *"--ready-fd 3"* ]]
	cd "$BATS_TEST_TMPDIR"
	run timeout 20 env PATH="$BIN:$PATH" bash -c "$ex
kill -TERM \$!; wait \$!"
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
}

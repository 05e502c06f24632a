#!/usr/bin/env bats
# chat-relay's command line without a broker: --help gives every option
# with its default, chat-relay(1) documents each of them with the same
# default, and a bad file or variable is a configuration error (78), not a
# usage error (64).

bats_require_minimum_version 1.5.0
load ../helper

# help_entries: one line per option of --help, continuation lines joined:
# "--prefetch N unacked deliveries (default 256)".
help_entries() {
	"$BIN/chat-relay" --help |
		awk '/^  -/ { if (e != "") print e; e = $0; next }
		     /^    / && e != "" { e = e " " $0; next }
		     { if (e != "") print e; e = "" }
		     END { if (e != "") print e }' | tr -s ' ' | sed 's/^ //'
}

# man_entries: the OPTIONS section of chat-relay(1) as man renders it, one
# line per option (see tests/cli/man.bats).
man_entries() {
	LC_ALL=C.UTF-8 MANWIDTH=200 man -l -E UTF-8 "$TOP/man/chat-relay.1" 2>/dev/null |
		sed 's/\xe2\x80\x90/-/g; s/\xe2\x88\x92/-/g' |
		awk '/^[A-Z]/ { in_opts = ($0 == "OPTIONS"); next }
		     in_opts && /^       -/ { if (e != "") print e; e = $0; next }
		     in_opts { e = e " " $0 }
		     END { if (e != "") print e }' | tr -s ' ' | sed 's/^ //'
}

# default_of ENTRY: what follows the first "(default " or "; default " up
# to , ; : or ), without "$".
default_of() {
	grep -oE '[(;] ?default [^,;:)]*' <<<"$1" | head -n 1 |
		sed -E 's/^[(;] ?default //' | tr -d '$'
}

@test "--help: every option with its default" {
	local entry n=0 missing=
	while read -r entry; do
		[[ "$entry" == "--help, --version" ]] && continue
		n=$((n + 1))
		[[ "$entry" == *"(default "* || "$entry" == *"; default "* ]] ||
			missing="$missing
$entry"
	done < <(help_entries)
	[ "$n" -ge 24 ]
	[ -z "$missing" ] || { echo "no default in:$missing" >&2; false; }
}

@test "chat-relay(1): an OPTIONS entry for every option of --help, with the same default" {
	local entries opt entry hdef mdef n=0 bad=
	entries=$(man_entries)
	while read -r entry; do
		[[ "$entry" == "--help, --version" ]] && continue
		opt=${entry%% *}
		n=$((n + 1))
		mentry=$(grep -E -- "^${opt}( |\$)" <<<"$entries") || {
			bad="$bad
no OPTIONS entry for $opt"
			continue
		}
		hdef=$(default_of "$entry")
		mdef=$(default_of "$mentry")
		[ -n "$hdef" ] && [[ "$mdef" == "$hdef"* ]] ||
			bad="$bad
$opt: --help says default '$hdef', the page '$mdef'"
	done < <(help_entries)
	[ "$n" -ge 24 ]
	grep -q -- '^--help ' <<<"$entries"
	grep -q -- '^--version ' <<<"$entries"
	[ -z "$bad" ] || { echo "$bad" >&2; false; }
}

@test "bad files and variables: exit 78 with the reason, no usage line" {
	local T=$BATS_TEST_TMPDIR
	run --separate-stderr "$BIN/chat-relay" --url-file "$T/none" pub
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"unable to read --url-file '$T/none'"* ]]
	[[ "$stderr" != *usage:* ]]
	printf '# nothing\n\n' >"$T/empty"
	run --separate-stderr "$BIN/chat-relay" --url-file "$T/empty" pub
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"holds no URL"* ]]
	run --separate-stderr "$BIN/chat-relay" --ca "$T/none.pem" pub
	[ "$status" -eq 78 ]
	run --separate-stderr env CHAT_INGEST_SHARDS=2000 "$BIN/chat-relay" pub
	[ "$status" -eq 78 ]
	[[ "$stderr" == *"CHAT_INGEST_SHARDS"* ]]
	[ -z "$output" ]
}

@test "bad option values: exit 64 with the usage line" {
	local args
	for args in "--node a/b pub" "--ingest-shards 0 pub" "--ingest-shards 1025 pub" \
		"--url , pub" "--stats-interval soon pub" "--metrics-file= pub"; do
		# shellcheck disable=SC2086
		run --separate-stderr "$BIN/chat-relay" $args </dev/null
		[ "$status" -eq 64 ] || { echo "args: $args -> $status"; false; }
		[[ "$stderr" == *"usage: chat-relay"* ]]
	done
}

@test "a URL that does not parse is a usage error; its password is not echoed" {
	run --separate-stderr "$BIN/chat-relay" --url 'amqp://u:s3cret@h:notaport/' pub </dev/null
	[ "$status" -eq 64 ]
	[[ "$stderr" == *"is not an AMQP URL"* ]]
	[[ "$stderr" != *s3cret* ]]
}

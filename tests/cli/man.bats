#!/usr/bin/env bats
# The man pages of man/: every page renders without a warning, and every
# option a program's --help lists is documented in its page.
# Needs man-db and groff-base.

bats_require_minimum_version 1.5.0
load ../helper

# render PAGE: the page as man(1) formats it, 80 columns.
render() {
	LC_ALL=C.UTF-8 MANWIDTH=80 man -l -E UTF-8 "$1" 2>/dev/null
}

# option_entries PAGE: the OPTIONS section of a rendered page, one line per
# option: "--rate N Publishes per second per client (default 50)." Hyphens
# may render as U+2010 or U+2212: they come out in ASCII.
option_entries() {
	render "$1" | sed 's/\xe2\x80\x90/-/g; s/\xe2\x88\x92/-/g' |
		awk '/^[A-Z]/ { in_opts = ($0 == "OPTIONS"); next }
		     in_opts && /^       -/ { if (e != "") print e; e = $0; next }
		     in_opts { e = e " " $0 }
		     END { if (e != "") print e }' | tr -s ' ' | sed 's/^ //'
}

# help_options PROG: the options PROG's --help mentions, one per line.
help_options() {
	"$BIN/$1" --help |
		grep -oE '(^|[][ ,|])--?[A-Za-z][A-Za-z0-9-]*' |
		sed -E 's/^[][ ,|]//' | sort -u
}

@test "man-db can render pages" {
	command -v man >/dev/null
	command -v groff >/dev/null
}

@test "every page in man/ renders without warnings" {
	local page out n=0
	for page in "$TOP"/man/*.[1-8]; do
		[ -e "$page" ] || continue
		n=$((n + 1))
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l -E UTF-8 "$page" 2>&1 >/dev/null)
		if [ -n "$out" ]; then
			echo "${page#"$TOP"/}: $out" >&2
			return 1
		fi
		# and renders to a page at all
		render "$page" | grep -q '^NAME'
	done
	[ "$n" -ge 2 ]
}

@test "every option of chat-gw --help has its entry in OPTIONS of chat-gw(1)" {
	local entries opt missing=
	entries=$(option_entries "$TOP/man/chat-gw.1")
	run help_options chat-gw
	[ "$status" -eq 0 ]
	# the help lists twenty-odd options: a broken extraction must not pass
	[ "${#lines[@]}" -ge 20 ]
	for opt in "${lines[@]}"; do
		# (an entry may name a short form first: "-h, --help")
		grep -qE -- "^(-[a-z], )?${opt}([ ,]|\$)" <<<"$entries" || missing="$missing $opt"
	done
	if [ -n "$missing" ]; then
		echo "no OPTIONS entry in man/chat-gw.1 for:$missing" >&2
		return 1
	fi
}

@test "chat-gw(1) gives each option's default as --help does" {
	local entries opt def entry n=0
	entries=$(option_entries "$TOP/man/chat-gw.1")
	run "$BIN/chat-gw" --help
	[ "$status" -eq 0 ]
	# "  --max-conns N  connections (100000); ...": the number in brackets
	while read -r opt def; do
		n=$((n + 1))
		entry=$(grep -E -- "^$opt( |\$)" <<<"$entries")
		[[ "$entry" == *"(default $def"[,\;\)]* ]] || {
			echo "man/chat-gw.1 does not give $opt the default $def: $entry" >&2
			return 1
		}
	done < <(printf '%s\n' "$output" |
		sed -nE 's/^  (--[a-z-]+|-v) [^(]*\(([0-9][^;)]*)[;)].*/\1 \2/p')
	[ "$n" -ge 10 ]
}

@test "every option of chat-cli token --help has its entry in OPTIONS of chat-cli(1)" {
	local entries opt missing=
	entries=$(option_entries "$TOP/man/chat-cli.1")
	run bash -c "'$BIN/chat-cli' token --help |
		grep -oE '(^|[][ ,|])--?[A-Za-z][A-Za-z0-9-]*' | sed -E 's/^[][ ,|]//' | sort -u"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -ge 12 ]
	for opt in "${lines[@]}"; do
		grep -qE -- "^(-[a-z], )?${opt}([ ,]|\$)" <<<"$entries" || missing="$missing $opt"
	done
	if [ -n "$missing" ]; then
		echo "no OPTIONS entry in man/chat-cli.1 for:$missing" >&2
		return 1
	fi
}

@test "every option of chat-cli bench --help has its entry in OPTIONS of chat-cli(1), with its default" {
	local entries opt def entry missing= n=0
	entries=$(option_entries "$TOP/man/chat-cli.1")
	run "$BIN/chat-cli" bench --help
	[ "$status" -eq 0 ]
	for opt in $(printf '%s\n' "$output" | grep -oE '^  --?[a-z][a-z-]*' | sort -u); do
		n=$((n + 1))
		grep -qE -- "^${opt}( |\$)" <<<"$entries" || missing="$missing $opt"
	done
	[ "$n" -ge 15 ]
	if [ -n "$missing" ]; then
		echo "no OPTIONS entry in man/chat-cli.1 for:$missing" >&2
		return 1
	fi
	# "  --conns N   connections (default 100); ...": the page says
	# "Default 100." in the option's entry
	n=0
	while read -r opt def; do
		n=$((n + 1))
		entry=$(grep -E -- "^$opt( |\$)" <<<"$entries")
		[[ "$entry" == *"Default $def"[.\;\ ]* ]] || {
			echo "man/chat-cli.1 does not give $opt the default $def: $entry" >&2
			return 1
		}
	done < <(printf '%s\n' "$output" |
		sed -nE 's/^  (--[a-z-]+) [^(]*\(default ([^;)]*)[;)].*/\1 \2/p')
	[ "$n" -ge 10 ]
}

@test "every option of chat-archive --help has its entry in OPTIONS of chat-archive(1), with its default" {
	local entries opt def entry missing= n=0
	entries=$(option_entries "$TOP/man/chat-archive.1")
	run help_options chat-archive
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -ge 20 ]
	for opt in "${lines[@]}"; do
		grep -qE -- "^${opt}( |\$)" <<<"$entries" || missing="$missing $opt"
	done
	if [ -n "$missing" ]; then
		echo "no OPTIONS entry in man/chat-archive.1 for:$missing" >&2
		return 1
	fi
	run "$BIN/chat-archive" --help
	while read -r opt def; do
		n=$((n + 1))
		entry=$(grep -E -- "^$opt( |\$)" <<<"$entries")
		[[ "$entry" == *"(default $def"[,\;\):\ ]* ]] || {
			echo "man/chat-archive.1 does not give $opt the default $def: $entry" >&2
			return 1
		}
	done < <(printf '%s\n' "$output" |
		sed -nE 's/^  (--[a-z-]+|-v) [^(]*\(([0-9][^;):]*)[;):].*/\1 \2/p')
	[ "$n" -ge 10 ]
}

@test "every option of chat-presence --help has its entry in OPTIONS of chat-presence(1), with its default" {
	local entries opt def entry missing= n=0
	entries=$(option_entries "$TOP/man/chat-presence.1")
	run help_options chat-presence
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -ge 20 ]
	for opt in "${lines[@]}"; do
		grep -qE -- "^${opt}( |\$)" <<<"$entries" || missing="$missing $opt"
	done
	if [ -n "$missing" ]; then
		echo "no OPTIONS entry in man/chat-presence.1 for:$missing" >&2
		return 1
	fi
	run "$BIN/chat-presence" --help
	while read -r opt def; do
		n=$((n + 1))
		entry=$(grep -E -- "^$opt( |\$)" <<<"$entries")
		[[ "$entry" == *"(default $def"[,\;\)]* ]] || {
			echo "man/chat-presence.1 does not give $opt the default $def: $entry" >&2
			return 1
		}
	done < <(printf '%s\n' "$output" |
		sed -nE 's/^  (--[a-z-]+|-v) [^(]*\(default ([^;)]*)[;)].*/\1 \2/p')
	[ "$n" -ge 12 ]
}

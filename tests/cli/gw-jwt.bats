#!/usr/bin/env bats
# chat-gw --auth jwt: HS256 tokens at the handshake and while connected.

bats_require_minimum_version 1.5.0
load ../helper

setup() {
	SECRET="$BATS_TEST_TMPDIR/secret"
	printf 'test-secret-%s\n' "$RANDOM" >"$SECRET"
	start_gw --standalone --auth jwt --jwt-secret-file "$SECRET"
}

teardown() {
	stop_gw
}

token() {
	"$BIN/chat-cli" token --secret-file "$SECRET" "$@"
}

@test "a valid token connects as its sub" {
	tok=$(token --sub alice --ttl 1h)
	run --separate-stderr $PROBE "$GW_URL?token=$tok" text:'{"type":"join","room":"r"}' recvuntil:joined \
		text:'{"type":"publish","room":"r","body":"hi"}' recvuntil:'"type":"message"'
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of message | jq -r .from)" = alice ]
}

@test "no token in the URL: the first frame must be an auth frame, else unauthorized and 1008" {
	run --separate-stderr $PROBE "$GW_URL" text:'{"type":"join","room":"r","ref":1}' expectclose
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of error | jq -r '[.code, .ref] | join(" ")')" = "unauthorized 1" ]
	[[ "$output" == *"close 1008"* ]]
	# a bad token in the frame: the same
	run --separate-stderr $PROBE "$GW_URL" text:'{"type":"auth","token":"x.y.z","ref":"a"}' expectclose
	[ "$(echo "$output" | frames_of error | jq -r .code)" = unauthorized ]
	[[ "$output" == *"close 1008"* ]]
	[ "$(metric 'chat_gw_refused_total{reason="auth"}')" -eq 1 ]
	# a good one: authed, then the protocol as usual, and the token never
	# was in a URL
	tok=$(token --sub frank)
	run --separate-stderr $PROBE "$GW_URL" text:"{\"type\":\"auth\",\"token\":\"$tok\",\"ref\":\"a\"}" \
		recvuntil:authed text:'{"type":"join","room":"r"}' recvuntil:joined \
		text:'{"type":"publish","room":"r","body":"hi"}' recvuntil:'"type":"ack"'
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of authed | jq -c '[.ref, .user]')" = '["a","frank"]' ]
	[ "$(echo "$output" | frames_of message | jq -r .from)" = frank ]
	# and one that never says anything is closed after --handshake-timeout
	stop_gw
	start_gw --standalone --auth jwt --jwt-secret-file "$SECRET" --handshake-timeout 1s
	run --separate-stderr $PROBE --timeout 10 "$GW_URL" expectclose
	[[ "$output" == *"close 1008"* ]]
}

@test "a token in the URL that does not check is refused with 401" {
	run --separate-stderr $PROBE "$GW_URL?token=not.a.token" recv
	[ "$status" -eq 2 ]
	[[ "$output" == *"http 401"* ]]
	[ "$(metric 'chat_gw_refused_total{reason="auth"}')" -eq 1 ]
}

@test "a token with the wrong signature is refused with 401" {
	other="$BATS_TEST_TMPDIR/other"
	echo other-secret >"$other"
	tok=$("$BIN/chat-cli" token --secret-file "$other" --sub mallory)
	run --separate-stderr $PROBE "$GW_URL?token=$tok" recv
	[ "$status" -eq 2 ]
	[[ "$output" == *"http 401"* ]]
	# a tampered payload too
	tok=$(token --sub alice)
	forged="${tok%%.*}.$(printf '{"sub":"admin"}' | base64 -w0 | tr '+/' '-_' | tr -d '=').${tok##*.}"
	run --separate-stderr $PROBE "$GW_URL?token=$forged" recv
	[ "$status" -eq 2 ]
}

@test "an expired token is refused with 401" {
	hdr=$(printf '{"alg":"HS256","typ":"JWT"}' | base64 -w0 | tr '+/' '-_' | tr -d '=')
	# (past the 30 s leeway)
	pl=$(printf '{"sub":"alice","exp":%d}' $(( $(date +%s) - 40 )) | base64 -w0 | tr '+/' '-_' | tr -d '=')
	sig=$(printf '%s.%s' "$hdr" "$pl" | openssl dgst -sha256 -hmac "$(cat "$SECRET")" -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
	run --separate-stderr $PROBE "$GW_URL?token=$hdr.$pl.$sig" recv
	[ "$status" -eq 2 ]
	[[ "$output" == *"http 401"* ]]
	# the same construction with a future exp is accepted, so the above
	# failed for the expiry alone
	pl=$(printf '{"sub":"alice","exp":%d}' $(( $(date +%s) + 60 )) | base64 -w0 | tr '+/' '-_' | tr -d '=')
	sig=$(printf '%s.%s' "$hdr" "$pl" | openssl dgst -sha256 -hmac "$(cat "$SECRET")" -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
	run --separate-stderr $PROBE "$GW_URL?token=$hdr.$pl.$sig" text:'{"type":"join","room":"r"}' recvuntil:joined
	[ "$status" -eq 0 ]
}

@test "a token that expires while connected: unauthorized, then close 1008" {
	stop_gw
	# The token lives 2 to 3 s (exp is in whole seconds), and must still be
	# good when the auth frame and the join reach the gateway: the probe
	# connects first (python's start and the handshake are not on the
	# token's clock) and sends the token as its first frame once it is
	# minted. (--handshake-timeout: the probe waits for chat-cli to mint it,
	# which on a loaded ASan build may take a while.)
	start_gw --standalone --auth jwt --jwt-secret-file "$SECRET" --jwt-leeway 0 --handshake-timeout 60s
	$PROBE --timeout 10 "$GW_URL" stalluntil:"$BATS_TEST_TMPDIR/auth" textfile:"$BATS_TEST_TMPDIR/auth" \
		recvuntil:authed text:'{"type":"join","room":"r"}' recvuntil:joined expectclose \
		>"$BATS_TEST_TMPDIR/a.out" 2>&1 &
	pa=$!
	connected() { [ "$(metric chat_gw_connections)" = 1 ]; }
	wait_for 10 connected
	tok=$(token --sub alice --ttl 3s)
	printf '{"type":"auth","token":"%s"}' "$tok" >"$BATS_TEST_TMPDIR/auth.tmp"
	mv "$BATS_TEST_TMPDIR/auth.tmp" "$BATS_TEST_TMPDIR/auth"
	wait_exit "$pa" 20
	cat "$BATS_TEST_TMPDIR/a.out" >&2
	[ "$WAIT_STATUS" -eq 0 ]
	output=$(cat "$BATS_TEST_TMPDIR/a.out")
	[ "$(echo "$output" | frames_of error | jq -r .code)" = unauthorized ]
	[[ "$output" == *"close 1008 token expired"* ]]
	[ "$(metric 'chat_gw_closes_total{reason="token_expired"}')" -eq 1 ]
}

@test "a rooms claim limits what the user may join: forbidden" {
	tok=$(token --sub alice --rooms '["team-*","lobby"]')
	run --separate-stderr $PROBE "$GW_URL?token=$tok" \
		text:'{"type":"join","room":"team-a"}' recvuntil:joined \
		text:'{"type":"join","room":"lobby"}' recvuntil:joined \
		text:'{"type":"join","room":"secret","ref":"s"}' recvuntil:error \
		text:'{"type":"history","room":"secret","ref":"h"}' recvuntil:error
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of error | jq -r .code | sort -u)" = forbidden ]
}

@test "chat-cli connects with a token" {
	tok=$(token --sub dave)
	run --separate-stderr "$BIN/chat-cli" send "$GW_URL" --token "$tok" --room r "by token"
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of ack | wc -l)" -eq 1 ]
}

@test "chat-gw and chat-cli token read the secret file alike (trailing white space)" {
	stop_gw
	printf 'spaced-secret \t \n' >"$SECRET"
	start_gw --standalone --auth jwt --jwt-secret-file "$SECRET"
	tok=$(token --sub alice)
	run --separate-stderr $PROBE "$GW_URL?token=$tok" text:'{"type":"join","room":"r"}' recvuntil:joined
	[ "$status" -eq 0 ]
}

# keypair NAME ALG: a private key $T/NAME.key and its public PEM $T/NAME.pub
# (rsa or ec).
keypair() {
	if [ "$2" = rsa ]; then
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$BATS_TEST_TMPDIR/$1.key" 2>/dev/null
	else
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$BATS_TEST_TMPDIR/$1.key" 2>/dev/null
	fi
	openssl pkey -in "$BATS_TEST_TMPDIR/$1.key" -pubout -out "$BATS_TEST_TMPDIR/$1.pub"
}

@test "RS256 and ES256 tokens from --jwt-key-file, with iss and aud checked" {
	keypair r rsa
	keypair e ec
	cat "$BATS_TEST_TMPDIR/r.pub" "$BATS_TEST_TMPDIR/e.pub" >"$BATS_TEST_TMPDIR/keys.pem"
	stop_gw
	start_gw --standalone --auth jwt --jwt-key-file "$BATS_TEST_TMPDIR/keys.pem" \
		--jwt-issuer https://id.example --jwt-audience chat
	for alg in RS256:r ES256:e; do
		tok=$("$BIN/chat-cli" token --key-file "$BATS_TEST_TMPDIR/${alg#*:}.key" --alg "${alg%:*}" \
			--sub "u${alg%:*}" --iss https://id.example --aud chat)
		run --separate-stderr $PROBE "$GW_URL?token=$tok" text:'{"type":"join","room":"r"}' recvuntil:joined
		[ "$status" -eq 0 ]
	done
	# another issuer, another audience, an HS256 token: 401
	tok=$("$BIN/chat-cli" token --key-file "$BATS_TEST_TMPDIR/r.key" --alg RS256 --sub x --iss https://evil.example --aud chat)
	run --separate-stderr $PROBE "$GW_URL?token=$tok" recv
	[[ "$output" == *"http 401"* ]]
	tok=$("$BIN/chat-cli" token --key-file "$BATS_TEST_TMPDIR/r.key" --alg RS256 --sub x --iss https://id.example --aud other)
	run --separate-stderr $PROBE "$GW_URL?token=$tok" recv
	[[ "$output" == *"http 401"* ]]
	tok=$(token --sub x)
	run --separate-stderr $PROBE "$GW_URL?token=$tok" recv
	[[ "$output" == *"http 401"* ]]
}

@test "SIGHUP rereads --jwt-key-file: new tokens need the new key, connections stay" {
	keypair k1 ec
	keypair k2 ec
	cp "$BATS_TEST_TMPDIR/k1.pub" "$BATS_TEST_TMPDIR/keys.pem"
	stop_gw
	start_gw --standalone --auth jwt --jwt-key-file "$BATS_TEST_TMPDIR/keys.pem" -v 2
	t1=$("$BIN/chat-cli" token --key-file "$BATS_TEST_TMPDIR/k1.key" --alg ES256 --sub one)
	t2=$("$BIN/chat-cli" token --key-file "$BATS_TEST_TMPDIR/k2.key" --alg ES256 --sub two)
	$PROBE "$GW_URL?token=$t1" text:'{"type":"join","room":"h"}' recvuntil:joined \
		stalluntil:"$BATS_TEST_TMPDIR/go" text:'{"type":"publish","room":"h","body":"still","ref":"s"}' \
		recvuntil:'"ref":"s"' >"$BATS_TEST_TMPDIR/one.out" 2>&1 &
	one=$!
	wait_for 10 grep -q joined "$BATS_TEST_TMPDIR/one.out"
	cp "$BATS_TEST_TMPDIR/k2.pub" "$BATS_TEST_TMPDIR/keys.pem"
	kill -HUP "$GW_PID"
	wait_for 10 grep -q 'token keys reloaded' "$GW_LOG"
	run --separate-stderr $PROBE "$GW_URL?token=$t2" text:'{"type":"join","room":"h"}' recvuntil:joined
	[ "$status" -eq 0 ]
	run --separate-stderr $PROBE "$GW_URL?token=$t1" recv
	[[ "$output" == *"http 401"* ]]
	# the connection let in with the old key goes on
	touch "$BATS_TEST_TMPDIR/go"
	wait_exit "$one" 10
	grep -q '"type":"ack"' "$BATS_TEST_TMPDIR/one.out"
	# a bad file keeps the keys in use
	echo garbage >"$BATS_TEST_TMPDIR/keys.pem"
	kill -HUP "$GW_PID"
	wait_for 10 grep -q 'unable to reload the token keys' "$GW_LOG"
	run --separate-stderr $PROBE "$GW_URL?token=$t2" text:'{"type":"join","room":"h"}' recvuntil:joined
	[ "$status" -eq 0 ]
}

@test "a publish claim makes a room read-only: forbidden, the room still readable" {
	tok=$(token --sub reader --rooms '["news","chat"]' --publish '["chat"]')
	run --separate-stderr $PROBE "$GW_URL?token=$tok" text:'{"type":"join","room":"news"}' recvuntil:joined \
		text:'{"type":"publish","room":"news","body":"no","ref":"n"}' recvuntil:'"ref":"n"' \
		text:'{"type":"join","room":"chat"}' recvuntil:joined \
		text:'{"type":"publish","room":"chat","body":"yes","ref":"c"}' recvuntil:'"type":"ack"'
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | frames_of error | jq -r '[.ref, .code] | join(" ")')" = "n forbidden" ]
}

@test "tokens and query strings never reach the logs, even at -v 3" {
	stop_gw
	start_gw --standalone --auth jwt --jwt-secret-file "$SECRET" -v 3
	tok=$(token --sub loggy)
	run --separate-stderr $PROBE "$GW_URL?token=$tok" text:'{"type":"join","room":"r"}' recvuntil:joined
	run --separate-stderr $PROBE "$GW_URL?token=$tok.tampered" recv
	run --separate-stderr $PROBE "$GW_URL" text:"{\"type\":\"auth\",\"token\":\"$tok\"}" recvuntil:authed
	sig=${tok##*.}
	! grep -qF "$sig" "$GW_LOG"
	! grep -qF "token=" "$GW_LOG"
}

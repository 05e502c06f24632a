#!/usr/bin/env bats
# chat-cli token with a PEM private key: RS256 and ES256 tokens whose
# signatures openssl(1) verifies with the public half, the claims the
# options set, and the usage errors of the key options.

bats_require_minimum_version 1.5.0
load ../helper

setup() {
	cd "$BATS_TEST_TMPDIR"
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem 2>/dev/null
	openssl pkey -in rsa.pem -pubout -out rsa.pub
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem
	openssl pkey -in ec.pem -pubout -out ec.pub
}

# b64url_decode PART: the bytes of one base64url JWT part on stdout.
b64url_decode() {
	local s
	s=$(printf '%s' "$1" | tr '_-' '/+')
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	printf '%s' "$s" | base64 -d
}

# es256_der: JOSE's r||s (64 bytes on stdin) as the DER openssl verifies.
es256_der() {
	python3 -c '
import sys
raw = sys.stdin.buffer.read()
assert len(raw) == 64
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = integer(raw[:32]) + integer(raw[32:])
sys.stdout.buffer.write(b"\x30" + bytes([len(body)]) + body)'
}

usage_error() {
	run --separate-stderr "$BIN/chat-cli" "$@"
	[ "$status" -eq 64 ]
	[ -z "$output" ]
	[[ "$stderr" == *"usage: chat-cli token"* ]]
}

@test "token --key-file --alg RS256: openssl verifies it with the public key" {
	now=$(date +%s)
	run --separate-stderr "$BIN/chat-cli" token --key-file rsa.pem --alg RS256 \
		--sub alice --kid k1 --iss https://id.example --aud chat --ttl 10m \
		--nbf 0 --rooms '["team-*","lobby"]' --publish '["team-*"]'
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 1 ]
	IFS=. read -r h p sig <<<"$output"
	[ "$(b64url_decode "$h" | jq -c .)" = '{"alg":"RS256","typ":"JWT","kid":"k1"}' ]
	payload=$(b64url_decode "$p")
	[ "$(jq -r .sub <<<"$payload")" = alice ]
	[ "$(jq -r .iss <<<"$payload")" = https://id.example ]
	[ "$(jq -r .aud <<<"$payload")" = chat ]
	[ "$(jq -c .rooms <<<"$payload")" = '["team-*","lobby"]' ]
	[ "$(jq -c .publish <<<"$payload")" = '["team-*"]' ]
	nbf=$(jq .nbf <<<"$payload")
	exp=$(jq .exp <<<"$payload")
	[ "$nbf" -ge "$now" ] && [ "$nbf" -le $((now + 5)) ]
	[ "$exp" -ge $((now + 600)) ] && [ "$exp" -le $((now + 605)) ]
	b64url_decode "$sig" >sig.bin
	[ "$(stat -c %s sig.bin)" -eq 256 ]
	printf '%s' "$h.$p" >signed
	openssl dgst -sha256 -verify rsa.pub -signature sig.bin signed
	# and not with another key, nor over other bytes
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
		openssl pkey -pubout -out other.pub
	run ! openssl dgst -sha256 -verify other.pub -signature sig.bin signed
	printf '%s' "$h.$p." >signed2
	run ! openssl dgst -sha256 -verify rsa.pub -signature sig.bin signed2
}

@test "token --key-file --alg ES256: 64 bytes r||s, openssl verifies it" {
	run --separate-stderr "$BIN/chat-cli" token --key-file ec.pem --alg ES256 --sub bob
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	IFS=. read -r h p sig <<<"$output"
	[ "$(b64url_decode "$h" | jq -c .)" = '{"alg":"ES256","typ":"JWT"}' ]
	[ "$(b64url_decode "$p" | jq -r 'keys | join(",")')" = exp,sub ]
	b64url_decode "$sig" >sig.raw
	[ "$(stat -c %s sig.raw)" -eq 64 ]
	es256_der <sig.raw >sig.der
	printf '%s' "$h.$p" >signed
	openssl dgst -sha256 -verify ec.pub -signature sig.der signed
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null |
		openssl pkey -pubout -out other.pub
	run ! openssl dgst -sha256 -verify other.pub -signature sig.der signed
}

@test "token: a key of the wrong type for --alg exits 65 and says why" {
	run --separate-stderr "$BIN/chat-cli" token --key-file rsa.pem --alg ES256 --sub a
	[ "$status" -eq 65 ]
	[ -z "$output" ]
	[[ "$stderr" == *"unable to sign token"*"ES256 needs an EC P-256 key"* ]]
	run --separate-stderr "$BIN/chat-cli" token --key-file ec.pem --alg RS256 --sub a
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"RS256 needs an RSA key"* ]]
	# a public key is not a signing key
	run --separate-stderr "$BIN/chat-cli" token --key-file ec.pub --alg ES256 --sub a
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"private key"* ]]
	# nor is an encrypted one (never a passphrase prompt)
	openssl pkey -in ec.pem -aes256 -passout pass:pw -out enc.pem
	run --separate-stderr "$BIN/chat-cli" token --key-file enc.pem --alg ES256 --sub a </dev/null
	[ "$status" -eq 65 ]
	run --separate-stderr "$BIN/chat-cli" token --key-file none.pem --alg ES256 --sub a
	[ "$status" -eq 66 ]
	[[ "$stderr" == *"unable to read key file"* ]]
}

@test "token: usage errors of the key options exit 64" {
	echo s3cret >secret
	usage_error token --sub a
	usage_error token --secret-file secret --key-file ec.pem --sub a
	usage_error token --key-file ec.pem --sub a
	usage_error token --key-file ec.pem --alg HS256 --sub a
	usage_error token --key-file ec.pem --alg none --sub a
	usage_error token --secret-file secret --alg RS256 --sub a
	usage_error token --secret-file secret --sub a --publish '"lobby"'
	usage_error token --secret-file secret --sub a --publish '[1]'
	usage_error token --secret-file secret --sub a --kid ''
	usage_error token --secret-file secret --sub a --nbf soon
	usage_error token --secret-file secret --sub a --kid
}

@test "token --secret-file --alg HS256: the same as without --alg" {
	printf 'k' >secret
	run "$BIN/chat-cli" token --secret-file secret --alg HS256 --sub bob --ttl 0 --kid h1
	[ "$status" -eq 0 ]
	IFS=. read -r h p sig <<<"$output"
	[ "$(b64url_decode "$h")" = '{"alg":"HS256","typ":"JWT","kid":"h1"}' ]
	[ "$(b64url_decode "$p")" = '{"sub":"bob"}' ]
}

# ports.sh: sourced by scripts/redis, scripts/postgres, scripts/rabbitmq
# and the test helpers (tests/helper.bash): how a private server gets a
# loopback port. Not a command.

# port_free PORT: true when nothing on this host uses PORT over TCP.
port_free() {
	! ss -Htan 2>/dev/null | awk '{print $4}' | grep -qE "[:.]$1\$"
}

# pick_port VAR: set VAR to a port from 20000 up to the kernel's ephemeral
# range (else 59999) that is free now and not picked before by this
# shell. Below the ephemeral range when there is room: a port in it may be
# taken by any client's connection between the pick and the bind (or
# while a cluster's node restarts its listener to join), and binding to
# port 0 gives one from it.
picked=
pick_port() {
	local i p lo=20000 hi=60000 eph
	eph=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	if [ -n "$eph" ] && [ "$eph" -gt $((lo + 2000)) ]; then
		hi=$eph
	fi
	for i in $(seq 1 200); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
		case " $picked " in *" $p "*) continue ;; esac
		if port_free "$p"; then
			picked="$picked $p"
			printf -v "$1" %s "$p"
			return 0
		fi
	done
	return 1
}

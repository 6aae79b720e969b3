#!/usr/bin/env bash
# Several instances as production runs them (openvpn-plugin-vpnpool(8),
# SEVERAL INSTANCES and PRODUCTION): a UDP and a TCP server on one
# vpnpool.conf, both `user nobody`, `group nogroup`, `persist-tun`,
# `persist-key`, on tuns made beforehand for nobody, `host-routes = "yes"`.
# Checks: both drop privileges and still share one address space (two
# clients, two addresses, each /32 on its server's tun, added by the keeper
# after the drop); a SIGHUP of the UDP server (the plugin closed and opened
# again as nobody) keeps its instance name and serves a client its sticky
# address and a new client one nobody holds, routed; the usage log, shared
# by both and moved away as logrotate does, is reopened and gets the next
# connect of the TCP server.  Runs in a network namespace of its own.
: "${E2E_TIMEOUT:=180}"
if [ -z "${MULTI_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
	MULTI_NETNS=1 exec unshare --net -- "${BASH:-bash}" "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multilib.sh"
mp_require
getent passwd nobody >/dev/null && getent group nogroup >/dev/null ||
	e2e_skip_or_fail "needs a user nobody and a group nogroup"
NET=10.$((64 + $$ % 120))

# What nobody reopens at SIGHUP: the scratch dir, the server key, the pid
# and status files, the plugin (dlopen()ed again) and a tun clone node.
chmod 0755 "$E2E_DIR"
mknod "$E2E_DIR/tun" c 10 200 2>/dev/null && chmod 0666 "$E2E_DIR/tun" ||
	e2e_skip_or_fail "cannot make a tun device node (mknod)"
e2e_pki alpha bravo charlie delta || e2e_finish	# certificates c0..c3
chown nobody "$E2E_DIR/pki/server.key"
mkdir -m 0755 "$E2E_DIR/lib" && cp "$PLUGIN" "$E2E_DIR/lib/" && PLUGIN=$E2E_DIR/lib/${PLUGIN##*/}
e2e_vpnpool_conf "host-routes = \"yes\"
pool \"p\" { network = \"$NET.0.0/16\" }"
chmod 0644 "$E2E_DIR/vpnpool.conf"
DROP="user nobody
group nogroup
persist-tun
persist-key
dev-node $E2E_DIR/tun"
# OpenVPN checks at SIGHUP that nobody may write the pid and status files
# and their directory: theirs is nobody's (these lines come after
# multilib's own, and win).
RUN=$E2E_DIR/run
mkdir -m 0755 "$RUN" && chown nobody "$RUN"
for name in udp tcp; do
	: >"$RUN/$name.pid"
	: >"$RUN/$name.status"
done
chown nobody "$RUN"/*
mp_instance udp udp "$DROP
writepid $RUN/udp.pid
status $RUN/udp.status 1"
mp_instance tcp tcp-server "$DROP
writepid $RUN/tcp.pid
status $RUN/tcp.status 1"
MP_SNIPPET="topology subnet
server $NET.0.0 255.255.0.0 nopool"
for name in udp tcp; do
	openvpn --mktun --dev "${MP_DEV[$name]}" --dev-type tun --user nobody >/dev/null 2>&1 ||
		e2e_skip_or_fail "openvpn --mktun failed"
done
E2E_ON_EXIT="openvpn --rmtun --dev ${MP_DEV[udp]} --dev-type tun >/dev/null 2>&1;
openvpn --rmtun --dev ${MP_DEV[tcp]} --dev-type tun >/dev/null 2>&1"
mp_server_start udp || { e2e_fail "the UDP server did not start"; e2e_finish; }
mp_server_start tcp || { e2e_fail "the TCP server did not start next to the UDP one"; e2e_finish; }
for name in udp tcp; do
	e2e_assert_match "$name: OpenVPN dropped privileges" "$(cat "${MP_LOG[$name]}")" 'UID set to nobody'
done
TU=${MP_DEV[udp]} TT=${MP_DEV[tcp]}

on() { mp_host_routes "$1" | grep -qx "$2"; }
routed() { # what dev address
	for _ in $(seq 1 50); do on "$2" "$3" && break; sleep 0.1; done
	on "$2" "$3" && e2e_pass "$1: $3/32 on $2" || e2e_fail "$1: no $3/32 on $2"
}
served() { # slot cert instance: its address
	mp_client_start "$1" "$2" "$3" "${MP_NULL[@]}"
	[ "$(e2e_client_wait "$1" 20)" = PUSH_REPLY ] && e2e_pushed_ifconfig "$1"
}

A=$(served a c0 udp)
B=$(served b c1 tcp)
e2e_assert_match "alpha over UDP, after the drop" "$A" "^$NET\\."
e2e_assert_match "bravo over TCP, after the drop" "$B" "^$NET\\."
[ "$A" != "$B" ] && e2e_pass "one address space: $A, $B" || e2e_fail "both were given ${A:-nothing}"
routed "alpha (keeper, after the drop)" "$TU" "$A"
routed "bravo (keeper, after the drop)" "$TT" "$B"

# SIGHUP of the UDP server: OpenVPN closes the plugin and opens it again as
# nobody; alpha comes back after it.  (served runs in a subshell, so its
# client's pid is not known here: stopped by its log path.)
pkill -f -- "--log $E2E_DIR/client-a.log"
for _ in $(seq 1 50); do pgrep -f -- "--log $E2E_DIR/client-a.log" >/dev/null || break; sleep 0.1; done
E2E_SERVER_PID=${MP_PID[udp]} E2E_SERVER_LOG=${MP_LOG[udp]} e2e_server_hup ||
	{ e2e_fail "the UDP server did not come back after SIGHUP"; e2e_finish; }
e2e_assert_match "the plugin opened again after the SIGHUP (OpenVPN is nobody now)" \
	"$(sed -n '/SIGHUP/,$p' "${MP_LOG[udp]}")" 'PLUGIN_INIT: POST.*vpnpool'
A2=$(served a2 c0 udp)
C=$(served c c2 udp)
e2e_assert_eq "alpha's sticky address after the SIGHUP" "$A2" "$A"
e2e_assert_match "charlie served after the SIGHUP" "$C" "^$NET\\."
[ -n "$C" ] && [ "$C" != "$A" ] && [ "$C" != "$B" ] &&
	e2e_pass "charlie's $C is held by nobody else" || e2e_fail "charlie was given ${C:-nothing} (alpha $A, bravo $B)"
routed "charlie (after the SIGHUP)" "$TU" "$C"
live=$(vp status --json | jq -r '[.instances[].name] | sort | join(",")')
e2e_assert_eq "status: both instances live after the SIGHUP" "$live" "tcp,udp"

# logrotate's "create": the shared usage log is moved away; the TCP server
# writes the next connect to a new file at the same path.
mv "$E2E_DIR/usage.log" "$E2E_DIR/usage.log.1"
sleep 1.2
D=$(served d c3 tcp)
e2e_assert_match "delta over TCP after the rotation" "$D" "^$NET\\."
found=$(e2e_wait_log "$E2E_DIR/usage.log" 5 "event=connect identity=delta .*instance=tcp")
e2e_assert_eq "the usage log reopened at its path with delta's connect" "$found" found
grep -q "identity=delta" "$E2E_DIR/usage.log.1" && e2e_fail "delta's line went to the moved file" ||
	e2e_pass "nothing written to the moved file after the rotation"
dups=$(vp leases --json --online | mp_json_dups)
e2e_assert_eq "no address held twice" "$dups" ""
e2e_finish

#!/usr/bin/env bash
# The data path with several instances on one tun network
# (openvpn-plugin-vpnpool(8), host-routes): a UDP server (instance=udp) and a
# TCP server (instance=tcp) carry the same 10.x.0.0/16 on two tuns, so the
# host can only route to a client through the /32 host route its instance
# adds.  Two real clients with real tun devices, each in a network namespace
# of its own (a veth pair to the host), one per server; the host forwards.
# Checks: each client's /32 is on its server's tun (and not on the other);
# the clients ping each other's tunnel address through the host; a client
# that moves from UDP to TCP keeps its address, its route moves to the TCP
# tun, and the end of its older UDP session removes nothing; a session's end
# removes its route.
# MP_CONTROL=1: two state-dirs, no instance names (no host routes): the
# checks must fail.
: "${E2E_TIMEOUT:=300}"
# In a network namespace of its own (tuns, host routes and sysctls stay
# out of the host's; lo is brought up for the servers on 127.0.0.1).
if [ -z "${MULTI_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
	MULTI_NETNS=1 exec unshare --net -- "${BASH:-bash}" "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multilib.sh"
mp_require
command -v ping >/dev/null || e2e_skip_or_fail "ping not installed (iputils-ping; scripts/deps.sh installs it)"
NSA="vpa$$" NSB="vpb$$"
ip netns add "$NSA" 2>/dev/null || e2e_skip_or_fail "cannot make a network namespace (ip netns add)"
ip netns del "$NSA"
NET=10.$((64 + $$ % 120))
# A /30 per namespace: host .1/.5, namespaces .2/.6.
LNK=192.168.$((100 + $$ % 100))
FWD=$(sysctl -n net.ipv4.ip_forward)
E2E_ON_EXIT="ip netns del $NSA 2>/dev/null; ip netns del $NSB 2>/dev/null
ip link del vpa$$h 2>/dev/null; ip link del vpb$$h 2>/dev/null
[ \"$FWD\" = 1 ] || sysctl -qw net.ipv4.ip_forward=0"
setup_ns() { # ns host-veth host-addr ns-addr
	ip netns add "$1" &&
	ip link add "$2" type veth peer name "${2%h}n" &&
	ip link set "${2%h}n" netns "$1" &&
	ip addr add "$3/30" dev "$2" && ip link set "$2" up &&
	ip -n "$1" addr add "$4/30" dev "${2%h}n" &&
	ip -n "$1" link set "${2%h}n" up && ip -n "$1" link set lo up
}
setup_ns "$NSA" "vpa$$h" "$LNK.1" "$LNK.2" && setup_ns "$NSB" "vpb$$h" "$LNK.5" "$LNK.6" ||
	e2e_skip_or_fail "cannot set up the namespaces and veth pairs"
sysctl -qw net.ipv4.ip_forward=1

e2e_pki alpha bravo || e2e_finish
e2e_vpnpool_conf "
pool \"p\" { network = \"$NET.0.0/16\" }"
MP_LOCAL=	# the servers listen on every address (the clients come over the veths)
mp_instance udp udp
mp_instance tcp tcp-server
MP_SNIPPET="topology subnet
server $NET.0.0 255.255.0.0 nopool
verb 3"
mp_control_confs
mp_server_start udp || { e2e_fail "the UDP server did not start"; e2e_finish; }
mp_server_start tcp || { e2e_fail "the TCP server did not start next to the UDP one"; e2e_finish; }
TU=${MP_DEV[udp]} TT=${MP_DEV[tcp]}

# A client with a real tun (tun0 of its namespace), addresses and routes set.
client() { # slot cert instance ns remote
	MP_CLIENT_NETNS=$4 MP_REMOTE=$5 mp_client_start "$1" "$2" "$3" --dev tun0 --dev-type tun
}
client a c0 udp "$NSA" "$LNK.1"
client b c1 tcp "$NSB" "$LNK.5"
e2e_assert_eq "alpha (namespace A) over UDP" "$(e2e_client_wait a 20)" PUSH_REPLY
e2e_assert_eq "bravo (namespace B) over TCP" "$(e2e_client_wait b 20)" PUSH_REPLY
A=$(e2e_pushed_ifconfig a) B=$(e2e_pushed_ifconfig b)
e2e_assert_match "alpha's address" "$A" "^$NET\\."
e2e_assert_match "bravo's address" "$B" "^$NET\\."
[ "$A" != "$B" ] && e2e_pass "two addresses: $A, $B" || e2e_fail "both clients got $A"
# The clients' own tun is up with it (a real data path on their side).
e2e_wait_log "$(e2e_client_log a)" 10 "Initialization Sequence Completed" >/dev/null
e2e_wait_log "$(e2e_client_log b)" 10 "Initialization Sequence Completed" >/dev/null
e2e_assert_match "alpha's tun0 holds $A" "$(ip -n "$NSA" -4 addr show dev tun0 2>&1)" "inet $A/16"

on() { mp_host_routes "$1" | grep -qx "$2"; }
routes() { # what
	e2e_log "$1: host routes: $TU: $(mp_host_routes "$TU" | tr '\n' ' ')| $TT: $(mp_host_routes "$TT" | tr '\n' ' ')"
}
until_true() { # seconds command...
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do "$@" && return 0; sleep 0.1; done
	"$@"
}
both_routed() { on "$TU" "$A" && on "$TT" "$B"; }
until_true 5 both_routed
routes "both online"
on "$TU" "$A" && e2e_pass "ip route: $A/32 on the UDP tun $TU" || e2e_fail "ip route: no $A/32 on the UDP tun $TU"
on "$TT" "$B" && e2e_pass "ip route: $B/32 on the TCP tun $TT" || e2e_fail "ip route: no $B/32 on the TCP tun $TT"
on "$TT" "$A" && e2e_fail "ip route: $A/32 on the TCP tun too" || e2e_pass "ip route: no $A/32 on the TCP tun"
on "$TU" "$B" && e2e_fail "ip route: $B/32 on the UDP tun too" || e2e_pass "ip route: no $B/32 on the UDP tun"
e2e_assert_match "ip route get $B (the kernel's choice)" "$(ip -4 route get "$B" 2>&1)" "dev $TT( |$)"
e2e_assert_match "ip route get $A (the kernel's choice)" "$(ip -4 route get "$A" 2>&1)" "dev $TU( |$)"

ping_ok() { # what ns destination
	local out
	out=$(ip netns exec "$2" ping -n -c 3 -i 0.3 -W 3 "$3" 2>&1)
	if [[ $out =~ ([0-9]+)\ received ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]; then
		e2e_pass "$1: $(grep -o '[0-9]* packets transmitted.*loss' <<<"$out")"
	else
		e2e_fail "$1: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
	fi
}
ping_ok "ping alpha (UDP) -> bravo (TCP) $B through the host" "$NSA" "$B"
ping_ok "ping bravo (TCP) -> alpha (UDP) $A through the host" "$NSB" "$A"
# Control: without bravo's /32 the kernel takes one of the two /16s; when
# that is the UDP tun, the ping must fail (what passed above was the host
# route's doing).  The route is put back as it was.
line=$(ip -4 route show table all dev "$TT" | grep -m1 "^$B ")
if [ -n "$line" ] && ip route del $line dev "$TT"; then
	if [[ $(ip -4 route get "$B" 2>&1) =~ dev\ $TU( |$) ]]; then
		out=$(ip netns exec "$NSA" ping -n -c 2 -i 0.3 -W 2 "$B" 2>&1)
		[[ $out =~ \ 0\ received ]] && e2e_pass "control: without bravo's /32 the ping fails" ||
			e2e_fail "control: the ping to bravo passes without its /32: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
	else
		e2e_log "control skipped: without its /32, the kernel routes $B to $TT anyway"
	fi
	ip route add $line dev "$TT" || e2e_fail "could not put bravo's route back ($line)"
fi

# alpha moves to TCP: its UDP session ends 5 s after its exit notification
# (OpenVPN's delay), so for a while both sessions are live.
udp_ends=$(grep -c 'client-instance exiting' "${MP_LOG[udp]}")
e2e_client_stop a
client a2 c0 tcp "$NSA" "$LNK.1"
e2e_assert_eq "alpha again, over TCP" "$(e2e_client_wait a2 20)" PUSH_REPLY
e2e_assert_eq "alpha keeps its address on the other server" "$(e2e_pushed_ifconfig a2)" "$A"
e2e_wait_log "$(e2e_client_log a2)" 10 "Initialization Sequence Completed" >/dev/null
moved() { on "$TT" "$A" && ! on "$TU" "$A"; }
until_true 5 moved
routes "alpha moved"
moved && e2e_pass "ip route: $A/32 moved to the TCP tun" || e2e_fail "ip route: $A/32 not (only) on the TCP tun"
ping_ok "ping bravo -> alpha on TCP" "$NSB" "$A"
# The older session's end (the UDP server logs it) removes nothing of the new one.
until_true 10 eval '[ "$(grep -c "client-instance exiting" "${MP_LOG[udp]}")" -gt "$udp_ends" ]' ||
	e2e_fail "the UDP server did not end alpha's older session"
sleep 0.5
routes "alpha's older UDP session ended"
moved && e2e_pass "after the older UDP session ended: $A/32 still on the TCP tun only" ||
	e2e_fail "after the older UDP session ended: $A/32 not on the TCP tun (only)"
e2e_assert_eq "alpha's lease after its older session ended" \
	"$(vp leases --json | jq -r '.leases[] | select(.identity == "alpha") | "\(.state) \(.instance)"')" "online tcp"
ping_ok "ping alpha -> bravo, both on TCP" "$NSA" "$B"

# bravo leaves: its route goes (TCP: the server sees the end at once).
e2e_client_stop b
gone() { ! on "$TT" "$B"; }
until_true 5 gone
gone && e2e_pass "bravo's session ended: its /32 removed" || e2e_fail "bravo's session ended, $B/32 still on $TT"
on "$TT" "$A" && e2e_pass "alpha's /32 stays" || e2e_fail "alpha's /32 went with bravo's"
e2e_finish

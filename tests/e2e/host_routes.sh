#!/usr/bin/env bash
# host-routes = "yes" with a real OpenVPN that drops to `user nobody`, in a
# network namespace of its own (the routes never touch the host's table):
# each client's /32 and /128 and a router client's subnet are routed to the
# server's tun with protocol 86 while it is online and removed when it
# leaves; routes of ours left on the tun by an earlier run are removed at
# start, others are left; at stop the plugin removes its routes (the tun
# persists, made with --mktun, so only the plugin can have removed them).
# Adds and removals after the drop go through the keeper.
if [ -z "${HOST_ROUTES_NETNS:-}" ]; then
	if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
		HOST_ROUTES_NETNS=1 exec unshare --net -- "${BASH:-bash}" "$0" "$@"
	fi
fi
. "$(dirname "$0")/lib.sh"
e2e_require
command -v ip >/dev/null || e2e_skip_or_fail "ip (iproute2) not installed"
[ "${HOST_ROUTES_NETNS:-}" = 1 ] || e2e_skip_or_fail "cannot make a network namespace (unshare)"
getent passwd nobody >/dev/null && getent group nogroup >/dev/null ||
	e2e_skip_or_fail "needs a user nobody and a group nogroup"
ip link set lo up || e2e_skip_or_fail "cannot bring lo up in the namespace"

chmod 0755 "$E2E_DIR"
mknod "$E2E_DIR/tun" c 10 200 2>/dev/null && chmod 0600 "$E2E_DIR/tun" ||
	e2e_skip_or_fail "cannot make a tun device node (mknod)"
openvpn --mktun --dev "$E2E_DEV" --dev-type tun --dev-node "$E2E_DIR/tun" >/dev/null 2>&1 ||
	e2e_skip_or_fail "openvpn --mktun failed"
e2e_pki alice site1 || { e2e_fail "no certificates"; e2e_finish; }
e2e_vpnpool_conf 'host-routes = "yes"
pool "p" {
 network  = "10.8.0.0/24"
 network6 = "fd00:8::/64"
}
router-pool "sites" {
 network = "10.9.0.0/16"
 prefix  = 24
 match   = {"common_name=site*"}
}'
chmod 0644 "$E2E_DIR/vpnpool.conf"

# Ours (protocol 86) through the tun: "DST" lines, sorted.
ours() { { ip -4 route show proto 86 dev "$E2E_DEV"; ip -6 route show proto 86 dev "$E2E_DEV"; } |
	awk '{ print $1 }' | sort | tr '\n' ' '; }
until_true() { # SECONDS COMMAND...
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do "$@" && return 0; sleep 0.1; done
	"$@"
}
ours_is() { [ "$(ours)" = "$1" ]; }

# Left by an earlier run that was killed: ours goes, another's stays.
ip link set "$E2E_DEV" up
ip route add 10.8.0.77/32 dev "$E2E_DEV" proto 86
ip route add 10.8.0.78/32 dev "$E2E_DEV" proto static
e2e_server_start "topology subnet
server 10.8.0.0 255.255.255.0
server-ipv6 fd00:8::/64
user nobody
group nogroup
persist-tun
disable-dco
dev-node $E2E_DIR/tun
$(e2e_plugin_line)" || { e2e_fail "server did not start"; e2e_finish; }
E2E_ON_EXIT="openvpn --rmtun --dev $E2E_DEV --dev-type tun --dev-node $E2E_DIR/tun >/dev/null 2>&1"
e2e_assert_eq "start: ours left by an earlier run removed" "$(ours)" ""
e2e_assert_eq "start: another's left alone" \
	"$(ip -4 route show 10.8.0.78/32 dev "$E2E_DEV" proto static | awk '{ print $1 }')" 10.8.0.78
e2e_assert_eq "OpenVPN dropped privileges" "$(ps -o user= -p "$E2E_SERVER_PID")" nobody

e2e_client_start 0
e2e_client_start 1
e2e_assert_eq "alice outcome" "$(e2e_client_wait 0 20)" PUSH_REPLY
e2e_assert_eq "site1 outcome" "$(e2e_client_wait 1 20)" PUSH_REPLY
a4=$(e2e_pushed_ifconfig 0)
a6=$(e2e_pushed_ifconfig6 0 | cut -d/ -f1)
s4=$(e2e_pushed_ifconfig 1)
s6=$(e2e_pushed_ifconfig6 1 | cut -d/ -f1)
subnet=$(e2e_server_log | sed -n 's/.*client site1: .*routed subnet \([0-9./]*\).*/\1/p' | tail -n 1)
want=$(printf '%s\n' "$a4" "$a6" "$s4" "$s6" "$subnet" | sort | tr '\n' ' ')
until_true 5 ours_is "$want"
e2e_assert_eq "online: a route per address and routed subnet" "$(ours)" "$want"

e2e_client_stop --wait 0
want=$(printf '%s\n' "$s4" "$s6" "$subnet" | sort | tr '\n' ' ')
until_true 5 ours_is "$want"
e2e_assert_eq "alice left (after the drop): its routes removed" "$(ours)" "$want"

e2e_server_stop
e2e_assert_eq "stop: every route of ours removed, the tun persists" \
	"$(ours)$(ip link show "$E2E_DEV" >/dev/null 2>&1 && echo tun)" tun
e2e_assert_eq "plugin complaints in OpenVPN's log" \
	"$(cat "$E2E_DIR"/server.*.log | grep 'vpnpool: ' | grep -cE 'cannot|error' || true)" 0
e2e_finish

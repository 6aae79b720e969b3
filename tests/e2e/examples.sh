#!/usr/bin/env bash
# The shipped pair, examples/server.conf and examples/vpnpool.conf, as a user
# copies it: only paths, port and device are changed.  OpenVPN must start
# with it, and clients must get what the comments in the files promise: a
# static reservation of both families, a staff client (OU=Staff) from the
# staff range with IPv6, everyone else from the second pool, routers a /24
# each (the reserved one for site-paris) with iroutes, the route to the
# sites pushed to all; and `vpnpool check` must accept it and print the
# server lines the file uses.
. "$(dirname "$0")/lib.sh"
e2e_require
top=$(cd "$(dirname "$0")/../.." && pwd)
e2e_pki alice bob site-paris site-lyon || e2e_finish
e2e_issue staff1 staff1 clientAuth "OU=Staff" || e2e_finish

sed -e "s|^state-dir .*|state-dir = \"$E2E_DIR/state\"|" \
	-e "s|^usage-log .*|usage-log = \"$E2E_DIR/usage.log\"|" \
	"$top/examples/vpnpool.conf" >"$E2E_DIR/vpnpool.conf"
sed -e "s|^port .*|port $E2E_PORT\nlocal 127.0.0.1|" \
	-e "s|^dev tun$|dev $E2E_DEV\ndev-type tun|" \
	-e "s|^ca .*|ca $E2E_DIR/pki/ca.crt|" \
	-e "s|^cert .*|cert $E2E_DIR/pki/server.crt|" \
	-e "s|^key .*|key $E2E_DIR/pki/server.key|" \
	-e "s|^status .*|status $E2E_DIR/status.log 1|" \
	-e "s|^plugin .*|plugin $PLUGIN $E2E_DIR/vpnpool.conf|" \
	"$top/examples/server.conf" >"$E2E_DIR/server.conf"
e2e_assert_eq "paths replaced in the example server.conf" \
	"$(grep -c "$E2E_DIR" "$E2E_DIR/server.conf")" 5

out=$("$VPNPOOL_BIN" -c "$E2E_DIR/vpnpool.conf" check 2>&1)
e2e_assert_eq "vpnpool check of the example" "$?" 0
# The example's server lines are what check says the setup needs.
for line in "topology subnet" "server 10.8.0.0 255.255.0.0" "server-ipv6 fd00:8::/64" \
	"route 10.9.0.0 255.255.0.0" "route-ipv6 fd00:9::/48"; do
	case $out in *"    $line"*) e2e_pass "check prints '$line'" ;;
	*) e2e_fail "check does not print '$line': $out" ;; esac
	grep -q "^$line" "$E2E_DIR/server.conf" ||
		e2e_fail "examples/server.conf lacks '$line' that check asks for"
done

e2e_server_start || { e2e_fail "OpenVPN did not start with the example pair"; e2e_finish; }
for n in 0 1 2 3 staff1; do e2e_client_start "$n"; done
for n in 0 1 2 3 staff1; do
	e2e_assert_eq "client $n outcome" "$(e2e_client_wait "$n")" PUSH_REPLY
done

e2e_assert_eq "alice: her reservation" "$(e2e_pushed_ifconfig_full 0)" "10.8.0.50 255.255.0.0"
e2e_assert_eq "alice: her IPv6 reservation" "$(e2e_pushed_ifconfig6 0)" "fd00:8::50/64"
staff=$(e2e_pushed_ifconfig staff1)
e2e_assert_match "staff1 (OU=Staff): from the staff range" "$staff" '^10\.8\.([1-9]|[1-9][0-9]|1[01][0-9]|12[0-7])\.'
case $staff in 10.8.100.*) e2e_fail "staff1 got an excluded address $staff" ;;
*) e2e_pass "staff1: not from the excluded 10.8.100.0/24" ;; esac
e2e_assert_match "staff1: IPv6 from network6" "$(e2e_pushed_ifconfig6 staff1)" '^fd00:8::[0-9a-f:]+/64$'
for n in 1 2 3; do
	e2e_assert_match "client $n: from the everyone pool" "$(e2e_pushed_ifconfig "$n")" \
		'^10\.8\.(12[89]|1[3-9][0-9]|2[0-5][0-9])\.'
done
for n in 0 1 2 3 staff1; do
	e2e_assert_match "client $n: pushed the route to the sites" "$(e2e_push_options "$n")" \
		'(^|'$'\n'')route 10\.9\.0\.0 255\.255\.0\.0($|'$'\n'')'
done
e2e_wait_log "$E2E_SERVER_LOG" 5 "MULTI: Learn: 10.9.77.0/24 -> site-paris" >/dev/null
e2e_assert_match "site-paris: its reserved subnet learnt" "$(e2e_server_log)" \
	'MULTI: Learn: 10\.9\.77\.0/24 -> site-paris/'
e2e_assert_match "site-lyon: a /24 of the router space learnt" "$(e2e_server_log)" \
	'MULTI: Learn: 10\.9\.[0-9]+\.0/24 -> site-lyon/'
case $(e2e_server_log) in *"Learn: 10.9.77.0/24 -> site-lyon"*)
	e2e_fail "site-lyon got site-paris's reserved subnet" ;; esac

leases=$("$VPNPOOL_BIN" -c "$E2E_DIR/vpnpool.conf" leases --json)
e2e_assert_eq "leases --json: five online" \
	"$(printf '%s' "$leases" | jq '[.leases[] | select(.state == "online")] | length')" 5
e2e_assert_eq "leases --json: alice's address" \
	"$(printf '%s' "$leases" | jq -r '.leases[] | select(.identity == "alice") | .address')" 10.8.0.50

e2e_client_stop 0 1 2 3 staff1
e2e_server_stop
e2e_finish

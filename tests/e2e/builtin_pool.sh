#!/usr/bin/env bash
# The harness itself, with OpenVPN's own pool (no plugin): three clients get
# three distinct addresses of 10.8.0.0/24; a stopped client is seen gone by
# the server; the server stops cleanly.
. "$(dirname "$0")/lib.sh"
e2e_require --no-plugin
e2e_pki client0 'client one "quoted" $x;y=z' client2

e2e_server_start "topology subnet
server 10.8.0.0 255.255.255.0" || { e2e_fail "server did not start"; e2e_finish; }
e2e_pass "server up on 127.0.0.1:$E2E_PORT, dev $E2E_DEV"

for n in 0 1 2; do e2e_client_start $n; done
for n in 0 1 2; do e2e_assert_eq "client$n outcome" "$(e2e_client_wait $n)" PUSH_REPLY; done
addrs=()
for n in 0 1 2; do
	a=$(e2e_pushed_ifconfig $n)
	e2e_assert_match "client$n address $a in 10.8.0.0/24" "$a" \
		'^10\.8\.0\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$'
	e2e_assert_match "client$n push reply carries the subnet mask" \
		"$(e2e_pushed_ifconfig_full $n)" '^[0-9.]+ 255\.255\.255\.0$'
	addrs+=("$a")
done
e2e_assert_eq "distinct addresses" "$(printf '%s\n' "${addrs[@]}" | sort -u | grep -c .)" 3
e2e_assert_match "the quoted CN connected" "$(e2e_server_log)" \
	"client one \"quoted\" \\\$x;y=z/127\\.0\\.0\\.1:[0-9]+ SENT CONTROL"

pid=$E2E_CLIENT_1
e2e_client_stop --wait 1 && e2e_pass "server saw client1 leave" || e2e_fail "server did not see client1 leave"
e2e_assert_eq "client1 process" "$(kill -0 "$pid" 2>/dev/null && echo alive || echo gone)" gone
e2e_assert_match "client0 still connected" "$(e2e_server_log | tail -n 200)" "client0/127\\.0\\.0\\.1"

pid=$E2E_SERVER_PID
e2e_server_stop
e2e_assert_eq "server stopped" "$(kill -0 "$pid" 2>/dev/null && echo running || echo stopped)" stopped
e2e_finish

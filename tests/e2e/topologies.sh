#!/usr/bin/env bash
# net30 (a /30 per client), p2p (topology auto tells it from net30 by
# reading server.conf), "mode server" + "ifconfig" instead of "server",
# and duplicate-cn (each session its own address, the first keeps its own).
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_pki client0 client1 dup

e2e_vpnpool_conf 'pool "p" { network = "10.8.0.0/24" }'
e2e_server_conf "topology net30
server 10.8.0.0 255.255.255.0 nopool
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "net30 server did not start"; e2e_finish; }
# Logged at UP, before any client.
e2e_assert_match "pool sizes logged at start" \
	"$(e2e_server_log | grep -o 'vpnpool: pool p: 10\.8\.0\.0/24, size [0-9]*')" \
	'^vpnpool: pool p: 10\.8\.0\.0/24, size [0-9]+$'
e2e_client_start 0; e2e_client_start 1
for n in 0 1; do e2e_assert_eq "net30 client$n outcome" "$(e2e_client_wait $n)" PUSH_REPLY; done
got="$(e2e_pushed_ifconfig_full 0) / $(e2e_pushed_ifconfig_full 1)"
e2e_assert_match "net30: a /30 each, client address first" "$got" \
	'^10\.8\.0\.(6 10\.8\.0\.5 / 10\.8\.0\.10 10\.8\.0\.9|10 10\.8\.0\.9 / 10\.8\.0\.6 10\.8\.0\.5)$'
e2e_client_stop 0; e2e_client_stop 1
e2e_server_stop

# p2p: OpenVPN's env is the same as net30's; topology "auto" reads server.conf.
rm -rf "$E2E_DIR/state"
e2e_server_conf "topology p2p
server 10.8.0.0 255.255.255.0 nopool
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "p2p server did not start"; e2e_finish; }
e2e_client_start 0
e2e_assert_eq "p2p client0 outcome" "$(e2e_client_wait 0)" PUSH_REPLY
e2e_assert_match "p2p (auto, from server.conf): ifconfig A SERVER_LOCAL" \
	"$(e2e_pushed_ifconfig_full 0)" '^10\.8\.0\.([3-9]|[1-9][0-9]+) 10\.8\.0\.1$'
e2e_assert_eq "p2p: OpenVPN pushed topology p2p" "$(e2e_push_options 0 | grep '^topology')" \
	"topology p2p"
e2e_assert_match "p2p: the plugin says so" "$(e2e_server_log | grep -c 'vpnpool: topology p2p, ')" \
	'^[1-9]'
e2e_client_stop 0
e2e_server_stop

rm -rf "$E2E_DIR/state"
e2e_server_conf "mode server
tls-server
topology subnet
ifconfig 10.8.0.1 255.255.255.0
push \"topology subnet\"
duplicate-cn
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "mode server + ifconfig did not start"; e2e_finish; }
e2e_client_start 2
e2e_assert_eq "first dup session" "$(e2e_client_wait 2)" PUSH_REPLY
first=$(e2e_pushed_ifconfig 2)
E2E_CLIENT_first=$E2E_CLIENT_2
e2e_client_start 2
e2e_assert_eq "second dup session" "$(e2e_client_wait 2)" PUSH_REPLY
second=$(e2e_pushed_ifconfig 2)
e2e_assert_eq "first session's address" "$first" 10.8.0.2
e2e_assert_eq "second session's own address" "$second" 10.8.0.3
e2e_client_stop 2
e2e_wait_usage 1 'event=disconnect identity=dup ' || e2e_fail "no disconnect logged"
E2E_CLIENT_2=$E2E_CLIENT_first
e2e_client_stop 2
e2e_wait_usage 2 'event=disconnect identity=dup ' || e2e_fail "no second disconnect logged"
e2e_client_start 0
e2e_assert_eq "another client" "$(e2e_client_wait 0)" PUSH_REPLY
e2e_assert_eq "gets the second session's freed address" "$(e2e_pushed_ifconfig 0)" 10.8.0.3
e2e_client_start 2
e2e_assert_eq "dup again" "$(e2e_client_wait 2)" PUSH_REPLY
e2e_assert_eq "first session's address is still dup's" "$(e2e_pushed_ifconfig 2)" 10.8.0.2
e2e_finish

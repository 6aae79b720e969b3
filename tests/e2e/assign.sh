#!/usr/bin/env bash
# Distinct addresses, exhaustion refused with AUTH_FAILED while the server
# goes on, reuse of freed addresses, stickiness across reconnect, restart and
# SIGHUP, static reservation, hostile common names; the usage log's start,
# stop and warn-at lines.
. "$(dirname "$0")/lib.sh"
e2e_require
HOSTILE='evil "cn" $(x);=\ end'
e2e_pki client0 client1 client2 client3 client4 alice "$HOSTILE"
e2e_vpnpool_conf '
warn-at = {50, 100}
pool "small" {
    network = "10.8.0.0/24"
    range   = "10.8.0.10-10.8.0.13"
}
client "alice" { address = "10.8.0.50" }'
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start"; e2e_finish; }
U=$E2E_DIR/usage.log
# A usage line without its time.
usage_line() { sed -n "$1p" "$U" | cut -d' ' -f2-; }
e2e_wait_usage 1 ' event=start ' || e2e_fail "no start logged"
e2e_assert_eq "the usage log starts with the plugin's start" "$(usage_line 1)" \
	"event=start config=$E2E_DIR/vpnpool.conf leases=0"

declare -A got
for n in 0 1 2 3; do e2e_client_start $n; done
for n in 0 1 2 3; do
	e2e_assert_eq "client$n outcome" "$(e2e_client_wait $n)" PUSH_REPLY
	got[$n]=$(e2e_pushed_ifconfig $n)
	e2e_assert_match "client$n address ${got[$n]} in range" "${got[$n]}" '^10\.8\.0\.1[0-3]$'
	e2e_assert_match "client$n gets the server netmask" "$(e2e_pushed_ifconfig_full $n)" ' 255\.255\.255\.0$'
done
e2e_assert_eq "distinct addresses" "$(printf '%s\n' "${got[@]}" | sort -u | wc -l)" 4

# warn-at 50 and 100 of 4 addresses: crossed by the 2nd and the 4th connect,
# each warning right after its connect, with the fields of openvpn-plugin-vpnpool(8).
e2e_wait_usage 2 ' event=warn ' || e2e_fail "no warnings logged"
e2e_assert_eq "usage log: connects and warnings in order" \
	"$(grep -E ' event=(connect|warn) ' "$U" | head -n 6 | sed 's/.* event=\([a-z]*\) .*in_use=\([0-9]*\).*/\1:\2/' | tr '\n' ' ')" \
	"connect:1 connect:2 warn:2 connect:3 connect:4 warn:4 "
e2e_assert_eq "usage log: the 50% warning" "$(grep ' event=warn ' "$U" | head -n 1 | cut -d' ' -f2-)" \
	"event=warn pool=small in_use=2 size=4 percent=50"
e2e_assert_eq "usage log: the 100% warning" "$(grep ' event=warn ' "$U" | sed -n 2p | cut -d' ' -f2-)" \
	"event=warn pool=small in_use=4 size=4 percent=100"
e2e_assert_eq "usage log: each threshold once" "$(grep -c ' event=warn ' "$U")" 2
e2e_assert_match "OpenVPN's log has the 50% warning" "$(e2e_server_log)" \
	'vpnpool: pool small is 50% full: 2 of 4 addresses in use'
e2e_assert_match "OpenVPN's log has the 100% warning" "$(e2e_server_log)" \
	'vpnpool: pool small is 100% full: 4 of 4 addresses in use'

# The pool is full: a fifth client is refused, not let in without an address.
e2e_client_start 4
e2e_assert_eq "client4 (pool full) outcome" "$(e2e_client_wait 4)" AUTH_FAILED
e2e_assert_match "server log names pool, size and client" "$(e2e_server_log)" \
	'pool small is exhausted \(4 of 4 in use, nothing reclaimable\): refusing client client4'
e2e_assert_match "usage log has the reject" "$(cat "$E2E_DIR/usage.log")" \
	'event=reject identity=client4 reason=exhausted pool=small in_use=4 size=4'
kill -0 "$E2E_SERVER_PID" && e2e_pass "server still running" || e2e_fail "server died"

# A reserved client still gets its address; a hostile CN is served safely.
e2e_client_start 5
e2e_assert_eq "alice outcome" "$(e2e_client_wait 5)" PUSH_REPLY
e2e_assert_eq "alice's reserved address" "$(e2e_pushed_ifconfig 5)" 10.8.0.50

# Freed (held, hold-time 0) addresses are reused by the next client.
e2e_client_stop 1
e2e_wait_usage 1 'event=disconnect identity=client1 ' || e2e_fail "no disconnect logged for client1"
e2e_assert_match "disconnect line has duration and bytes" "$(grep 'event=disconnect identity=client1 ' "$E2E_DIR/usage.log")" \
	"pool=small address=${got[1]} duration=[0-9]+ bytes_received=[0-9]+ bytes_sent=[0-9]+"
e2e_client_start 4
e2e_assert_eq "client4 retry outcome" "$(e2e_client_wait 4)" PUSH_REPLY
e2e_assert_eq "client4 reuses client1's address" "$(e2e_pushed_ifconfig 4)" "${got[1]}"
e2e_assert_match "usage log has the reclaim" "$(cat "$E2E_DIR/usage.log")" \
	"event=reclaim identity=client4 pool=small address=${got[1]//./\\.} from=client1"

# Sticky: a reconnecting client gets its address back.
e2e_client_stop 0
e2e_wait_usage 1 'event=disconnect identity=client0 ' || e2e_fail "no disconnect logged for client0"
e2e_client_start 0
e2e_assert_eq "client0 reconnect outcome" "$(e2e_client_wait 0)" PUSH_REPLY
e2e_assert_eq "client0 sticky after reconnect" "$(e2e_pushed_ifconfig 0)" "${got[0]}"

# ... and after a server restart.
for n in 0 2 3 4 5; do e2e_client_stop $n; done
e2e_server_stop
# client0, 2, 3, 4 (which took client1's) and alice's reservation.
e2e_assert_eq "usage log ends with the plugin's stop" "$(usage_line '$')" "event=stop leases=5"
e2e_server_start || { e2e_fail "server did not restart"; e2e_finish; }
e2e_wait_usage 2 ' event=start ' || e2e_fail "no second start logged"
e2e_assert_eq "the restart's start line counts the stored leases" \
	"$(grep ' event=start ' "$U" | sed -n 2p | cut -d' ' -f2-)" "event=start config=$E2E_DIR/vpnpool.conf leases=5"
e2e_client_start 3
e2e_assert_eq "client3 after restart outcome" "$(e2e_client_wait 3)" PUSH_REPLY
e2e_assert_eq "client3 sticky across restart" "$(e2e_pushed_ifconfig 3)" "${got[3]}"

e2e_client_start 6
e2e_assert_eq "hostile CN outcome" "$(e2e_client_wait 6)" PUSH_REPLY
e2e_assert_match "hostile CN gets a pool address" "$(e2e_pushed_ifconfig 6)" '^10\.8\.0\.1[0-3]$'
# Only what OpenVPN sends by itself and the plugin's one ifconfig (the
# server has no push lines): an option smuggled in by the CN would show.
opts=$(e2e_push_options 6)
e2e_assert_eq "hostile CN: one ifconfig in the push reply" "$(grep -c '^ifconfig ' <<<"$opts")" 1
e2e_assert_eq "hostile CN: no option the server did not configure" \
	"$(grep -vE '^(route-gateway 10\.8\.0\.1|topology subnet|ping 2|ping-restart 10|ifconfig 10\.8\.0\.1[0-3] 255\.255\.255\.0|peer-id [0-9]+|cipher [A-Z0-9-]+|protocol-flags [a-z -]+|tun-mtu [0-9]+|key-derivation [a-z-]+)$' <<<"$opts")" ""
e2e_assert_match "hostile CN: the push reply is OpenVPN's usual" "$opts" 'route-gateway 10\.8\.0\.1'

# Sticky across SIGHUP: OpenVPN closes and re-opens the plugin, the clients
# reconnect and get the addresses they had.
a3=$(e2e_pushed_ifconfig 3)
a6=$(e2e_pushed_ifconfig 6)
starts=$(grep -c ' event=start ' "$U")
e2e_server_hup || { e2e_fail "server did not come back after SIGHUP"; e2e_finish; }
e2e_assert_eq "client3 after SIGHUP outcome" "$(e2e_client_wait 3 20)" PUSH_REPLY
e2e_assert_eq "hostile CN after SIGHUP outcome" "$(e2e_client_wait 6 20)" PUSH_REPLY
e2e_assert_eq "client3 sticky across SIGHUP" "$(e2e_pushed_ifconfig 3)" "$a3"
e2e_assert_eq "client3's address is still the one of the first start" "$a3" "${got[3]}"
e2e_assert_eq "hostile CN sticky across SIGHUP" "$(e2e_pushed_ifconfig 6)" "$a6"
e2e_assert_eq "the plugin was reloaded: one more start in the usage log" "$(grep -c ' event=start ' "$U")" $((starts + 1))
e2e_assert_eq "... after a stop" "$(grep -E ' event=(start|stop) ' "$U" | tail -n 2 | cut -d' ' -f2 | tr '\n' ' ')" "event=stop event=start "
e2e_assert_match "hostile CN escaped in the usage log" "$(cat "$E2E_DIR/usage.log")" \
	'identity="evil \\"cn\\" \$\(x\);=\\\\ end"'
e2e_assert_eq "every usage line is logfmt starting with time=" \
	"$(grep -vc '^time=[0-9T:Z-]* event=[a-z]* ' "$E2E_DIR/usage.log")" 0
e2e_finish

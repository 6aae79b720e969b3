#!/usr/bin/env bash
# Distinct addresses, exhaustion refused with AUTH_FAILED while the server
# goes on, reuse of freed addresses, stickiness across reconnect and restart,
# static reservation, hostile common names.
. "$(dirname "$0")/lib.sh"
e2e_require
HOSTILE='evil "cn" $(x);=\ end'
e2e_pki client0 client1 client2 client3 client4 alice "$HOSTILE"
e2e_vpnpool_conf '
pool "small" {
    network = "10.8.0.0/24"
    range   = "10.8.0.10-10.8.0.13"
}
client "alice" { address = "10.8.0.50" }'
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start"; e2e_finish; }

declare -A got
for n in 0 1 2 3; do e2e_client_start $n; done
for n in 0 1 2 3; do
	e2e_assert_eq "client$n outcome" "$(e2e_client_wait $n)" PUSH_REPLY
	got[$n]=$(e2e_pushed_ifconfig $n)
	e2e_assert_match "client$n address ${got[$n]} in range" "${got[$n]}" '^10\.8\.0\.1[0-3]$'
	e2e_assert_match "client$n gets the server netmask" "$(e2e_pushed_ifconfig_full $n)" ' 255\.255\.255\.0$'
done
e2e_assert_eq "distinct addresses" "$(printf '%s\n' "${got[@]}" | sort -u | wc -l)" 4

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
e2e_server_start || { e2e_fail "server did not restart"; e2e_finish; }
e2e_client_start 3
e2e_assert_eq "client3 after restart outcome" "$(e2e_client_wait 3)" PUSH_REPLY
e2e_assert_eq "client3 sticky across restart" "$(e2e_pushed_ifconfig 3)" "${got[3]}"

e2e_client_start 6
e2e_assert_eq "hostile CN outcome" "$(e2e_client_wait 6)" PUSH_REPLY
e2e_assert_match "hostile CN gets a pool address" "$(e2e_pushed_ifconfig 6)" '^10\.8\.0\.1[0-3]$'
e2e_assert_eq "push reply has no injected option" "$(e2e_push_reply 6 | grep -c 'x)')" 0
e2e_assert_match "hostile CN escaped in the usage log" "$(cat "$E2E_DIR/usage.log")" \
	'identity="evil \\"cn\\" \$\(x\);=\\\\ end"'
e2e_assert_eq "every usage line is logfmt starting with time=" \
	"$(grep -vc '^time=[0-9T:Z-]* event=[a-z]* ' "$E2E_DIR/usage.log")" 0
e2e_finish

#!/usr/bin/env bash
# Moving from OpenVPN's own pool: a server without the plugin hands out
# addresses and writes its ifconfig-pool-persist file; vpnpool import reads
# that very file (plus hand-made lines it must report as FILE:LINE: why, exit
# 1); the server restarted with the plugin gives every client the address it
# had, whatever the order they come back in.  Then vpnpool release: a held
# lease ends (exit 0, the address is free), a second release says there is no
# lease (exit 1) and changes nothing.
. "$(dirname "$0")/lib.sh"
e2e_require
[ -x "$VPNPOOL_BIN" ] || e2e_skip_or_fail "command not built: $VPNPOOL_BIN"
command -v jq >/dev/null || e2e_skip_or_fail "jq not installed (scripts/deps.sh installs it)"
e2e_pki carol bob alice dave
e2e_vpnpool_conf 'pool "staff" {
    network = "10.8.0.0/24"
    range   = "10.8.0.2-10.8.0.100"
}'
CONF=$E2E_DIR/vpnpool.conf
IPP=$E2E_DIR/ipp.txt
vp() { "$VPNPOOL_BIN" -c "$CONF" "$@"; }
address_of() { vp leases --json | jq -r --arg id "$1" '.leases[] | select(.identity == $id) | .address'; }

# OpenVPN's own pool, in the order carol, bob, alice.
e2e_server_start "topology subnet
server 10.8.0.0 255.255.255.0
ifconfig-pool-persist $IPP 1" || { e2e_fail "server without the plugin did not start"; e2e_finish; }
declare -A had
for n in 0 1 2; do
	e2e_client_start $n
	e2e_assert_eq "client $n on OpenVPN's pool" "$(e2e_client_wait $n)" PUSH_REPLY
	had[$n]=$(e2e_pushed_ifconfig $n)
done
e2e_client_stop --wait 0 1 2
e2e_server_stop
e2e_assert_eq "OpenVPN wrote one line per client" "$(grep -c , "$IPP")" 3
e2e_assert_match "OpenVPN 2.6 writes CN,IPv4, (empty IPv6)" "$(grep '^alice,' "$IPP")" '^alice,10\.8\.0\.[0-9]+,$'

# What an operator might have added by hand.
printf '%s\r\n' "dave,10.9.9.9," "eve,${had[2]}," "no comma here" >>"$IPP"
out=$(vp import "$IPP" 2>"$E2E_DIR/import.err"); rc=$?
e2e_assert_eq "import with reported lines: exit" "$rc" 1
e2e_assert_eq "import: summary" "$out" "imported 3 leases from $IPP, 3 lines skipped"
e2e_assert_eq "import: the reports" "$(cat "$E2E_DIR/import.err")" \
"$IPP:4: dave: cannot import 10.9.9.9: outside every pool
$IPP:5: eve: cannot import ${had[2]}: leased to another identity
$IPP:6: \`no comma here' has no comma: expected CN,IPv4[,IPv6]"
names=(carol bob alice)
for n in 0 1 2; do
	e2e_assert_eq "import: ${names[$n]} holds its OpenVPN address" "$(address_of "${names[$n]}")" "${had[$n]}"
done
e2e_assert_eq "import: all held" "$(vp leases --json | jq -r '[.leases[].state] | unique | join(",")')" held
out=$(vp import "$IPP" 2>"$E2E_DIR/import2.err"); rc=$?
e2e_assert_eq "import again: exit" "$rc" 1
e2e_assert_eq "import again: nothing imported" "$out" "imported 0 leases from $IPP, 6 lines skipped"
e2e_assert_eq "import again: alice already has one" \
	"$(grep -cFx "$IPP:3: alice: cannot import ${had[2]}: it already has a lease" "$E2E_DIR/import2.err")" 1

# With the plugin, back in the other order: each gets its address again.
e2e_server_start "topology subnet
server 10.8.0.0 255.255.255.0 nopool
$(e2e_plugin_line)" || { e2e_fail "server with the plugin did not start"; e2e_finish; }
for n in 2 1 0; do
	e2e_client_start $n
	e2e_assert_eq "client $n with the plugin" "$(e2e_client_wait $n)" PUSH_REPLY
	e2e_assert_eq "${names[$n]} got its old address back" "$(e2e_pushed_ifconfig $n)" "${had[$n]}"
done
e2e_client_stop --wait 0 1 2
e2e_server_stop

# release: ends a held lease; then there is none to end.
out=$(vp release alice 2>&1); rc=$?
e2e_assert_eq "release alice: exit" "$rc" 0
e2e_assert_eq "release alice: message" "$out" "released the held lease of alice"
e2e_assert_eq "release alice: lease gone" "$(address_of alice)" ""
e2e_assert_eq "release alice: the others stay" "$(vp leases --json | jq -r '.count')" 2
out=$(vp release alice 2>&1); rc=$?
e2e_assert_eq "release again: exit" "$rc" 1
e2e_assert_eq "release again: message" "$out" "vpnpool: release: alice has no lease; nothing changed"
out=$(vp release 2>&1); rc=$?
e2e_assert_eq "release without identity: exit" "$rc" 2
# alice's address is free: dave, new, is given it (lowest free address).
e2e_server_start || { e2e_fail "server did not restart"; e2e_finish; }
e2e_client_start 3
e2e_assert_eq "dave connects" "$(e2e_client_wait 3)" PUSH_REPLY
e2e_assert_eq "dave gets alice's released address" "$(e2e_pushed_ifconfig 3)" "${had[2]}"
e2e_finish

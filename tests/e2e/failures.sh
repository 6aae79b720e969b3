#!/usr/bin/env bash
# An invalid config stops OpenVPN at start with FILE:LINE; a second server
# on the same state directory is refused.
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_pki client0

e2e_vpnpool_conf '
pool "p" {
    network = "10.8.0.0/24"
    range   = "10.9.0.1-10.9.0.9"
}'
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
$(e2e_plugin_line)"
if e2e_server_start; then
	e2e_fail "server started with an invalid vpnpool.conf"
else
	e2e_pass "server refused to start"
fi
e2e_assert_match "OpenVPN's log names file, line and problem" "$(e2e_server_log)" \
	"vpnpool: $E2E_DIR/vpnpool.conf:6: range 10\\.9\\.0\\.1-10\\.9\\.0\\.9 is not inside network 10\\.8\\.0\\.0/24"

e2e_vpnpool_conf 'pool "p" { network = "10.8.0.0/24" }'
e2e_server_start || e2e_fail "first server did not start"
first=$E2E_SERVER_PID
E2E_SERVER_PID=
sed -i "s/^port .*/port $(e2e_free_port)/; s/^dev vp.*/dev vq$$/; s/^writepid .*//" "$E2E_DIR/server.conf"
if e2e_server_start; then
	e2e_fail "a second server started on the same state-dir"
else
	e2e_pass "second server refused"
fi
e2e_assert_match "the refusal says why" "$(e2e_server_log)" \
	"state directory $E2E_DIR/state is in use by another process \\(pid $first\\)"
E2E_SERVER_PID=$first
e2e_client_start 0
e2e_assert_eq "first server still serves" "$(e2e_client_wait 0)" PUSH_REPLY
e2e_finish

#!/usr/bin/env bash
# An invalid config stops OpenVPN at start with FILE:LINE; a second server
# on the same state directory under the instance name of a live one is
# refused, naming its pid; so is a journal of a newer format, saying the
# versions and what to do, and the command says the same.
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
# run_server NAME: OpenVPN in the foreground (a hang ends after 30 s with
# timeout's 124); prints its exit status, logs to server-NAME.log.
run_server() {
	local rc=0
	timeout 30 openvpn --config "$E2E_DIR/server.conf" --log "$E2E_DIR/server-$1.log" \
		</dev/null >/dev/null 2>&1 || rc=$?
	echo "$rc"
}
e2e_assert_eq "invalid vpnpool.conf: OpenVPN exits with status 1" "$(run_server badconf)" 1
e2e_assert_match "OpenVPN's log names file, line and problem" "$(cat "$E2E_DIR/server-badconf.log")" \
	"vpnpool: $E2E_DIR/vpnpool.conf:6: range 10\\.9\\.0\\.1-10\\.9\\.0\\.9 is not inside network 10\\.8\\.0\\.0/24"
e2e_assert_eq "invalid vpnpool.conf: never came up" \
	"$(grep -c 'Initialization Sequence Completed' "$E2E_DIR/server-badconf.log")" 0

e2e_vpnpool_conf 'pool "p" { network = "10.8.0.0/24" }'
e2e_server_start || e2e_fail "first server did not start"
first=$E2E_SERVER_PID
E2E_SERVER_PID=
# Its instance is named by its tun device; a second OpenVPN told that name
# (instance= on the plugin line) while the first runs is refused.
name=$(sed -n 's/^dev \(vp.*\)/\1/p' "$E2E_DIR/server.conf")
sed -i "s/^port .*/port $(e2e_free_port)/; s/^dev vp.*/dev vq$$/; s/^writepid .*//" "$E2E_DIR/server.conf"
sed -i "s|^plugin .*|& instance=$name|" "$E2E_DIR/server.conf"
e2e_assert_eq "a second server of a live instance's name exits with status 1" "$(run_server second)" 1
e2e_assert_match "the refusal says why" "$(cat "$E2E_DIR/server-second.log")" \
	"instance $name is already running on state directory $E2E_DIR/state \\(pid $first\\)"
e2e_assert_eq "the second server never came up" \
	"$(grep -c 'Initialization Sequence Completed' "$E2E_DIR/server-second.log")" 0
E2E_SERVER_PID=$first
e2e_client_start 0
e2e_assert_eq "first server still serves" "$(e2e_client_wait 0)" PUSH_REPLY
e2e_client_stop 0
e2e_server_stop

# A journal written by a newer vpnpool (format version 3) is left as it is.
J=$E2E_DIR/state/leases.journal
printf 'VPNPOOL1\003\000\000\000' >"$J"
sum=$(md5sum <"$J")
e2e_assert_eq "a journal of a newer format: OpenVPN exits with status 1" "$(run_server newer)" 1
e2e_assert_match "OpenVPN's log says file, versions and what to do" "$(cat "$E2E_DIR/server-newer.log")" \
	"vpnpool: $J is of format version 3; this plugin understands version 2: upgrade vpnpool, or move the file aside to start with no leases"
e2e_assert_eq "the newer journal is left as it is" "$(md5sum <"$J")" "$sum"
out=$("$VPNPOOL_BIN" -c "$E2E_DIR/vpnpool.conf" status 2>&1) && rc=0 || rc=$?
e2e_assert_eq "vpnpool status on it exits with status 1" "$rc" 1
e2e_assert_match "and says the same" "$out" \
	"$J is of format version 3; this vpnpool understands version 2: upgrade vpnpool, or move the file aside"
e2e_finish

#!/usr/bin/env bash
# Coexistence with OpenVPN's client-config-dir (CCD).  OpenVPN reads a
# client's CCD file before it calls the plugins' CLIENT_CONNECT, then applies
# the plugin's lines over it: the plugin's ifconfig-push wins over the CCD
# file's, the CCD file's other options (push lines) stay.
# Checks, on what the client receives (PUSH_REPLY) and what OpenVPN learns:
# a CCD ifconfig-push is replaced by the pool's address, and by the client's
# vpnpool reservation; a client with CCD ifconfig-push is still refused when
# its pool is full (the CCD address is not a fall-back); a CCD `disable`
# refuses the client before vpnpool is asked (nothing in the usage log);
# with `ccd-exclusive` a client without a CCD file is refused by OpenVPN
# before vpnpool is asked, and one with a file is served by vpnpool, also with
# OpenVPN's own pool on (no `nopool`).
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_pki withccd reserved noccd filler full disabled
CCD=$E2E_DIR/ccd
mkdir -p "$CCD"
printf 'ifconfig-push 10.8.0.77 255.255.255.0\npush "dhcp-option DNS 10.8.0.1"\n' >"$CCD/withccd"
printf 'ifconfig-push 10.8.0.78 255.255.255.0\n' >"$CCD/reserved"
printf 'ifconfig-push 10.8.0.79 255.255.255.0\n' >"$CCD/full"
printf 'disable\n' >"$CCD/disabled"
e2e_vpnpool_conf '
pool "small" {
    network = "10.8.0.0/24"
    range   = "10.8.0.10-10.8.0.12"
}
client "reserved" { address = "10.8.0.50" }'
U=$E2E_DIR/usage.log
usage_lines() { wc -l <"$U"; }
learned() { # ADDRESS: how often OpenVPN learned it as a client's address
	e2e_server_log | grep -c "MULTI: Learn: ${1//./\\.} -> "
}

# ---- phase 1: client-config-dir, nopool -------------------------------------
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
client-config-dir $CCD
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start"; e2e_finish; }

e2e_client_start 0
e2e_client_start 1
e2e_assert_eq "CCD client outcome" "$(e2e_client_wait 0)" PUSH_REPLY
e2e_assert_eq "CCD + reservation outcome" "$(e2e_client_wait 1)" PUSH_REPLY
W=$(e2e_pushed_ifconfig 0)
e2e_assert_match "CCD client gets the pool's address ($W), not the CCD file's 10.8.0.77" "$W" '^10\.8\.0\.1[0-2]$'
e2e_assert_eq "CCD client: one ifconfig in the push reply" "$(e2e_push_options 0 | grep -c '^ifconfig ')" 1
e2e_assert_eq "CCD client: the CCD file's push line is kept" \
	"$(e2e_push_options 0 | grep -c '^dhcp-option DNS 10\.8\.0\.1$')" 1
e2e_assert_eq "CCD + reservation: the reservation wins over 10.8.0.78" "$(e2e_pushed_ifconfig 1)" 10.8.0.50
e2e_assert_eq "OpenVPN never learned the CCD addresses" "$(learned 10.8.0.77)$(learned 10.8.0.78)" 00
e2e_assert_eq "OpenVPN learned the pool's address" "$(learned "$W")" 1

# The pool (3 addresses) filled: a CCD ifconfig-push is no way around it.
e2e_client_start 2
e2e_client_start 3
e2e_assert_eq "client without CCD outcome" "$(e2e_client_wait 2)" PUSH_REPLY
e2e_assert_eq "filler outcome" "$(e2e_client_wait 3)" PUSH_REPLY
e2e_client_start 4
e2e_assert_eq "CCD client, pool full: refused" "$(e2e_client_wait 4)" AUTH_FAILED
e2e_wait_usage 1 'event=reject identity=full ' || e2e_fail "no reject logged for the CCD client"
e2e_assert_match "usage log: refused as exhausted" "$(cat "$U")" \
	'event=reject identity=full reason=exhausted pool=small in_use=3 size=3'
e2e_assert_eq "OpenVPN never learned its CCD address" "$(learned 10.8.0.79)" 0

# `disable`: OpenVPN refuses before the plugin's connect.  A client served
# after it shows that nothing was logged for it in between.
mark=$(usage_lines)
e2e_client_start 5
e2e_assert_eq "CCD disable: refused" "$(e2e_client_wait 5)" AUTH_FAILED
e2e_assert_match "OpenVPN's log: rejected by its CCD file" "$(e2e_server_log | grep -F "rejected due to 'disable'")" \
	"disabled/.*MULTI: client has been rejected due to 'disable' directive"
e2e_client_stop --wait 3
e2e_client_start 3
e2e_assert_eq "filler back" "$(e2e_client_wait 3)" PUSH_REPLY
e2e_wait_usage 2 'event=connect identity=filler ' || e2e_fail "no second connect of filler"
e2e_assert_eq "usage log: nothing for the disabled client" "$(tail -n "+$((mark + 1))" "$U" | cut -d' ' -f2-3 | tr '\n' ' ')" \
	"event=disconnect identity=filler event=connect identity=filler "
e2e_client_stop 0 1 2 3
e2e_server_stop

# ---- phase 2: ccd-exclusive, OpenVPN's pool on -------------------------------
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0
client-config-dir $CCD
ccd-exclusive
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start (ccd-exclusive)"; e2e_finish; }
e2e_wait_usage 2 ' event=start ' || e2e_fail "no second start logged"
mark=$(usage_lines)
e2e_client_start 2
e2e_assert_eq "ccd-exclusive: client without a CCD file refused" "$(e2e_client_wait 2)" AUTH_FAILED
e2e_assert_match "OpenVPN's log: refused for want of a CCD file" \
	"$(e2e_server_log | grep -F 'client-config-dir authentication failed')" \
	"client-config-dir authentication failed for common name 'noccd'"
e2e_client_start 0
e2e_assert_eq "ccd-exclusive: CCD client outcome" "$(e2e_client_wait 0)" PUSH_REPLY
e2e_assert_eq "ccd-exclusive: CCD client keeps its pool address" "$(e2e_pushed_ifconfig 0)" "$W"
e2e_wait_usage 2 'event=connect identity=withccd ' || e2e_fail "no second connect of withccd"
e2e_assert_eq "usage log: vpnpool saw only the CCD client" \
	"$(tail -n "+$((mark + 1))" "$U" | cut -d' ' -f2-3 | tr '\n' ' ')" "event=connect identity=withccd "
e2e_assert_eq "ccd-exclusive: the CCD file's push line is kept" \
	"$(e2e_push_options 0 | grep -c '^dhcp-option DNS 10\.8\.0\.1$')" 1
e2e_finish

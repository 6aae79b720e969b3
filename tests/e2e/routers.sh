#!/usr/bin/env bash
# Router clients get distinct routed subnets (iroute, learnt by the server),
# a reserved subnet, IPv6 of both kinds, the pushed routes for everyone, pool
# choice by match and overflow into the next matching pool; without
# nopool (OpenVPN's own pool only proposes; ours wins), as server-ipv6 needs.
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_pki site-a site-b site-paris laptop staff1 staff2
e2e_vpnpool_conf '
pool "staff" {
    network  = "10.8.1.0/30"
    range    = "10.8.1.1-10.8.1.1"
    network6 = "fd00:8::/112"
    match    = {"common_name=staff*"}
}
pool "everyone" {
    network  = "10.8.2.0/24"
    network6 = "fd00:8::1:0/112"
}
router-pool "sites" {
    network  = "10.9.0.0/16"
    prefix   = 24
    network6 = "fd00:9::/48"
    prefix6  = 64
    match    = {"common_name=site-*"}
}
client "site-paris" {
    subnet  = "10.9.77.0/24"
    subnet6 = "fd00:9:0:77::/64"
}'
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.0.0
server-ipv6 fd00:8::/64
route 10.9.0.0 255.255.0.0
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start"; e2e_finish; }

for n in 0 1 2 3 4; do e2e_client_start $n; done
for n in 0 1 2 3 4; do e2e_assert_eq "client c$n outcome" "$(e2e_client_wait $n)" PUSH_REPLY; done
e2e_client_start 5	# after staff1, so that the staff pool is full
e2e_assert_eq "client c5 outcome" "$(e2e_client_wait 5)" PUSH_REPLY

a=$(e2e_push_reply 0); b=$(e2e_push_reply 1); p=$(e2e_push_reply 2); l=$(e2e_push_reply 3)
e2e_assert_match "every client gets the route to all sites" "$l" 'route 10\.9\.0\.0 255\.255\.0\.0'
e2e_assert_match "and the IPv6 one" "$l" 'route-ipv6 fd00:9::/48'
log=$(e2e_server_log)
sa=$(grep -o 'MULTI: Learn: 10\.9\.[0-9]*\.0/24 -> site-a/' <<<"$log" | head -n 1)
sb=$(grep -o 'MULTI: Learn: 10\.9\.[0-9]*\.0/24 -> site-b/' <<<"$log" | head -n 1)
e2e_assert_match "server learnt site-a's subnet" "$sa" '10\.9\.[01]\.0/24'
e2e_assert_match "server learnt site-b's subnet" "$sb" '10\.9\.[01]\.0/24'
[ "${sa%% ->*}" != "${sb%% ->*}" ] && e2e_pass "site-a and site-b have distinct subnets" ||
	e2e_fail "site-a and site-b share a subnet: $sa / $sb"
e2e_assert_match "server learnt site-paris's reserved subnet" "$log" 'MULTI: Learn: 10\.9\.77\.0/24 -> site-paris/'
e2e_assert_match "server learnt site-paris's IPv6 subnet" "$log" 'MULTI: Learn: fd00:9:0:77::/64 -> site-paris/'
e2e_assert_match "usage log names the subnets" "$(cat "$E2E_DIR/usage.log")" \
	'event=connect identity=site-a pool=everyone address=10\.8\.2\.[0-9]+ address6=fd00:8::1:[0-9a-f]+ subnet=10\.9\.[01]\.0/24 subnet6=fd00:9:(:|0:1::)/64'

e2e_assert_match "laptop gets an address from everyone" "$(e2e_pushed_ifconfig 3)" '^10\.8\.2\.'
e2e_assert_match "laptop gets an IPv6 address from everyone" "$(e2e_pushed_ifconfig6 3)" '^fd00:8::1:[0-9a-f]+/64$'
e2e_assert_eq "staff1 matched the staff pool" "$(e2e_pushed_ifconfig 4)" 10.8.1.1
e2e_assert_match "staff1 IPv6 from staff" "$(e2e_pushed_ifconfig6 4)" '^fd00:8::[0-9a-f]+/64$'
e2e_assert_match "staff2 overflows to everyone (staff has 1 address)" "$(e2e_pushed_ifconfig 5)" '^10\.8\.2\.'
e2e_finish

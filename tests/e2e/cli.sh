#!/usr/bin/env bash
# The vpnpool command against a real server: status, leases and usage (--json
# parsed with jq) agree with what the clients were pushed, while the server
# runs and after it stops; the metrics file follows; check on good and broken
# configs.
. "$(dirname "$0")/lib.sh"
e2e_require
command -v jq >/dev/null || e2e_skip_or_fail "jq not installed (scripts/deps.sh installs it)"
[ -x "$VPNPOOL_BIN" ] || e2e_skip_or_fail "command not built: $VPNPOOL_BIN"
HOSTILE='evil "cn" $(x);=\ end é'
e2e_pki bob carol site-a alice "$HOSTILE"
e2e_vpnpool_conf "
metrics-file = \"$E2E_DIR/metrics.prom\"
pool \"staff\" {
    network = \"10.8.0.0/24\"
    range   = \"10.8.0.10-10.8.0.20\"
}
router-pool \"sites\" {
    network = \"10.9.0.0/16\"
    prefix  = 24
    match   = {\"common_name=site-*\"}
}
client \"alice\" { address = \"10.8.0.50\" }"
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
route 10.9.0.0 255.255.0.0
$(e2e_plugin_line)"
CONF=$E2E_DIR/vpnpool.conf
vp() { "$VPNPOOL_BIN" -c "$CONF" "$@"; }
# jq over a command's JSON: vpj 'FILTER' ARGS...
vpj() { local f=$1; shift; vp "$@" | jq -r "$f"; }
lease_of() { vpj --arg id "$2" '.leases[] | select(.identity == $id) | '"$1" leases --json; }

e2e_server_start || { e2e_fail "server did not start"; e2e_finish; }
names=(bob carol site-a alice "$HOSTILE")
declare -A got
for n in 0 1 2 3 4; do e2e_client_start $n; done
for n in 0 1 2 3 4; do
	e2e_assert_eq "client $n outcome" "$(e2e_client_wait $n)" PUSH_REPLY
	got[$n]=$(e2e_pushed_ifconfig $n)
done

# While the server runs: what the command reads is what the clients got.
e2e_assert_eq "leases --json is valid JSON with 5 leases" "$(vpj '.count' leases --json)" 5
for n in 0 1 2 3 4; do
	id=${names[$n]}
	e2e_assert_eq "leases: ${id}'s address is the pushed one" "$(vp leases --json | jq -r --arg id "$id" '.leases[] | select(.identity == $id) | .address')" "${got[$n]}"
	e2e_assert_eq "leases: ${id} online" "$(vp leases --json | jq -r --arg id "$id" '.leases[] | select(.identity == $id) | .state')" online
done
subnet=$(grep -o 'MULTI: Learn: 10\.9\.[0-9]*\.0/24 -> site-a/' "$E2E_SERVER_LOG" | head -n 1 | sed 's/MULTI: Learn: //; s/ ->.*//')
e2e_assert_eq "leases: site-a's subnet is the one the server learnt" \
	"$(vp leases --json | jq -r '.leases[] | select(.identity == "site-a") | .subnet')" "$subnet"
e2e_assert_eq "leases: alice's reservation is marked static" \
	"$(vp leases --json | jq -r '.leases[] | select(.identity == "alice") | .static')" true
e2e_assert_eq "status: staff size (11 in range)" "$(vpj '.pools[0].size' status --json)" 11
e2e_assert_eq "status: staff size is the plugin's (usage log)" "$(vpj '.pools[0].size' status --json)" \
	"$(grep -o 'event=connect .* size=[0-9]*' "$E2E_DIR/usage.log" | tail -n 1 | sed 's/.*size=//')"
e2e_assert_match "the plugin wrote what the server uses, for the command" \
	"$(cat "$E2E_DIR/state/server")" '^topology=subnet local4=10\.8\.0\.1 netbits4=24 '
e2e_assert_eq "status: staff online (alice's reservation is not counted)" "$(vpj '.pools[0].online' status --json)" 4
e2e_assert_eq "status: staff free" "$(vpj '.pools[0].free' status --json)" 7
e2e_assert_eq "status: sites online" "$(vpj '.router_pools[0].online' status --json)" 1
e2e_assert_eq "status: leases online" "$(vpj '.online' status --json)" 5
e2e_assert_eq "leases --online --pool sites" "$(vpj '[.leases[].identity] | join(",")' leases --json --online --pool sites)" site-a
e2e_assert_eq "leases glob" "$(vpj '[.leases[].identity] | join(",")' leases --json 'site-*')" site-a
table=$(vp leases)
e2e_assert_match "leases table escapes the hostile CN" "$table" '"evil \\"cn\\" \$\(x\);=\\\\ end \\xc3\\xa9"'
e2e_assert_eq "leases table: one line per lease plus header, blank and total" "$(wc -l <<<"$table")" 8
e2e_assert_match "status table" "$(vp status)" 'staff +pool +10\.8\.0\.0/24 +11 +4 +0 +7 +36\.4%'

# The metrics file, rewritten within a second.
sleep 1.5
m=$(cat "$E2E_DIR/metrics.prom" 2>/dev/null)
e2e_assert_match "metrics: staff online" "$m" 'vpnpool_pool_addresses\{pool="staff",state="online"\} 4'
e2e_assert_match "metrics: connects" "$m" 'vpnpool_connects_total 5'
e2e_assert_match "metrics: HELP and TYPE" "$m" '# TYPE vpnpool_pool_addresses gauge'

# bob leaves: held, and the usage log has his session.
e2e_client_stop --wait 0
e2e_wait_usage 1 'event=disconnect identity=bob ' || e2e_fail "no disconnect logged for bob"
e2e_assert_eq "leases: bob held after disconnect" "$(vp leases --json | jq -r '.leases[] | select(.identity == "bob") | .state')" held
e2e_assert_eq "status: staff held" "$(vpj '.pools[0].held' status --json)" 1
e2e_assert_eq "leases --held" "$(vpj '[.leases[].identity] | join(",")' leases --json --held)" bob
u=$(vp usage --json)
e2e_assert_eq "usage: bob has one session" "$(jq -r '.identities[] | select(.identity == "bob") | .sessions' <<<"$u")" 1
e2e_assert_match "usage: bob's bytes received" "$(jq -r '.identities[] | select(.identity == "bob") | .bytes_received' <<<"$u")" '^[1-9][0-9]*$'
e2e_assert_eq "usage: hostile CN is one identity, exact" "$(jq -r --arg id "$HOSTILE" '.identities[] | select(.identity == $id) | .sessions' <<<"$u")" 1
sleep 1.2
e2e_assert_match "metrics: disconnects" "$(cat "$E2E_DIR/metrics.prom")" 'vpnpool_disconnects_total 1'

# After the server stops: every lease held, same addresses.
for n in 1 2 3 4; do e2e_client_stop $n; done
e2e_server_stop
e2e_assert_eq "after stop: 5 leases, all held" "$(vpj '[.leases[] | select(.state == "held")] | length' leases --json)" 5
for n in 0 1 2 3 4; do
	e2e_assert_eq "after stop: ${names[$n]} keeps its address" "$(vp leases --json | jq -r --arg id "${names[$n]}" '.leases[] | select(.identity == $id) | .address')" "${got[$n]}"
done
e2e_assert_eq "usage: 5 identities" "$(vpj '.identities | length' usage --json)" 5
e2e_assert_eq "usage --since the future: nothing" "$(vpj '.events' usage --json --since 2099-01-01)" 0
cp "$E2E_DIR/usage.log" "$E2E_DIR/usage.log.1"
gzip -c "$E2E_DIR/usage.log" >"$E2E_DIR/usage.log.2.gz"
u=$(vp usage --json --rotated --log "$E2E_DIR/usage.log")
e2e_assert_eq "usage --rotated reads FILE.2.gz, FILE.1, FILE" "$(jq -r '.files | length' <<<"$u")" 3
e2e_assert_eq "usage --rotated: bob's sessions thrice" "$(jq -r '.identities[] | select(.identity == "bob") | .sessions' <<<"$u")" 3
e2e_assert_match "usage table: bob's row, aligned units" "$(vp usage)" 'bob +1 +[0-9][0-9hms]* +[0-9.]+ (B|KiB) +[0-9.]+ (B|KiB) +0 +20[0-9-]+ [0-9:]+'
e2e_assert_match "metrics at close: online 0" "$(cat "$E2E_DIR/metrics.prom")" 'vpnpool_pool_addresses\{pool="staff",state="online"\} 0'

# check: the example config, and broken ones (FILE:LINE, exit 1).
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$("$VPNPOOL_BIN" -c "$top/examples/vpnpool.conf" check); rc=$?
e2e_assert_eq "check examples/vpnpool.conf exit" "$rc" 0
e2e_assert_match "check prints the route for the router pool" "$out" 'route 10\.9\.0\.0 255\.255\.0\.0'
e2e_assert_match "check prints the server line" "$out" 'server 10\.8\.0\.0 255\.255\.0\.0'
printf 'pool "a" {\n    network = "10.8.0.0/24"\n    range = "10.9.0.1-10.9.0.9"\n}\n' >"$E2E_DIR/bad1.conf"
out=$("$VPNPOOL_BIN" -c "$E2E_DIR/bad1.conf" check 2>&1); rc=$?
e2e_assert_eq "check on a bad range: exit" "$rc" 1
e2e_assert_match "check on a bad range: FILE:LINE" "$out" "^$E2E_DIR/bad1.conf:3: "
printf 'hold-time = 10\npool "a" {\n    network = "10.8.0.0/24"\n' >"$E2E_DIR/bad2.conf"
out=$("$VPNPOOL_BIN" -c "$E2E_DIR/bad2.conf" check 2>&1); rc=$?
e2e_assert_eq "check on an unclosed section: exit" "$rc" 1
e2e_assert_match "check on an unclosed section: FILE:LINE" "$out" "^$E2E_DIR/bad2.conf:2: "
out=$("$VPNPOOL_BIN" -c "$E2E_DIR/missing.conf" status 2>&1); rc=$?
e2e_assert_eq "status with a missing config: exit" "$rc" 1
e2e_finish

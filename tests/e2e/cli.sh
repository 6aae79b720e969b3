#!/usr/bin/env bash
# The vpnpool command against a real server: status, leases and usage (--json
# parsed with jq) agree with what the clients were pushed, while the server
# runs and after it stops; usage agrees with the disconnect lines and --since
# cuts a hand-made log at a given second; the metrics file follows; every
# command's help; check on the example (values worked out by hand) and on
# broken configs.
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
# Written at UP, before any client: the pools' sizes, not zeros.
e2e_assert_match "metrics before the first client: staff's size" \
	"$(cat "$E2E_DIR/metrics.prom" 2>/dev/null)" 'vpnpool_pool_size\{pool="staff"\} 11'
e2e_assert_match "metrics before the first client: sites' size" \
	"$(cat "$E2E_DIR/metrics.prom" 2>/dev/null)" 'vpnpool_router_pool_size\{pool="sites"\} 256'
names=(bob carol site-a alice "$HOSTILE")
declare -A got
started=$(date +%s)
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
# The one instance (named by its tun device): live in status, named by every lease.
server_pid=$E2E_SERVER_PID
e2e_assert_eq "status: one live instance, named by its tun, its pid and device" \
	"$(vpj '.instances | map("\(.name) \(.pid) \(.dev)") | join(",")' status --json)" "$E2E_DEV $server_pid $E2E_DEV"
e2e_assert_eq "leases: every lease names the instance" \
	"$(vpj '[.leases[].instance] | unique | join(",")' leases --json)" "$E2E_DEV"
e2e_assert_match "status table: the instance" "$(vp status)" "INSTANCE +PID +DEV +SINCE \\(UTC\\)"$'\n'"$E2E_DEV +$server_pid +$E2E_DEV +20"
e2e_assert_match "leases table: an INSTANCE column" "$(vp leases --online)" "IDENTITY +STATE +INSTANCE +POOL"$'.*\n'"bob +online +$E2E_DEV +staff "
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
# The text format as Prometheus reads it: every sample's metric announced by
# HELP and TYPE before it, gauges and counters only, counters named *_total,
# labels quoted, values plain numbers; nothing else on a line.
bad=$(printf '%s\n' "$m" | awk '
	/^# HELP [a-z_]+ .+/ { help[$3] = 1; next }
	/^# TYPE [a-z_]+ (gauge|counter)$/ {
		if (!($3 in help)) print "TYPE before HELP: " $0
		type[$3] = $4
		if ($4 == "counter" && $3 !~ /_total$/) print "counter not *_total: " $0
		next
	}
	/^$/ { next }
	{
		if ($0 !~ /^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9]+$/) { print "bad sample: " $0; next }
		name = $0; sub(/[{ ].*/, "", name)
		if (!(name in type)) print "sample without TYPE: " $0
		samples++
	}
	END { if (samples < 10) print "only " samples + 0 " samples" }')
e2e_assert_eq "metrics: valid Prometheus text format" "$bad" ""

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
e2e_assert_eq "after stop: no live instance" "$(vpj '.instances | length' status --json)" 0
e2e_assert_eq "after stop: the held leases name their last instance" \
	"$(vpj '[.leases[].instance] | unique | join(",")' leases --json)" "$E2E_DEV"
for n in 0 1 2 3 4; do
	e2e_assert_eq "after stop: ${names[$n]} keeps its address" "$(vp leases --json | jq -r --arg id "${names[$n]}" '.leases[] | select(.identity == $id) | .address')" "${got[$n]}"
done
# status after the stop: the counts are those of what the clients were given
# (staff: the pushed addresses inside its range; alice's reservation is not).
in_range=0
for n in 0 1 2 3 4; do [[ ${got[$n]} =~ ^10\.8\.0\.(1[0-9]|20)$ ]] && in_range=$((in_range + 1)); done
e2e_assert_eq "pushed addresses inside staff's range" "$in_range" 4
s=$(vp status --json)
e2e_assert_eq "after stop: status leases" "$(jq -r '.leases' <<<"$s")" 5
e2e_assert_eq "after stop: status online" "$(jq -r '.online' <<<"$s")" 0
e2e_assert_eq "after stop: status held" "$(jq -r '.held' <<<"$s")" 5
e2e_assert_eq "after stop: staff online" "$(jq -r '.pools[0].online' <<<"$s")" 0
e2e_assert_eq "after stop: staff held = addresses given in its range" "$(jq -r '.pools[0].held' <<<"$s")" "$in_range"
e2e_assert_eq "after stop: staff free" "$(jq -r '.pools[0].free' <<<"$s")" $((11 - in_range))
e2e_assert_eq "after stop: sites online" "$(jq -r '.router_pools[0].online' <<<"$s")" 0
e2e_assert_eq "after stop: sites held (site-a's subnet)" "$(jq -r '.router_pools[0].held' <<<"$s")" 1
e2e_assert_match "after stop: status table" "$(vp status)" 'staff +pool +10\.8\.0\.0/24 +11 +0 +4 +7 +36\.4%'

# usage --json against the sessions themselves: one session each, bytes and
# time online the sums of the identity's disconnect lines.
logid=(bob carol site-a alice '"evil \"cn\" $(x);=\\ end \xc3\xa9"')
u=$(vp usage --json)
e2e_assert_eq "usage: 5 identities" "$(jq -r '.identities | length' <<<"$u")" 5
elapsed=$(($(date +%s) - started + 1))
for n in 0 1 2 3 4; do
	id=${names[$n]}
	w=$(jq -c --arg id "$id" '.identities[] | select(.identity == $id)' <<<"$u")
	e2e_assert_eq "usage: $id sessions" "$(jq -r .sessions <<<"$w")" 1
	e2e_assert_eq "usage: $id has one connect line" "$(grep -cF "event=connect identity=${logid[$n]} " "$E2E_DIR/usage.log")" 1
	lines=$(grep -F "event=disconnect identity=${logid[$n]} " "$E2E_DIR/usage.log")
	e2e_assert_eq "usage: $id has one disconnect line" "$(grep -c . <<<"$lines")" 1
	for f in duration:seconds_online bytes_received:bytes_received bytes_sent:bytes_sent; do
		want=$(grep -o " ${f%%:*}=[0-9]*" <<<"$lines" | cut -d= -f2 | awk '{ s += $1 } END { print s + 0 }')
		e2e_assert_eq "usage: $id ${f#*:} = the disconnect line's ${f%%:*}" "$(jq -r ".${f#*:}" <<<"$w")" "$want"
	done
	e2e_assert_match "usage: $id received bytes" "$(jq -r .bytes_received <<<"$w")" '^[1-9][0-9]*$'
	e2e_assert_match "usage: $id sent bytes" "$(jq -r .bytes_sent <<<"$w")" '^[1-9][0-9]*$'
	secs=$(jq -r .seconds_online <<<"$w")
	t0=$(date -u -d "$(grep -F "event=connect identity=${logid[$n]} " "$E2E_DIR/usage.log" | sed 's/^time=\([^ ]*\) .*/\1/')" +%s)
	t1=$(date -u -d "$(sed 's/^time=\([^ ]*\) .*/\1/' <<<"$lines")" +%s)
	if [ $((secs - (t1 - t0))) -ge -2 ] && [ $((secs - (t1 - t0))) -le 2 ]; then
		e2e_pass "usage: $id online ${secs}s, the time between its connect and disconnect lines ($((t1 - t0))s)"
	else
		e2e_fail "usage: $id online ${secs}s, but its connect and disconnect lines are $((t1 - t0))s apart"
	fi
	if [ "$secs" -le "$elapsed" ]; then
		e2e_pass "usage: $id online ${secs}s, not longer than the clients ran (${elapsed}s)"
	else
		e2e_fail "usage: $id online ${secs}s, longer than the clients ran (${elapsed}s)"
	fi
done
bob_secs=$(jq -r '.identities[] | select(.identity == "bob") | .seconds_online' <<<"$u")
e2e_assert_eq "usage: bob, who left first, was online least" \
	"$(jq -r '[.identities[].seconds_online] | min' <<<"$u")" "$bob_secs"
e2e_assert_eq "usage --since the future: nothing" "$(vpj '.events' usage --json --since 2099-01-01)" 0

# --since cuts a log in the middle: events before T left out, from T on
# counted.  T = 2026-01-01 12:00:00 UTC = @1767268800.
L=$E2E_DIR/cut.log
cat >"$L" <<'EOF'
time=2026-01-01T10:00:00Z event=connect identity=early pool=staff address=10.8.0.10 in_use=1 size=11
time=2026-01-01T10:30:00Z event=disconnect identity=early pool=staff address=10.8.0.10 duration=1800 bytes_received=100 bytes_sent=200
time=2026-01-01T11:00:00Z event=connect identity=both pool=staff address=10.8.0.11 in_use=1 size=11
time=2026-01-01T11:59:59Z event=disconnect identity=both pool=staff address=10.8.0.11 duration=3599 bytes_received=1000 bytes_sent=2000
time=2026-01-01T12:00:00Z event=connect identity=both pool=staff address=10.8.0.11 in_use=1 size=11
time=2026-01-01T12:10:00Z event=disconnect identity=both pool=staff address=10.8.0.11 duration=600 bytes_received=10 bytes_sent=20
time=2026-01-01T12:20:00Z event=connect identity=late pool=staff address=10.8.0.12 in_use=1 size=11
time=2026-01-01T12:30:00Z event=connect identity=both pool=staff address=10.8.0.11 in_use=2 size=11
time=2026-01-01T12:40:00Z event=reject identity=late2 reason=exhausted pool=staff in_use=11 size=11
EOF
sessions() { jq -r '[.identities[] | "\(.identity)=\(.sessions)"] | sort | join(",")' <<<"$1"; }
u=$(vp usage --json --log "$L")
e2e_assert_eq "usage of the whole hand-made log: events" "$(jq -r .events <<<"$u")" 9
e2e_assert_eq "usage of the whole hand-made log: sessions" "$(sessions "$u")" both=3,early=1,late2=0,late=1
for T in 2026-01-01T12:00:00Z "2026-01-01 12:00" @1767268800; do
	u=$(vp usage --json --log "$L" --since "$T")
	e2e_assert_eq "usage --since $T: events from T on" "$(jq -r .events <<<"$u")" 5
	e2e_assert_eq "usage --since $T: sessions per identity" "$(sessions "$u")" both=2,late2=0,late=1
	e2e_assert_eq "usage --since $T: both's time online (the session that ended before T left out)" \
		"$(jq -r '.identities[] | select(.identity == "both") | .seconds_online' <<<"$u")" 600
	e2e_assert_eq "usage --since $T: both's bytes received" \
		"$(jq -r '.identities[] | select(.identity == "both") | .bytes_received' <<<"$u")" 10
	e2e_assert_eq "usage --since $T: rejects" "$(jq -r '[.rejects[].count] | add' <<<"$u")" 1
done
u=$(vp usage --json --log "$L" --since 2026-01-01T12:00:01Z)
e2e_assert_eq "usage --since one second after T: sessions" "$(sessions "$u")" both=1,late2=0,late=1
# Leases dropped at a reload: counted per identity and by reason.
D=$E2E_DIR/drops.log
cat >"$D" <<'EOF'
time=2026-01-02T10:00:00Z event=start config=/etc/openvpn/vpnpool.conf leases=3
time=2026-01-02T10:00:00Z event=drop identity=a-1 address=10.8.0.10 reason=reserved
time=2026-01-02T10:00:00Z event=drop identity=gw address=10.8.0.11 subnet=10.9.1.0/24 reason=subnet-size
time=2026-01-03T10:00:00Z event=drop identity=a-1 address=10.8.0.12 reason=reserved
EOF
u=$(vp usage --json --log "$D")
e2e_assert_eq "usage: drops per identity" \
	"$(jq -r '[.identities[] | "\(.identity)=\(.drops)"] | sort | join(",")' <<<"$u")" a-1=2,gw=1
e2e_assert_eq "usage: drops by reason" \
	"$(jq -r '[.drops[] | "\(.reason)=\(.count)"] | sort | join(",")' <<<"$u")" reserved=2,subnet-size=1
t=$(vp usage --log "$D")
e2e_assert_match "usage table: a DROPPED column when leases were dropped" "$t" 'a-1 +0 +0s +0 B +0 B +0 +2 +2026-01-03'
e2e_assert_match "usage table: drops by reason" "$t" 'reserved +2 +2026-01-03'
e2e_assert_eq "usage table: no DROPPED column without drops" "$(vp usage --log "$L" | grep -c DROPPED)" 0
cp "$E2E_DIR/usage.log" "$E2E_DIR/usage.log.1"
gzip -c "$E2E_DIR/usage.log" >"$E2E_DIR/usage.log.2.gz"
u=$(vp usage --json --rotated --log "$E2E_DIR/usage.log")
e2e_assert_eq "usage --rotated reads FILE.2.gz, FILE.1, FILE" "$(jq -r '.files | length' <<<"$u")" 3
e2e_assert_eq "usage --rotated: bob's sessions thrice" "$(jq -r '.identities[] | select(.identity == "bob") | .sessions' <<<"$u")" 3
e2e_assert_match "usage table: bob's row, aligned units" "$(vp usage)" 'bob +1 +[0-9][0-9hms]* +[0-9.]+ (B|KiB) +[0-9.]+ (B|KiB) +0 +20[0-9-]+ [0-9:]+'
e2e_assert_match "metrics at close: online 0" "$(cat "$E2E_DIR/metrics.prom")" 'vpnpool_pool_addresses\{pool="staff",state="online"\} 0'

# Help: every command answers --help and "help CMD" on stdout, exit 0.
for cmd in check status leases usage help; do
	for args in "$cmd --help" "help $cmd"; do
		out=$("$VPNPOOL_BIN" $args 2>/dev/null); rc=$?
		e2e_assert_eq "vpnpool $args: exit" "$rc" 0
		e2e_assert_match "vpnpool $args: starts with usage" "$out" '^usage: vpnpool '
	done
done
out=$("$VPNPOOL_BIN" --help 2>/dev/null); rc=$?
e2e_assert_eq "vpnpool --help: exit" "$rc" 0
e2e_assert_match "vpnpool --help: starts with usage" "$out" '^usage: vpnpool '
out=$("$VPNPOOL_BIN" no-such-command 2>&1); rc=$?
e2e_assert_match "an unknown command: exit non-zero ($rc)" "$rc" '^[1-9][0-9]*$'
e2e_assert_match "an unknown command: says so" "$out" 'no command `no-such-command'"'"
out=$("$VPNPOOL_BIN" help no-such-command 2>&1); rc=$?
e2e_assert_match "help on an unknown command: exit non-zero ($rc)" "$rc" '^[1-9][0-9]*$'

# check: the example config, and broken ones (FILE:LINE, exit 1).
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$("$VPNPOOL_BIN" -c "$top/examples/vpnpool.conf" check); rc=$?
e2e_assert_eq "check examples/vpnpool.conf exit" "$rc" 0
# The values worked out by hand from examples/vpnpool.conf: staff is
# 10.8.1.1-10.8.127.254 (32510 addresses) minus 10.8.100.0/24 (256) = 32254,
# alice's 10.8.0.50 and the server's 10.8.0.1 lie outside the range;
# everyone is a /17 less network and broadcast = 32766; sites is 256 /24s of
# which site-paris's 10.9.77.0/24 is reserved, and a /48 holds 65536 /64s.
check_line() { # what LINE: LINE is one whole line of the output
	if grep -qxF -- "$2" <<<"$out"; then e2e_pass "check: $1"; else e2e_fail "check: $1: no line '$2' in: $out"; fi
}
check_line "staff's header" 'pool "staff" (line 16)'
check_line "staff's network" '    network    10.8.0.0/17'
check_line "staff's range" '    range      10.8.1.1-10.8.127.254'
check_line "staff's exclusion" '    exclude    10.8.100.0-10.8.100.255'
check_line "staff's size after exclusions" '    size       32254 addresses after exclusions and reservations'
check_line "staff's IPv6 part" '    network6   fd00:8::/64 (one IPv6 address per client too)'
check_line "staff's match rule" '    match      X509_0_OU=Staff'
check_line "everyone's header" 'pool "everyone" (line 24)'
check_line "everyone's network" '    network    10.8.128.0/17'
check_line "everyone's range: every usable host" '    range      10.8.128.1-10.8.255.254 (every usable host)'
check_line "everyone's size" '    size       32766 addresses after exclusions and reservations'
check_line "everyone matches every client" '    match      (every client)'
check_line "sites' subnets" '    network    10.9.0.0/16: 256 subnets of /24 (255 after reservations)'
check_line "sites' IPv6 subnets" '    network6   fd00:9::/48: 65536 subnets of /64'
check_line "sites' match rule" '    match      common_name=site-*'
check_line "sites pushes its route" '    push-route yes (every client gets the route)'
check_line "alice's reservation" 'client alice (line 40): address 10.8.0.50 address6 fd00:8::50'
check_line "site-paris's reservation" 'client site-paris (line 44): subnet 10.9.77.0/24 subnet6 fd00:9:0:77::/64'
check_line "the hold-time" 'hold-time    3600s'
e2e_assert_eq "check: the pools in file order" "$(grep -E '^(pool|router-pool) ' <<<"$out" | cut -d' ' -f2 | tr '\n' ' ')" '"staff" "everyone" "sites" '
e2e_assert_eq "check: staff's only exclusion" "$(grep -c '^    exclude ' <<<"$out")" 1
check_line "the route for the router pool" '    route 10.9.0.0 255.255.0.0'
check_line "the IPv6 route for the router pool" '    route-ipv6 fd00:9::/48'
e2e_assert_match "check prints the server line" "$out" $'\n    server 10\\.8\\.0\\.0 255\\.255\\.0\\.0 '
check_line "the server-ipv6 line" '    server-ipv6 fd00:8::/64'
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
# A pool wider than a /16: OpenVPN's "server" refuses it, so check prints
# what it stands for, per topology.
for topo in subnet net30; do
	printf 'state-dir = "%s/wide"\ntopology = "%s"\npool "big" { network = "10.0.0.0/12" }\n' \
		"$E2E_DIR" "$topo" >"$E2E_DIR/wide.conf"
	out=$("$VPNPOOL_BIN" -c "$E2E_DIR/wide.conf" check 2>&1)
	e2e_assert_match "check, /12 $topo: mode server" "$out" $'\n    mode server '
	case $out in *"    server 10.0.0.0"*) e2e_fail "check, /12 $topo: prints a server line OpenVPN refuses" ;; esac
	e2e_assert_match "check, /12 $topo: push topology" "$out" "    push \"topology $topo\""
done
e2e_assert_match "check, /12 net30: ifconfig names the peer" "$out" $'\n    ifconfig 10\\.0\\.0\\.1 10\\.0\\.0\\.2\n'
e2e_assert_match "check, /12 net30: the network as a route" "$out" $'\n    route 10\\.0\\.0\\.0 255\\.240\\.0\\.0\n'
printf 'state-dir = "%s/wide"\npool "big" { network = "10.0.0.0/12" }\n' "$E2E_DIR" >"$E2E_DIR/wide.conf"
out=$("$VPNPOOL_BIN" -c "$E2E_DIR/wide.conf" check 2>&1)
e2e_assert_match "check, /12 subnet: ifconfig with the netmask" "$out" $'\n    ifconfig 10\\.0\\.0\\.1 255\\.240\\.0\\.0\n'
e2e_assert_match "check, /12 subnet: route-gateway" "$out" '    push "route-gateway 10\.0\.0\.1"'

e2e_finish

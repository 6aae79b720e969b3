#!/usr/bin/env bash
# Several OpenVPN processes, one address space (openvpn-plugin-vpnpool(8)):
# one vpnpool.conf, a UDP server (instance=udp) and a TCP server
# (instance=tcp) on one tun network.  Checks:
# - VP_MULTI_CLIENTS (default 200) real clients connect, then churn: in each
#   of VP_MULTI_ROUNDS rounds some move to the other server, half of them
#   while still online on the first; no address is ever held by two
#   identities (the live clients' PUSH_REPLY after every step, and
#   `vpnpool leases --json --online` polled all along); every client always
#   gets its first address back, whichever server it reaches;
# - `leases` names each lease's instance, also after the older session of
#   a moved client ended (which changes nothing); `status` lists the live
#   instances; usage-log lines carry instance=;
# - every session has its /32 host route on its server's tun (host-routes
#   auto, two instances live);
# - SIGKILL of the TCP server (its tun persists): the UDP one keeps serving,
#   the killed one's sessions become held (leases, usage log reason=crash),
#   the UDP one removes the killed one's host routes, `status` no longer
#   lists it; restarted, it gives every client its address back;
# - `vpnpool release` and `vpnpool import` while both run, honoured by both
#   at their next connect;
# - a third process with a live instance's name stops at start, naming the
#   live one's pid, and the live one keeps serving.
# Runs in a network namespace of its own.  About 2 minutes on 2 CPUs with 200 clients (VP_MULTI_CLIENTS=40 for a quick run).
# MP_CONTROL=1: the same with two address spaces (a state-dir per server, no
# instance names): the checks of the shared space must fail then.
: "${VP_MULTI_CLIENTS:=200}"
: "${VP_MULTI_ROUNDS:=6}"
: "${E2E_TIMEOUT:=900}"
# In a network namespace of its own (tuns, host routes and sysctls stay
# out of the host's; lo is brought up for the servers on 127.0.0.1).
if [ -z "${MULTI_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
	MULTI_NETNS=1 exec unshare --net -- "${BASH:-bash}" "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multilib.sh"
mp_require
N=$VP_MULTI_CLIENTS
# A tun network of this run's own (parallel runs, other tests use 10.8/10.9).
NET=10.$((64 + $$ % 120))
e2e_log "$N clients, $VP_MULTI_ROUNDS churn rounds, tun network $NET.0.0/16"

# ---- set-up --------------------------------------------------------------------
e2e_pki || e2e_finish
# One at a time: e2e_issue's serial file is not safe for parallel use.
for ((i = 0; i < N; i++)); do e2e_issue "m$i" "$(printf 'm-%03d' "$i")" >/dev/null; done
for stem in ta:tiny-a tb:tiny-b ia:imp-a ib:imp-b ic:imp-c n1:new-1 n2:new-2; do
	e2e_issue "${stem%%:*}" "${stem#*:}" || e2e_finish
done
missing=0
for ((i = 0; i < N; i++)); do [ -f "$E2E_DIR/pki/m$i.crt" ] || missing=$((missing + 1)); done
[ "$missing" -eq 0 ] || { e2e_fail "$missing client certificates not made"; e2e_finish; }

e2e_vpnpool_conf "
hold-time = 3600
pool \"tiny\" {
    network = \"$NET.200.0/30\"
    range   = \"$NET.200.1-$NET.200.1\"
    match   = {\"common_name=tiny-*\"}
}
pool \"imp\" {
    network = \"$NET.201.0/30\"
    match   = {\"common_name=imp-*\"}
}
pool \"main\" {
    network = \"$NET.0.0/17\"
    match   = {\"common_name=m-*\"}
}
pool \"new\" {
    network = \"$NET.202.0/24\"
    match   = {\"common_name=new-*\"}
}"
# (Each pool matches its clients only: a client of a full tiny or imp pool
# is refused, it does not spill into another pool.)
# The TCP server's tun outlives it (made beforehand, persist-tun), so that
# whether its host routes are removed after a SIGKILL can be seen.
mp_instance udp udp
mp_instance tcp tcp-server "persist-tun"
openvpn --mktun --dev "${MP_DEV[tcp]}" --dev-type tun >/dev/null 2>&1 ||
	e2e_skip_or_fail "openvpn --mktun failed"
E2E_ON_EXIT=": >$E2E_DIR/stop; [ -z \"\${POLLER:-}\" ] || { kill \$POLLER; wait \$POLLER; } 2>/dev/null
openvpn --rmtun --dev ${MP_DEV[tcp]} --dev-type tun >/dev/null 2>&1"
MP_SNIPPET="topology subnet
server $NET.0.0 255.255.0.0 nopool
verb 3"
mp_control_confs
mp_server_start udp || { e2e_fail "the UDP server did not start"; e2e_finish; }
mp_server_start tcp || { e2e_fail "the TCP server did not start next to the UDP one"; e2e_finish; }
e2e_pass "two servers on one vpnpool.conf started (udp pid ${MP_PID[udp]}, tcp pid ${MP_PID[tcp]})"

# The live instances `status --json` lists (vpnpool(8)): "name:pid,...".
status_instances() {
	vp status --json 2>/dev/null | jq -r '[.instances[] | "\(.name):\(.pid)"] | sort | join(",")' 2>/dev/null
}
has_instance() { [[ ,$(status_instances), == *,$1:${MP_PID[$1]:-none},* ]]; }	# with its pid
has_name() { [[ ,$(status_instances), == *,$1:* ]]; }
has_instance udp && has_instance tcp &&
	e2e_pass "status --json lists the live instances udp and tcp with their pids" ||
	e2e_fail "status --json does not list both live instances: instances='$(status_instances)'"
e2e_assert_match "status (table) names both instances" "$(vp status 2>&1)" '(udp[^$]*tcp|tcp[^$]*udp)'

# ---- the poller: leases --json --online, checked for duplicates all along ----
: >"$E2E_DIR/polls"
: >"$E2E_DIR/poll-dups"
: >"$E2E_DIR/poll-errors"
poller() {
	local j d
	while [ ! -e "$E2E_DIR/stop" ]; do
		if j=$(vp leases --json --online 2>&1) && jq -e .leases >/dev/null 2>&1 <<<"$j"; then
			d=$(mp_json_dups <<<"$j")
			[ -z "$d" ] || printf '%s\n' "$d" >>"$E2E_DIR/poll-dups"
			echo "$(jq -r '.leases | length' <<<"$j")" >>"$E2E_DIR/polls"
		else
			printf '%s\n' "$(head -c 300 <<<"$j")" >>"$E2E_DIR/poll-errors"
		fi
		sleep 0.3
	done
}
poller </dev/null >/dev/null 2>&1 &
POLLER=$!

# ---- bookkeeping -----------------------------------------------------------------
# Identity i: slots u$i (to udp) and t$i (to tcp); LIVE[i] its newest slot.
declare -A LIVE FIRST
: >"$E2E_DIR/told"
STICKY_BAD=0 REFUSED=0 LIVE_DUPS=0 CHECKS=0
ident() { printf 'm-%03d' "$1"; }
inst_of() { case $1 in u*) echo udp ;; t*) echo tcp ;; esac; }
other() { case $1 in udp) echo tcp ;; tcp) echo udp ;; esac; }

# Record what slot s of identity i was told (after mp_wait_many).
declare -A SLOT_ADDR
record() { # i slot
	local i=$1 s=$2 out addr
	unset "SLOT_ADDR[$s]"
	out=$(mp_outcome "$s")
	if [ "$out" != PUSH_REPLY ]; then
		REFUSED=$((REFUSED + 1))
		[ "$REFUSED" -gt 5 ] || e2e_fail "$(ident "$i") on $(inst_of "$s"): $out, not PUSH_REPLY"
		return 1
	fi
	addr=$(e2e_pushed_ifconfig "$s")
	SLOT_ADDR[$s]=$addr
	echo "$(ident "$i") $(inst_of "$s") $addr" >>"$E2E_DIR/told"
	if [ -z "${FIRST[$i]:-}" ]; then
		FIRST[$i]=$addr
	elif [ "$addr" != "${FIRST[$i]}" ]; then
		STICKY_BAD=$((STICKY_BAD + 1))
		[ "$STICKY_BAD" -gt 5 ] ||
			e2e_fail "$(ident "$i") got $addr on $(inst_of "$s"), was ${FIRST[$i]} before"
	fi
	LIVE[$i]=$s
}

# The address a single client (not an m-NNN one) was pushed, noted for the
# live-client checks.
note() { SLOT_ADDR[$1]=$(e2e_pushed_ifconfig "$1"); }

# Every running client that was pushed an address: "address identity";
# one address for two identities is a duplicate.  (Two sessions of one
# identity on two servers may share its address: a client that moved.)
check_live_dups() { # when
	local s pid d k
	CHECKS=$((CHECKS + 1))
	d=$(for s in "${!SLOT_ADDR[@]}"; do
		pid=$(e2e_client_pid "$s")
		[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
		case $s in [ut][0-9]*) k=m${s:1} ;; *) k=$s ;; esac
		echo "${SLOT_ADDR[$s]} $k"
	done | sort -u |
		awk '{ n[$1]++; who[$1] = who[$1] " " $2 } END { for (a in n) if (n[a] > 1) print a " held by" who[a] }')
	if [ -n "$d" ]; then
		LIVE_DUPS=$((LIVE_DUPS + $(wc -l <<<"$d")))
		e2e_fail "$1: an address pushed to two live clients: $(head -n 3 <<<"$d" | tr '\n' ';')"
	fi
}

# ---- 1. everyone connects, even ones over UDP, odd ones over TCP -------------
t0=$(date +%s)
batch=()
for ((i = 0; i < N; i++)); do
	if ((i % 2)); then s=t$i; inst=tcp; else s=u$i; inst=udp; fi
	mp_client_start "$s" "m$i" "$inst" "${MP_NULL[@]}"
	batch+=("$i:$s")
	if [ "${#batch[@]}" -eq 25 ] || [ "$i" -eq $((N - 1)) ]; then
		mp_wait_many 60 "${batch[@]#*:}"
		for b in "${batch[@]}"; do record "${b%%:*}" "${b#*:}"; done
		check_live_dups "connect batch up to $(ident "$i")"
		batch=()
	fi
done
e2e_log "figures: $N clients connected in $(($(date +%s) - t0)) s"
e2e_assert_eq "clients refused or timed out at first connect" "$REFUSED" 0
e2e_assert_eq "distinct addresses given to $N identities" \
	"$(awk '{ print $3 }' "$E2E_DIR/told" | sort -u | wc -l)" "$N"

# ---- 2. churn: K clients per round move to the other server ------------------
K=$((N / 5))
[ "$K" -ge 2 ] || K=2
MOVES=0 OVERLAPS=0
t0=$(date +%s)
for r in $(seq 1 "$VP_MULTI_ROUNDS"); do
	ids=$(for i in "${!LIVE[@]}"; do echo "$i"; done | shuf -n "$K")
	stop_first=() stop_after=() start=()
	n=0
	for i in $ids; do
		old=${LIVE[$i]}
		new=$(other "$(inst_of "$old")")
		new=${new:0:1}$i
		# Half of them connect to the other server while still online on
		# the first (the newest session owns the address).
		if ((n++ % 2)); then stop_after+=("$old"); OVERLAPS=$((OVERLAPS + 1)); else stop_first+=("$old"); fi
		start+=("$i:$new")
	done
	[ "${#stop_first[@]}" -eq 0 ] || e2e_client_stop "${stop_first[@]}"
	for b in "${start[@]}"; do
		i=${b%%:*} s=${b#*:}
		mp_client_start "$s" "m$i" "$(inst_of "$s")" "${MP_NULL[@]}"
	done
	mp_wait_many 60 "${start[@]#*:}"
	for b in "${start[@]}"; do record "${b%%:*}" "${b#*:}" && MOVES=$((MOVES + 1)); done
	check_live_dups "churn round $r, moved clients and the ones they left online"
	[ "${#stop_after[@]}" -eq 0 ] || e2e_client_stop "${stop_after[@]}"
	check_live_dups "churn round $r, after the moves"
	sleep 1
done
e2e_log "figures: $MOVES moves ($OVERLAPS while online on the other server) in $VP_MULTI_ROUNDS rounds, $(($(date +%s) - t0)) s"
e2e_assert_eq "clients refused or timed out during the churn" "$REFUSED" 0
[ "$MOVES" -ge $((VP_MULTI_ROUNDS * K)) ] && e2e_pass "$MOVES clients moved between the servers" ||
	e2e_fail "only $MOVES of $((VP_MULTI_ROUNDS * K)) moves were served"
e2e_assert_eq "clients given another address than their first (sticky across instances)" "$STICKY_BAD" 0
moved_ids=$(awk '{ print $1, $2 }' "$E2E_DIR/told" | sort -u | awk '{ n[$1]++ } END { c = 0; for (i in n) if (n[i] == 2) c++; print c }')
[ "$moved_ids" -gt 0 ] && e2e_pass "$moved_ids identities were served by both servers (stickiness checked across them)" ||
	e2e_fail "no identity reached both servers: nothing checked"

# ---- 3. which instance a lease is on -----------------------------------------
# lease_field FIELD IDENTITY (from one leases --json document in $LJ)
lease_field() { jq -r --arg id "$2" ".leases[] | select(.identity == \$id) | .$1" <<<"$LJ"; }
check_instances() { # when
	local bad=0 i want got st
	LJ=$(vp leases --json)
	for i in "${!LIVE[@]}"; do
		want=$(inst_of "${LIVE[$i]}")
		got=$(lease_field instance "$(ident "$i")")
		st=$(lease_field state "$(ident "$i")")
		if [ "$got" != "$want" ] || [ "$st" != online ]; then
			bad=$((bad + 1))
			[ "$bad" -gt 3 ] || e2e_log "$1: $(ident "$i") on $want: leases says state '$st', instance '$got'"
		fi
	done
	e2e_assert_eq "$1: online leases whose state or instance is not the client's server" "$bad" 0
}
check_instances "right after the churn"
# The older sessions of the moved clients end now (TCP at once, UDP 5 s after
# the client's exit notification): that changes nothing.
sleep 7
check_instances "after the older sessions of moved clients ended"
conn=$(grep -c ' event=connect ' "$E2E_DIR/usage.log")
e2e_assert_eq "usage-log connect lines without instance=" \
	"$(grep ' event=connect ' "$E2E_DIR/usage.log" | grep -vcE ' instance=(udp|tcp)( |$)')" 0
[ "$(grep -c ' event=connect .*instance=tcp' "$E2E_DIR/usage.log")" -gt 0 ] &&
	[ "$(grep -c ' event=connect .*instance=udp' "$E2E_DIR/usage.log")" -gt 0 ] &&
	e2e_pass "usage log: $conn connect lines, instance=udp and instance=tcp among them" ||
	e2e_fail "usage log: no connect lines with instance=udp and instance=tcp ($conn connects)"

# ---- 4. SIGKILL of the TCP server ------------------------------------------------
declare -A ON_TCP
for i in "${!LIVE[@]}"; do [ "$(inst_of "${LIVE[$i]}")" = tcp ] && ON_TCP[$i]=${FIRST[$i]}; done
ntcp=${#ON_TCP[@]}
nudp=$((${#LIVE[@]} - ntcp))
routes_tcp=$(mp_host_routes "${MP_DEV[tcp]}")
routes_udp=$(mp_host_routes "${MP_DEV[udp]}")
missing=0
for i in "${!ON_TCP[@]}"; do grep -qx "${ON_TCP[$i]}" <<<"$routes_tcp" || missing=$((missing + 1)); done
e2e_assert_eq "TCP sessions without a /32 host route on ${MP_DEV[tcp]} (of $ntcp)" "$missing" 0
missing=0
for i in "${!LIVE[@]}"; do
	[ "$(inst_of "${LIVE[$i]}")" = udp ] && ! grep -qx "${FIRST[$i]}" <<<"$routes_udp" && missing=$((missing + 1))
done
e2e_assert_eq "UDP sessions without a /32 host route on ${MP_DEV[udp]} (of $nudp)" "$missing" 0
crash_before=$(grep -c ' event=disconnect .*reason=crash' "$E2E_DIR/usage.log")
killed_pid=${MP_PID[tcp]}
mp_server_kill tcp
tcp_slots=()
for i in "${!ON_TCP[@]}"; do tcp_slots+=("${LIVE[$i]}"); unset "LIVE[$i]"; done
e2e_client_stop "${tcp_slots[@]}"
e2e_log "killed the TCP server (pid $killed_pid) with $ntcp sessions; $nudp on UDP"

# The UDP server keeps serving (and this lease change is where it notices).
mp_client_start n1 n1 udp "${MP_NULL[@]}"
e2e_assert_eq "a new client on UDP after the TCP server's SIGKILL" "$(e2e_client_wait n1 20)" PUSH_REPLY
note n1
LJ=$(vp leases --json)
bad=0
for i in "${!ON_TCP[@]}"; do
	id=$(ident "$i")
	got="$(lease_field state "$id") $(lease_field address "$id") $(lease_field instance "$id")"
	if [ "$got" != "held ${ON_TCP[$i]} tcp" ]; then
		bad=$((bad + 1))
		[ "$bad" -gt 3 ] || e2e_log "after the kill: $id: leases says '$got', want 'held ${ON_TCP[$i]} tcp'"
	fi
done
e2e_assert_eq "the killed server's sessions that are not held at their address, last on tcp (of $ntcp)" "$bad" 0
e2e_assert_eq "sessions online on UDP after the TCP server's kill" \
	"$(jq '[.leases[] | select(.state == "online" and .instance == "udp" and (.identity | startswith("m-")))] | length' <<<"$LJ")" "$nudp"
e2e_assert_eq "usage log: disconnect lines with reason=crash for the killed server's sessions" \
	"$(($(grep -c ' event=disconnect .*reason=crash' "$E2E_DIR/usage.log") - crash_before))" "$ntcp"
bad=0
for i in "${!ON_TCP[@]}"; do
	grep -qE " event=disconnect identity=$(ident "$i") .*reason=crash" "$E2E_DIR/usage.log" || bad=$((bad + 1))
done
e2e_assert_eq "killed server's identities without a reason=crash disconnect line" "$bad" 0
# Its routes are removed by the instance that noticed (the tun itself stays).
left=
for _ in $(seq 1 50); do
	routes_tcp=$(mp_host_routes "${MP_DEV[tcp]}")
	left=$(for i in "${!ON_TCP[@]}"; do grep -x "${ON_TCP[$i]}" <<<"$routes_tcp"; done | wc -l)
	[ "$left" -eq 0 ] && break
	sleep 0.1
done
e2e_assert_eq "host routes of the killed server left on ${MP_DEV[tcp]} (of $ntcp)" "$left" 0
if has_name tcp || ! has_instance udp; then e2e_fail "status after the kill: want udp listed, tcp not: $(status_instances)"
else e2e_pass "status no longer lists the killed instance ($(status_instances))"; fi
e2e_assert_eq "poll errors so far" "$(wc -l <"$E2E_DIR/poll-errors")" 0

# Restarted, it gives every client its address back.
if mp_server_start tcp; then
	e2e_pass "the TCP server started again after its SIGKILL"
	routes_tcp=$(mp_host_routes "${MP_DEV[tcp]}")
	left=$(for i in "${!ON_TCP[@]}"; do grep -x "${ON_TCP[$i]}" <<<"$routes_tcp"; done | wc -l)
	e2e_assert_eq "host routes of the killed run left on ${MP_DEV[tcp]} after its restart, before its clients are back" "$left" 0
	slots=()
	for i in "${!ON_TCP[@]}"; do mp_client_start "t$i" "m$i" tcp "${MP_NULL[@]}"; slots+=("$i:t$i"); done
	mp_wait_many 60 "${slots[@]#*:}"
	before=$STICKY_BAD
	for b in "${slots[@]}"; do record "${b%%:*}" "${b#*:}"; done
	e2e_assert_eq "clients back on the restarted TCP server given another address" "$((STICKY_BAD - before))" 0
	check_live_dups "after the TCP server's restart"
	has_instance tcp && e2e_pass "status lists the restarted instance tcp" ||
		e2e_fail "status does not list the restarted instance tcp: $(status_instances)"
else
	e2e_fail "the TCP server did not start again after its SIGKILL"
fi

# ---- 5. release and import while both run --------------------------------------
# tiny holds one address: tiny-a takes it over UDP and leaves (held 3600 s).
mp_client_start ta ta udp "${MP_NULL[@]}"
e2e_assert_eq "tiny-a on UDP" "$(e2e_client_wait ta)" PUSH_REPLY
tiny=$(e2e_pushed_ifconfig ta)
e2e_assert_eq "tiny-a's address" "$tiny" "$NET.200.1"
e2e_client_stop ta
e2e_wait_usage 1 ' event=disconnect identity=tiny-a ' || e2e_fail "no disconnect logged for tiny-a"
LJ=$(vp leases --json)
e2e_assert_eq "tiny-a held, last on udp" "$(lease_field state tiny-a) $(lease_field instance tiny-a)" "held udp"
mp_client_start tb tb tcp "${MP_NULL[@]}"
e2e_assert_eq "tiny-b refused on TCP while tiny-a holds the only address" "$(e2e_client_wait tb)" AUTH_FAILED
e2e_client_stop tb
e2e_assert_match "usage log: tiny-a's disconnect names its instance" \
	"$(grep ' event=disconnect identity=tiny-a ' "$E2E_DIR/usage.log")" ' instance=udp( |$)'
e2e_assert_match "usage log: tiny-b's reject names its instance" \
	"$(grep ' event=reject identity=tiny-b ' "$E2E_DIR/usage.log")" ' instance=tcp( |$)'
vp release tiny-b >"$E2E_DIR/rel1" 2>&1
e2e_assert_eq "release of an identity without a lease: exit status" "$?" 1
e2e_assert_match "release without a lease says so, naming it" "$(cat "$E2E_DIR/rel1")" 'tiny-b has no lease'
some=$(for i in "${!LIVE[@]}"; do echo "$i"; done | head -n 1)
vp release "$(ident "$some")" >"$E2E_DIR/rel2" 2>&1
e2e_assert_eq "release of an online identity: exit status" "$?" 1
e2e_assert_match "release of an online identity says so (vpnpool(8))" "$(cat "$E2E_DIR/rel2")" "$(ident "$some") is online"
LJ=$(vp leases --json)
e2e_assert_eq "release of an online identity changes nothing" \
	"$(lease_field state "$(ident "$some")") $(lease_field address "$(ident "$some")")" "online ${FIRST[$some]}"
vp release tiny-a >"$E2E_DIR/rel3" 2>&1
e2e_assert_eq "release tiny-a (held): exit status" "$?" 0
LJ=$(vp leases --json)
e2e_assert_eq "leases after release: tiny-a's lease" "$(lease_field address tiny-a)" ""
mp_client_start tb tb tcp "${MP_NULL[@]}"
e2e_assert_eq "tiny-b on TCP after the release" "$(e2e_client_wait tb)" PUSH_REPLY
note tb
e2e_assert_eq "tiny-b got the released address (TCP honoured the release)" "$(e2e_pushed_ifconfig tb)" "$tiny"
mp_client_start ta ta udp "${MP_NULL[@]}"
e2e_assert_eq "tiny-a refused on UDP now that tiny-b has the address (UDP honoured the release)" \
	"$(e2e_client_wait ta)" AUTH_FAILED
e2e_client_stop ta

# import: imp holds two addresses, .1 and .2.
IMP=$E2E_DIR/ipp.txt
cat >"$IMP" <<EOF
imp-a,$NET.201.2
this line is not CN,address
imp-b,$NET.201.2
imp-c,$NET.250.9
imp-c,$NET.201.3
$(ident 0),$NET.201.1
EOF
vp import "$IMP" >"$E2E_DIR/imp.out" 2>&1
e2e_assert_eq "import with bad lines: exit status" "$?" 1
out=$(cat "$E2E_DIR/imp.out")
for l in 2 3 4 5 6; do
	e2e_assert_match "import reports line $l" "$out" "$IMP:$l: "
done
[[ $out == *"$IMP:1:"* ]] && e2e_fail "import reports its good line 1: $out" || e2e_pass "import does not report its good line"
LJ=$(vp leases --json)
e2e_assert_eq "imp-a imported: held at its address" "$(lease_field state imp-a) $(lease_field address imp-a)" "held $NET.201.2"
e2e_assert_eq "imp-b, imp-c not imported" "$(lease_field address imp-b)$(lease_field address imp-c)" ""
e2e_assert_eq "$(ident 0) keeps its own lease" "$(lease_field address "$(ident 0)")" "${FIRST[0]}"
mp_client_start ib ib udp "${MP_NULL[@]}"
e2e_assert_eq "imp-b on UDP" "$(e2e_client_wait ib)" PUSH_REPLY
note ib
e2e_assert_eq "imp-b gets the address not imported (UDP honoured the import)" "$(e2e_pushed_ifconfig ib)" "$NET.201.1"
mp_client_start ic ic tcp "${MP_NULL[@]}"
e2e_assert_eq "imp-c refused on TCP: the pool's other address is imp-a's (TCP honoured the import)" \
	"$(e2e_client_wait ic)" AUTH_FAILED
mp_client_start ia ia tcp "${MP_NULL[@]}"
e2e_assert_eq "imp-a on TCP" "$(e2e_client_wait ia)" PUSH_REPLY
note ia
e2e_assert_eq "imp-a gets its imported address" "$(e2e_pushed_ifconfig ia)" "$NET.201.2"
e2e_client_stop ic

# ---- 6. a second process with a live instance's name ---------------------------
mp_instance udp2 udp
sed -e "s/^port .*/port ${MP_PORT[udp2]}/" -e "s/^dev .*/dev ${MP_DEV[udp2]}/" \
	-e "s#^writepid .*#writepid $E2E_DIR/udp2.pid#" -e "s#^status .*#status $E2E_DIR/udp2.status 1#" \
	"$E2E_DIR/udp.conf" >"$E2E_DIR/udp2.conf"
log=$E2E_DIR/server-udp2.log
openvpn --config "$E2E_DIR/udp2.conf" --log-append "$log" </dev/null >/dev/null 2>&1 &
dup=$!
e2e_track "$dup"
r=$(e2e_wait_log "$log" 15 "Initialization Sequence Completed" "$dup")
e2e_assert_eq "a second process named udp while udp is live stops at start" "$r" exited
e2e_stop_pid "$dup"
e2e_assert_match "its log names the live instance's pid ${MP_PID[udp]}" \
	"$(grep -i vpnpool "$log" | tr '\n' ' ')" "(^|[^0-9])${MP_PID[udp]}([^0-9]|$)"
mp_client_start n2 n2 udp "${MP_NULL[@]}"
e2e_assert_eq "the live udp instance still serves after that" "$(e2e_client_wait n2 20)" PUSH_REPLY
note n2
has_instance udp && e2e_pass "status still lists udp" || e2e_fail "status lost udp: $(status_instances)"
check_live_dups "at the end"

# ---- totals --------------------------------------------------------------------
: >"$E2E_DIR/stop"
wait "$POLLER" 2>/dev/null
POLLER=
polls=$(wc -l <"$E2E_DIR/polls")
e2e_log "figures: $polls polls of leases --json --online (max online $(sort -n "$E2E_DIR/polls" | tail -n 1)), $CHECKS checks of the live clients' PUSH_REPLY, $(wc -l <"$E2E_DIR/told") addresses told, $(grep -c ' event=connect ' "$E2E_DIR/usage.log") connects logged"
[ "$polls" -ge 20 ] && e2e_pass "$polls polls of the online leases during the run" ||
	e2e_fail "only $polls successful polls of the online leases"
e2e_assert_eq "polls that failed" "$(wc -l <"$E2E_DIR/poll-errors") $(head -n 1 "$E2E_DIR/poll-errors")" "0 "
e2e_assert_eq "addresses held twice in polled online leases" "$(head -n 3 "$E2E_DIR/poll-dups")" ""
e2e_assert_eq "addresses pushed to two live clients" "$LIVE_DUPS" 0
e2e_assert_eq "addresses held twice in the final leases" "$(vp leases --json | mp_json_dups | head -n 3)" ""
e2e_finish

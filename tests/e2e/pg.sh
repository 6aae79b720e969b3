#!/usr/bin/env bash
# Several hosts, one address space: the PostgreSQL store
# (openvpn-plugin-vpnpool(8), vpnpool.conf(5): store, node, store-timeout,
# node-timeout).  A throwaway PostgreSQL cluster (tests/pglib.sh: initdb and
# pg_ctl as nobody, in a temp dir) and three real OpenVPN servers a, b, c,
# each with a tun, a port, a state-dir, a usage log and a vpnpool.conf of
# its own that name the same database with distinct `node` names, on one
# tun network.  Real --dev null clients.  Checks:
# - churn: PG_CLIENTS (default 30) clients connect to the three servers,
#   then move between them for PG_ROUNDS rounds (half of the moves while
#   still online on the old server); no address is held by two identities,
#   checked all along by a poller (the live clients' last PUSH_REPLY, and
#   the database's online leases) and after every step; every client gets
#   its first address back on whichever server it reaches (sticky across
#   servers);
# - 60 clients at once, spread over the servers, into a pool of 50 ("small",
#   matched by a CN glob): exactly 50 served (50 distinct addresses of the
#   pool), 10 refused (AUTH_FAILED), 10 `event=reject ... reason=exhausted`
#   lines across the servers' usage logs;
# - the database SIGSTOPped: server a's management interface answers at once
#   while a client's connect is pending; that client is refused after
#   store-timeout (2 s) with reason=store-error and leaves no online lease;
#   the online clients stay online (no restart, still in the server's
#   status, still online in the database);
# - the database stopped (pg_ctl stop) and started: the servers stay up,
#   a connect is refused while it is down (reason=store-error), service
#   resumes by itself after;
# - server c SIGKILLed: its sessions become held in the database within
#   2 x node-timeout; its clients get their sticky addresses on a and b.
# Runs in a network namespace of its own; about 2 minutes on 2 CPUs.
# PG_NODE_TIMEOUT (default 8 s): the servers' node-timeout; the database is
# frozen or down for less than that.  PG_FREEZE_HOLD=S keeps it frozen S s
# longer (online sessions must stay online all the same).
# PG_CONTROL=1, the control run that shows the checks can fail: no `store`
# line (each server its own journal: three address spaces); the checks of
# the shared space must fail then.
: "${PG_CLIENTS:=30}"
: "${PG_ROUNDS:=5}"
: "${PG_NODE_TIMEOUT:=8}"
: "${PG_FREEZE_HOLD:=0}"
: "${E2E_TIMEOUT:=300}"
if [ -z "${MULTI_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
	MULTI_NETNS=1 exec unshare --net -- "${BASH:-bash}" "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multilib.sh"
. "$(dirname "$0")/../pglib.sh"
mp_require
pg_require
r=$?
[ "$r" -eq 0 ] || { e2e_log "$([ "$r" = 77 ] && echo SKIP || echo FAIL): PostgreSQL (see above)"; exit "$r"; }
N=$PG_CLIENTS
NT=$PG_NODE_TIMEOUT
SERVERS=(a b c)
NET=10.$((64 + $$ % 120))
T_START=$(date +%s)
e2e_log "$N clients, $PG_ROUNDS churn rounds, 3 servers, tun network $NET.0.0/16, node-timeout $NT s"

# ---- the database ------------------------------------------------------------------
E2E_ON_EXIT=': >"$E2E_DIR/stop"; [ -z "${POLLER:-}" ] || { kill $POLLER; wait $POLLER; } 2>/dev/null
pg_cleanup'
pg_start >"$E2E_DIR/pg_start.log" 2>&1 ||
	{ cat "$E2E_DIR/pg_start.log"; e2e_fail "could not start the PostgreSQL cluster"; e2e_finish; }
e2e_log "PostgreSQL at $PG_URI (pid $PG_PID, $PG_DIR)"

# ---- certificates ------------------------------------------------------------------
e2e_pki || e2e_finish
for ((i = 0; i < N; i++)); do e2e_issue "m$i" "$(printf 'm-%03d' "$i")" >/dev/null; done
for ((i = 0; i < 60; i++)); do e2e_issue "s$i" "$(printf 's-%02d' "$i")" >/dev/null; done
for i in 900 901 902 903 904 905 906 907 908 909; do e2e_issue "x$i" "m-$i" >/dev/null; done
made=$(ls "$E2E_DIR"/pki/ | grep -c '^[msx][0-9]*\.crt$')
[ "$made" -eq $((N + 70)) ] || { e2e_fail "client certificates: $made made of $((N + 70))"; e2e_finish; }

# ---- three servers -----------------------------------------------------------------
vpnpool_conf() { # server
	{
		printf 'state-dir = "%s/state-%s"\nusage-log = "%s/usage-%s.log"\n' "$E2E_DIR" "$1" "$E2E_DIR" "$1"
		[ "${PG_CONTROL:-}" = 1 ] || printf 'store = "%s"\n' "$PG_URI"
		cat <<EOF
node = "pg-$1"
store-timeout = 2
node-timeout = $NT
hold-time = 3600
pool "small" {
    network = "$NET.200.0/26"
    range   = "$NET.200.1-$NET.200.50"
    match   = {"common_name=s-*"}
}
pool "main" {
    network = "$NET.0.0/17"
    match   = {"common_name=m-*"}
}
EOF
	} >"$E2E_DIR/vpnpool-$1.conf"
}
# Each server its own vpnpool.conf (no instance names: one per node).
mp_plugin_line() { printf 'plugin %s %s/vpnpool-%s.conf\n' "$PLUGIN" "$E2E_DIR" "$1"; }
[ "${PG_CONTROL:-}" != 1 ] || e2e_log "PG_CONTROL=1: no store line, three address spaces (checks must fail)"
MGMT_PORT=$(mp_free_port tcp)
for s in "${SERVERS[@]}"; do
	vpnpool_conf "$s"
	if [ "$s" = a ]; then mp_instance a udp "management 127.0.0.1 $MGMT_PORT"; else mp_instance "$s" udp; fi
done
MP_SNIPPET="topology subnet
server $NET.0.0 255.255.0.0 nopool
verb 3"
for s in "${SERVERS[@]}"; do
	mp_server_start "$s" || { e2e_fail "server $s did not start"; e2e_finish; }
done
e2e_pass "three servers on one database started (a ${MP_PID[a]}, b ${MP_PID[b]}, c ${MP_PID[c]})"

# ---- reading the database --------------------------------------------------------
# The command against the database (vpnpool(8): leases work on the store).
vp() { "$VPNPOOL_BIN" -c "$E2E_DIR/vpnpool-a.conf" "$@"; }
# db_leases: one line per lease, "identity state address node", from
# `vpnpool leases --json`; returns 1 when the database cannot be read.
db_leases() {
	local j
	j=$(vp leases --json 2>/dev/null) || return 1
	jq -r '.leases[] | select(.address != null)
		| "\(.identity) \(.state) \(.address) \(.node // .instance // "")"' <<<"$j" 2>/dev/null
}
db_lease() { db_leases | awk -v id="$1" '$1 == id { print $2, $3 }'; }	# "state address"

# ---- clients -------------------------------------------------------------------
# start SLOT CERTSTEM SERVER IDENTITY: a client, noted in $E2E_DIR/slots
# for the poller.
start() {
	mp_client_start "$1" "$2" "$3" "${MP_NULL[@]}"
	echo "$1 $(e2e_client_pid "$1") $4" >>"$E2E_DIR/slots"
}
: >"$E2E_DIR/slots"
# The live client processes and the address each was pushed last:
# "address identity slot" lines.
live_pushed() {
	local slot pid id logs=() ids=()
	declare -A seen
	while read -r slot pid id; do
		[ -z "${seen[$slot]:-}" ] || continue
		seen[$slot]=1
		kill -0 "$pid" 2>/dev/null || continue
		logs+=("$(e2e_client_log "$slot")")
		ids+=("$id:$slot")
	done < <(tac "$E2E_DIR/slots")
	[ "${#logs[@]}" -gt 0 ] || return 0
	awk -v ids="${ids[*]}" '
		BEGIN { n = split(ids, a, " ") }
		FNR == 1 { f++ }
		/PUSH_REPLY,/ && match($0, /,ifconfig [0-9.]+ /) {
			last[f] = substr($0, RSTART + 10, RLENGTH - 11)
		}
		END { for (i = 1; i <= n; i++) if (last[i] != "") { split(a[i], b, ":"); print last[i], b[1], b[2] } }
	' "${logs[@]}"
}
# Addresses pushed to two identities among the live clients.
dups_of() { awk '{ if (!($1 in who)) who[$1] = $2; else if (index(" " who[$1] " ", " " $2 " ") == 0) { who[$1] = who[$1] " " $2; d[$1] = 1 } }
	END { for (a in d) print a " held by " who[a] }'; }

# ---- the poller: live clients' addresses and the database's online leases ----
: >"$E2E_DIR/polls"; : >"$E2E_DIR/poll-dups"; : >"$E2E_DIR/dbpolls"; : >"$E2E_DIR/dbpoll-dups"
poller() {
	local d l
	while [ ! -e "$E2E_DIR/stop" ]; do
		d=$(live_pushed | dups_of)
		[ -z "$d" ] || printf 'clients: %s\n' "$d" >>"$E2E_DIR/poll-dups"
		echo . >>"$E2E_DIR/polls"
		if [ ! -e "$E2E_DIR/db-down" ] && l=$(db_leases); then
			d=$(awk '$2 == "online" { print $3, $1 }' <<<"$l" | dups_of)
			[ -z "$d" ] || printf 'database: %s\n' "$d" >>"$E2E_DIR/dbpoll-dups"
			echo "$(awk '$2 == "online"' <<<"$l" | wc -l)" >>"$E2E_DIR/dbpolls"
		fi
		sleep 0.3
	done
}
poller </dev/null >/dev/null 2>&1 &
POLLER=$!

LIVE_DUPS=0
check_live_dups() { # when
	local d
	d=$(live_pushed | dups_of)
	if [ -n "$d" ]; then
		LIVE_DUPS=$((LIVE_DUPS + $(wc -l <<<"$d")))
		e2e_fail "$1: an address pushed to two live clients: $(head -n 3 <<<"$d" | tr '\n' ';')"
	fi
}

# ---- 1. churn across the three servers ------------------------------------------
declare -A LIVE FIRST SERVED_ON
: >"$E2E_DIR/told"
STICKY_BAD=0 REFUSED=0
ident() { printf 'm-%03d' "$1"; }
srv_of() { echo "${1:0:1}"; }	# slot "a17" -> a
record() { # i slot
	local i=$1 s=$2 out addr
	out=$(mp_outcome "$s")
	if [ "$out" != PUSH_REPLY ]; then
		REFUSED=$((REFUSED + 1))
		[ "$REFUSED" -gt 5 ] || e2e_fail "$(ident "$i") on server $(srv_of "$s"): $out, not PUSH_REPLY"
		return 1
	fi
	addr=$(e2e_pushed_ifconfig "$s")
	echo "$(ident "$i") $(srv_of "$s") $addr" >>"$E2E_DIR/told"
	SERVED_ON[$i]="${SERVED_ON[$i]:-}$(srv_of "$s")"
	if [ -z "${FIRST[$i]:-}" ]; then
		FIRST[$i]=$addr
	elif [ "$addr" != "${FIRST[$i]}" ]; then
		STICKY_BAD=$((STICKY_BAD + 1))
		[ "$STICKY_BAD" -gt 5 ] ||
			e2e_fail "$(ident "$i") got $addr on server $(srv_of "$s"), was ${FIRST[$i]} before"
	fi
	LIVE[$i]=$s
}

t0=$(date +%s)
batch=()
for ((i = 0; i < N; i++)); do
	s=${SERVERS[i % 3]}$i
	start "$s" "m$i" "$(srv_of "$s")" "$(ident "$i")"
	batch+=("$i:$s")
	if [ "${#batch[@]}" -eq 15 ] || [ "$i" -eq $((N - 1)) ]; then
		mp_wait_many 60 "${batch[@]#*:}"
		for b in "${batch[@]}"; do record "${b%%:*}" "${b#*:}"; done
		check_live_dups "connect batch up to $(ident "$i")"
		batch=()
	fi
done
e2e_log "figures: $N clients connected to 3 servers in $(($(date +%s) - t0)) s"
e2e_assert_eq "clients refused or timed out at first connect" "$REFUSED" 0
e2e_assert_eq "distinct addresses given to $N identities" \
	"$(awk '{ print $3 }' "$E2E_DIR/told" | sort -u | grep -c .)" "$N"

K=$((N / 3))
[ "$K" -ge 2 ] || K=2
MOVES=0 OVERLAPS=0
t0=$(date +%s)
for r in $(seq 1 "$PG_ROUNDS"); do
	ids=$(for i in "${!LIVE[@]}"; do echo "$i"; done | shuf -n "$K")
	stop_first=() stop_after=() starts=()
	n=0
	for i in $ids; do
		old=${LIVE[$i]}
		new=$(printf '%s\n' "${SERVERS[@]}" | grep -vx "$(srv_of "$old")" | shuf -n 1)
		if ((n++ % 2)); then stop_after+=("$old"); OVERLAPS=$((OVERLAPS + 1)); else stop_first+=("$old"); fi
		starts+=("$i:$new$i")
	done
	[ "${#stop_first[@]}" -eq 0 ] || e2e_client_stop "${stop_first[@]}"
	for b in "${starts[@]}"; do
		i=${b%%:*} s=${b#*:}
		start "$s" "m$i" "$(srv_of "$s")" "$(ident "$i")"
	done
	mp_wait_many 60 "${starts[@]#*:}"
	for b in "${starts[@]}"; do record "${b%%:*}" "${b#*:}" && MOVES=$((MOVES + 1)); done
	check_live_dups "churn round $r, moved clients and the ones they left online"
	[ "${#stop_after[@]}" -eq 0 ] || e2e_client_stop "${stop_after[@]}"
	check_live_dups "churn round $r, after the moves"
done
e2e_log "figures: $MOVES moves ($OVERLAPS while online on the old server) in $PG_ROUNDS rounds, $(($(date +%s) - t0)) s"
e2e_assert_eq "clients refused or timed out during the churn" "$REFUSED" 0
[ "$MOVES" -eq $((PG_ROUNDS * K)) ] && e2e_pass "$MOVES moves between the servers served" ||
	e2e_fail "only $MOVES of $((PG_ROUNDS * K)) moves were served"
e2e_assert_eq "clients given another address than their first (sticky across servers)" "$STICKY_BAD" 0
multi=0
for i in "${!SERVED_ON[@]}"; do
	[ "$(grep -o . <<<"${SERVED_ON[$i]}" | sort -u | wc -l)" -ge 2 ] && multi=$((multi + 1))
done
[ "$multi" -gt 0 ] && e2e_pass "$multi identities were served by two or three servers (their stickiness checked)" ||
	e2e_fail "no identity was served by two servers: stickiness not checked"

# The database agrees: every live client online at the address it was told.
online_mismatch() { # prints how many live m- clients are not online at their address in the database
	local l bad=0 i
	l=$(db_leases) || { echo "unreadable"; return; }
	for i in "${!LIVE[@]}"; do
		grep -qx "$(ident "$i") online ${FIRST[$i]} .*" <<<"$l" || bad=$((bad + 1))
	done
	echo "$bad"
}
sleep 6	# the older sessions of moved clients end (UDP: 5 s after the exit notification)
e2e_assert_eq "live clients not online at their address in the database after the churn (of ${#LIVE[@]})" \
	"$(online_mismatch)" 0

# Host routes (host-routes auto = yes with a store): each live client's /32
# is on the tun of the server it is on now, and on no other server's.
route_bad=0
declare -A ROUTES=()
for s in "${SERVERS[@]}"; do ROUTES[$s]=$(mp_host_routes "${MP_DEV[$s]}"); done
for i in "${!LIVE[@]}"; do
	here=$(srv_of "${LIVE[$i]}")
	for s in "${SERVERS[@]}"; do
		if grep -qx "${FIRST[$i]}" <<<"${ROUTES[$s]}"; then on=1; else on=0; fi
		if { [ "$s" = "$here" ] && [ $on = 0 ]; } || { [ "$s" != "$here" ] && [ $on = 1 ]; }; then
			route_bad=$((route_bad + 1))
			[ "$route_bad" -gt 5 ] || e2e_log "$(ident "$i") (${FIRST[$i]}) on $here: route on $s is $on"
		fi
	done
done
e2e_assert_eq "live clients whose /32 is not on their server's tun alone (of ${#LIVE[@]})" "$route_bad" 0

# ---- 2. 60 clients at once into a pool of 50 ---------------------------------------
small=()
t0=$(date +%s)
for ((i = 0; i < 60; i++)); do
	start "p$i" "s$i" "${SERVERS[i % 3]}" "$(printf 's-%02d' "$i")"
	small+=("p$i")
done
mp_wait_many 90 "${small[@]}"
served=0 refused=0 other=0
: >"$E2E_DIR/small-addrs"
for s in "${small[@]}"; do
	case $(mp_outcome "$s") in
	PUSH_REPLY) served=$((served + 1)); e2e_pushed_ifconfig "$s" >>"$E2E_DIR/small-addrs" ;;
	AUTH_FAILED) refused=$((refused + 1)) ;;
	*) other=$((other + 1)) ;;
	esac
done
e2e_log "figures: 60 clients into the pool of 50 in $(($(date +%s) - t0)) s"
e2e_assert_eq "60 clients into a pool of 50: served, refused, neither" "$served $refused $other" "50 10 0"
e2e_assert_eq "distinct addresses of the small pool ($NET.200.1-50) given" \
	"$(sort -u "$E2E_DIR/small-addrs" | grep -cE "^$NET\.200\.([1-9]|[1-4][0-9]|50)$")" 50
check_live_dups "the small pool full"
rejects=$(cat "$E2E_DIR"/usage-{a,b,c}.log 2>/dev/null | grep ' event=reject ' | grep ' identity=s-' | grep -c ' reason=exhausted')
e2e_assert_eq "usage logs: event=reject ... reason=exhausted lines for s- clients, all servers" "$rejects" 10
e2e_assert_eq "usage logs: servers whose log has a reject of an s- client (60 spread over 3)" \
	"$(grep -l ' event=reject identity=s-' "$E2E_DIR"/usage-{a,b,c}.log 2>/dev/null | wc -l)" 3
e2e_client_stop "${small[@]}"

# ---- 3. the database SIGSTOPped -----------------------------------------------------
# mgmt CMD: server a's management interface; MGMT_OUT gets the answer (up
# to END or the first SUCCESS/ERROR line), MGMT_MS the milliseconds it took
# (5 s at most: then MGMT_OUT is what came before).
mgmt() {
	local t0
	t0=$(date +%s%N)
	timeout 5 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "%s\n" "$2" >&3
		while IFS= read -r l <&3; do
			l=${l%$'"'\r'"'}
			printf "%s\n" "$l"
			case $l in END|SUCCESS:*|ERROR:*) break ;; esac
		done
		printf "quit\n" >&3' _ "$MGMT_PORT" "$1" >"$E2E_DIR/mgmt.out" 2>/dev/null
	MGMT_MS=$((($(date +%s%N) - t0) / 1000000))
	MGMT_OUT=$(cat "$E2E_DIR/mgmt.out")
}
mgmt version
e2e_assert_match "management interface of server a answers (database up)" "$MGMT_OUT" 'OpenVPN Version'
e2e_clients_mark
live_before=$(for i in "${!LIVE[@]}"; do echo "$i"; done | sort -n)
: >"$E2E_DIR/db-down"
pg_freeze || e2e_fail "could not SIGSTOP the database"
e2e_log "database frozen (SIGSTOP of $PG_PID and its children $(pgrep -P "$PG_PID" | tr "\n" " "))"
t0=$(date +%s%N)
start x900 x900 a m-900
sleep 0.5
mgmt status
e2e_log "figures: management 'status' answered in $MGMT_MS ms, database frozen, a connect pending"
e2e_assert_match "management 'status' of server a answers while the database is frozen" "$MGMT_OUT" '(^|'$'\n'')END$'
[ "$MGMT_MS" -lt 1000 ] && e2e_pass "management answered within 1 s ($MGMT_MS ms)" ||
	e2e_fail "management took $MGMT_MS ms while the database is frozen (event loop blocked?)"
mgmt version
e2e_assert_match "management 'version' too, $MGMT_MS ms" "$MGMT_OUT" 'OpenVPN Version'
[ "$MGMT_MS" -lt 1000 ] || e2e_fail "management 'version' took $MGMT_MS ms"
# Thawed as soon as the plugin has refused it (OpenVPN tells the client at
# its next PUSH_REQUEST, up to 5 s later): frozen for less than node-timeout.
r=$(e2e_wait_log "$E2E_DIR/usage-a.log" 10 ' event=reject identity=m-900 .*reason=store-error')
e2e_log "figures: m-900 refused by the plugin ($r) $((($(date +%s%N) - t0) / 1000000)) ms after its start (store-timeout 2 s)"
e2e_assert_eq "usage log of a: m-900 refused with reason=store-error" \
	"$(grep -c ' event=reject identity=m-900 .*reason=store-error' "$E2E_DIR/usage-a.log")" 1
# (PG_FREEZE_HOLD=S: S more seconds frozen, e.g. longer than node-timeout.)
[ "$PG_FREEZE_HOLD" = 0 ] || { e2e_log "PG_FREEZE_HOLD: frozen $PG_FREEZE_HOLD s more"; sleep "$PG_FREEZE_HOLD"; }
pg_thaw
rm -f "$E2E_DIR/db-down"
e2e_log "database thawed, $((($(date +%s%N) - t0) / 1000000)) ms after the pending client's start"
e2e_assert_eq "the client that connected while the database was frozen" "$(e2e_client_wait x900 15)" AUTH_FAILED
# The online clients stayed online: alive, no restart since the mark, in
# their server's status file, online in the database.
sleep 2
gone=0 restarted=0 unlisted=0
for i in $live_before; do
	s=${LIVE[$i]}
	kill -0 "$(e2e_client_pid "$s")" 2>/dev/null || gone=$((gone + 1))
	e2e_client_log_new "$s" | grep -qE 'Restart|SIGUSR1|Inactivity timeout|SIGTERM' && restarted=$((restarted + 1))
	grep -q "^$(ident "$i")," "$E2E_DIR/$(srv_of "$s").status" || unlisted=$((unlisted + 1))
done
e2e_assert_eq "online clients (of $(wc -w <<<"$live_before")) after the freeze: exited, restarted, not in their server's status" \
	"$gone $restarted $unlisted" "0 0 0"
e2e_assert_eq "live clients not online at their address in the database after the freeze" "$(online_mismatch)" 0
left=
for _ in $(seq 1 20); do
	left=$(db_lease m-900)
	[[ $left == online* ]] || break
	sleep 0.5
done
[[ $left == online* ]] && e2e_fail "m-900, refused with store-error, is online in the database: '$left'" ||
	e2e_pass "m-900, refused with store-error, left no online lease ('$left')"
start x901 x901 a m-901
e2e_assert_eq "a new client on a after the thaw" "$(e2e_client_wait x901 20)" PUSH_REPLY
check_live_dups "after the freeze"

# ---- 4. the database stopped and started -------------------------------------------
: >"$E2E_DIR/db-down"
pg_stop_db fast || e2e_fail "pg_ctl stop failed"
e2e_log "database stopped"
start x902 x902 b m-902
e2e_assert_eq "a client connecting to b while the database is down" "$(e2e_client_wait x902 15)" AUTH_FAILED
e2e_assert_eq "usage log of b: m-902 refused with reason=store-error" \
	"$(grep -c ' event=reject identity=m-902 .*reason=store-error' "$E2E_DIR/usage-b.log")" 1
up=0
for s in "${SERVERS[@]}"; do kill -0 "${MP_PID[$s]}" 2>/dev/null && up=$((up + 1)); done
e2e_assert_eq "servers running while the database is down" "$up" 3
mgmt version
e2e_assert_match "management of a answers while the database is down" "$MGMT_OUT" 'OpenVPN Version'
pg_start_db || e2e_fail "pg_ctl start failed"
rm -f "$E2E_DIR/db-down"
e2e_log "database started again (pid $PG_PID)"
t0=$(date +%s)
got=
for try in $(seq 1 8); do
	start x903 x903 c m-903
	got=$(e2e_client_wait x903 15)
	[ "$got" = PUSH_REPLY ] && break
	e2e_client_stop x903
	sleep 1
done
e2e_assert_eq "a new client on c after the database came back (try $try)" "$got" PUSH_REPLY
e2e_log "figures: served $(($(date +%s) - t0)) s after the database started again"
start x904 x904 b m-904
e2e_assert_eq "a new client on b after the database came back" "$(e2e_client_wait x904 20)" PUSH_REPLY
up=0
for s in "${SERVERS[@]}"; do kill -0 "${MP_PID[$s]}" 2>/dev/null && up=$((up + 1)); done
e2e_assert_eq "servers running after the database's restart" "$up" 3
gone=0
for i in $live_before; do kill -0 "$(e2e_client_pid "${LIVE[$i]}")" 2>/dev/null || gone=$((gone + 1)); done
e2e_assert_eq "churn clients gone after the database's restart" "$gone" 0
check_live_dups "after the database's restart"

# ---- 5. server c SIGKILLed ---------------------------------------------------------
declare -A ON_C
for i in "${!LIVE[@]}"; do [ "$(srv_of "${LIVE[$i]}")" = c ] && ON_C[$i]=${FIRST[$i]}; done
nc=${#ON_C[@]}
[ "$nc" -gt 0 ] || { e2e_fail "no client on c to check"; }
e2e_assert_eq "c's clients online in the database before the kill (not online, of $nc)" \
	"$(l=$(db_leases); b=0; for i in "${!ON_C[@]}"; do grep -qx "$(ident "$i") online ${ON_C[$i]} .*" <<<"$l" || b=$((b + 1)); done; echo $b)" 0
killed=${MP_PID[c]}
mp_server_kill c
t0=$(date +%s%N)
slots=()
for i in "${!ON_C[@]}"; do slots+=("${LIVE[$i]}"); unset "LIVE[$i]"; done
e2e_log "killed server c (pid $killed) with $nc sessions"
e2e_client_stop "${slots[@]}"
held_ms=
for _ in $(seq 1 $((NT * 2 * 5 + 10))); do
	l=$(db_leases)
	b=0
	for i in "${!ON_C[@]}"; do grep -qx "$(ident "$i") held ${ON_C[$i]} .*" <<<"$l" || b=$((b + 1)); done
	[ "$b" -eq 0 ] && { held_ms=$((($(date +%s%N) - t0) / 1000000)); break; }
	sleep 0.2
done
if [ -n "$held_ms" ] && [ "$held_ms" -le $((NT * 2000)) ]; then
	e2e_pass "c's $nc sessions held at their addresses $held_ms ms after the kill (node-timeout $NT s)"
else
	e2e_fail "c's sessions not all held within 2 x node-timeout ($((NT * 2)) s): ${held_ms:-never} ms; $b not held"
fi
e2e_log "figures: c's sessions held $held_ms ms after its SIGKILL (node-timeout $NT s)"
e2e_assert_eq "sessions of a and b still online in the database" "$(online_mismatch)" 0
# Its clients come back on a and b with their addresses.
slots=()
n=0
for i in "${!ON_C[@]}"; do
	s=${SERVERS[n++ % 2]}$i
	start "$s" "m$i" "$(srv_of "$s")" "$(ident "$i")"
	slots+=("$i:$s")
done
mp_wait_many 60 "${slots[@]#*:}"
before=$STICKY_BAD refused_before=$REFUSED
for b in "${slots[@]}"; do record "${b%%:*}" "${b#*:}"; done
e2e_assert_eq "c's clients refused on a and b" "$((REFUSED - refused_before))" 0
e2e_assert_eq "c's clients given another address on a and b (sticky)" "$((STICKY_BAD - before))" 0
check_live_dups "after c's clients moved"
up=0
for s in a b; do kill -0 "${MP_PID[$s]}" 2>/dev/null && up=$((up + 1)); done
e2e_assert_eq "servers a and b running" "$up" 2

# ---- totals ------------------------------------------------------------------------
: >"$E2E_DIR/stop"
wait "$POLLER" 2>/dev/null
POLLER=
polls=$(wc -l <"$E2E_DIR/polls")
dbpolls=$(wc -l <"$E2E_DIR/dbpolls")
e2e_log "figures: $polls polls of the live clients, $dbpolls of the database (max online $(sort -n "$E2E_DIR/dbpolls" | tail -n 1)), $(wc -l <"$E2E_DIR/told") addresses told, $(cat "$E2E_DIR"/usage-?.log | grep -c ' event=connect ') connects logged, $(($(date +%s) - T_START)) s"
[ "$polls" -ge 50 ] && e2e_pass "$polls polls of the live clients' addresses" || e2e_fail "only $polls polls of the live clients"
[ "$dbpolls" -ge 50 ] && e2e_pass "$dbpolls polls of the database's online leases" || e2e_fail "only $dbpolls polls of the database"
e2e_assert_eq "addresses held twice among live clients, polled" "$(head -n 3 "$E2E_DIR/poll-dups")" ""
e2e_assert_eq "addresses held twice among the database's online leases, polled" "$(head -n 3 "$E2E_DIR/dbpoll-dups")" ""
e2e_assert_eq "addresses pushed to two live clients, checked after each step" "$LIVE_DUPS" 0
e2e_finish

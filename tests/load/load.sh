#!/usr/bin/env bash
# Load, on demand (not part of make check): many real OpenVPN clients
# (--dev null, one certificate each) against one real server with the plugin.
#
#   phase 1  all clients start at once; the pool is smaller than the crowd,
#            so exactly pool-size are served and the rest refused cleanly
#   phase 2  churn for VP_LOAD_SECONDS: every second VP_LOAD_CHURN clients
#            leave and as many others (also ones refused before) come
#   phase 3  everyone leaves; the state is dumped and checked
#
# Counted: sessions started, served, refused, errors (neither answer), live
# duplicates (usage log and PUSH_REPLYs), reclaims, the server's CPU time,
# file descriptors and memory.  Run from the build directory, as root:
#
#   bash ../tests/load/load.sh
#   VP_LOAD_CLIENTS=260 VP_LOAD_POOL=200 VP_LOAD_SECONDS=180 VP_LOAD_CHURN=4 bash ../tests/load/load.sh
: "${VP_LOAD_CLIENTS:=260}"
: "${VP_LOAD_POOL:=200}"
: "${VP_LOAD_SECONDS:=180}"
: "${VP_LOAD_CHURN:=4}"
: "${E2E_TIMEOUT:=$((VP_LOAD_SECONDS + 900))}"
. "$(dirname "$0")/../e2e/lib.sh"
e2e_require
DUMP=${STATE_DUMP:-$PWD/tests/state_dump}
[ -x "$DUMP" ] || { e2e_fail "tests/state_dump not built ($DUMP): make tests/state_dump"; e2e_finish; }
N=$VP_LOAD_CLIENTS
need_fds=$((N * 4 + 256))
[ "$(ulimit -n)" -ge "$need_fds" ] || ulimit -n "$need_fds" 2>/dev/null ||
	e2e_log "note: ulimit -n is $(ulimit -n), below $need_fds"
e2e_log "$N clients, pool of $VP_LOAD_POOL, churn $VP_LOAD_CHURN/s for $VP_LOAD_SECONDS s (ulimit -n $(ulimit -n))"

t0=$(date +%s)
e2e_pki
for i in $(seq 0 $((N - 1))); do e2e_issue "L$i" "load-$i" || e2e_finish; done
e2e_log "$N client certificates in $(($(date +%s) - t0)) s"

last=$((VP_LOAD_POOL / 250))
e2e_vpnpool_conf "
pool \"load\" {
    network = \"10.8.0.0/16\"
    range   = \"10.8.1.1-10.8.$((1 + last)).$((VP_LOAD_POOL - last * 250))\"
}"
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.0.0 nopool
keepalive 5 30
verb 1
max-clients $((N + 64))
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start"; e2e_finish; }
SPID=$E2E_SERVER_PID

declare -a PID STARTS
for i in $(seq 0 $((N - 1))); do STARTS[i]=0; done
client_start() { # index
	local i=$1 pki=$E2E_DIR/pki
	openvpn --client --dev null --ifconfig-noexec --route-noexec --nobind \
		--remote 127.0.0.1 "$E2E_PORT" --proto udp --ca "$pki/ca.crt" \
		--cert "$pki/L$i.crt" --key "$pki/L$i.key" --remote-cert-tls server \
		--verb 3 --auth-retry none --connect-retry 1 --connect-retry-max 1 \
		--server-poll-timeout 60 --hand-window 60 --explicit-exit-notify 1 \
		--ping 5 --ping-exit 60 --log-append "$E2E_DIR/lc-$i.log" </dev/null >/dev/null 2>&1 &
	PID[i]=$!
	echo "$!" >>"$E2E_DIR/pids"
	STARTS[i]=$((STARTS[i] + 1))
}
alive() { [ -n "${PID[$1]:-}" ] && kill -0 "${PID[$1]}" 2>/dev/null; }
# Sessions of client i that got an answer (PUSH_REPLY or AUTH_FAILED).
answered() { grep -c -e "PUSH_REPLY," -e "AUTH_FAILED" "$E2E_DIR/lc-$1.log" 2>/dev/null; }
served_now() { grep -l "PUSH_REPLY," "$E2E_DIR"/lc-*.log 2>/dev/null | wc -l; }

FD_MAX=0
sample_fds() {
	local n
	n=$(ls "/proc/$SPID/fd" 2>/dev/null | wc -l)
	[ "$n" -gt "$FD_MAX" ] && FD_MAX=$n
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SPID/stat"; }
TCK=$(getconf CLK_TCK)
cpu0=$(cpu_ticks)

# ---- phase 1: all at once ---------------------------------------------------------
t1=$(date +%s.%N)
for i in $(seq 0 $((N - 1))); do client_start "$i"; done
t_started=$(date +%s.%N)
decided=0
for _ in $(seq 1 240); do
	decided=$(grep -l -e "PUSH_REPLY," -e "AUTH_FAILED" "$E2E_DIR"/lc-*.log 2>/dev/null | wc -l)
	sample_fds
	[ "$decided" -ge "$N" ] && break
	sleep 1
done
t_decided=$(date +%s.%N)
storm_served=$(grep -l "PUSH_REPLY," "$E2E_DIR"/lc-*.log | wc -l)
storm_refused=$(grep -l "AUTH_FAILED" "$E2E_DIR"/lc-*.log | wc -l)
storm_cpu=$(( $(cpu_ticks) - cpu0 ))
e2e_log "storm: $N started in $(echo "$t_started - $t1" | bc) s; all answered after $(echo "$t_decided - $t1" | bc) s: served $storm_served, refused $storm_refused, unanswered $((N - decided)); server CPU $(echo "scale=2; $storm_cpu / $TCK" | bc) s"
expect_served=$((VP_LOAD_POOL < N ? VP_LOAD_POOL : N))
e2e_assert_eq "storm: served" "$storm_served" "$expect_served"
e2e_assert_eq "storm: refused" "$storm_refused" "$((N - expect_served))"
addrs=$(for f in "$E2E_DIR"/lc-*.log; do grep -o "PUSH_REPLY,[^']*" "$f" | tail -n 1 | grep -o 'ifconfig [0-9.]*'; done)
e2e_assert_eq "storm: addresses told twice" "$(sort <<<"$addrs" | uniq -d | wc -l)" 0

# ---- phase 2: churn -----------------------------------------------------------------
end=$(($(date +%s) + VP_LOAD_SECONDS))
ticks=0
while [ "$(date +%s)" -lt "$end" ]; do
	ticks=$((ticks + 1))
	up=() down=()
	for i in $(seq 0 $((N - 1))); do
		if alive "$i"; then up+=("$i"); else down+=("$i"); fi
	done
	# Leave: running clients that have their answer; come: stopped ones.
	for _ in $(seq 1 "$VP_LOAD_CHURN"); do
		[ "${#up[@]}" -gt 0 ] || break
		k=$((RANDOM % ${#up[@]}))
		i=${up[k]}
		[ "$(answered "$i")" -ge "${STARTS[i]}" ] && kill "${PID[i]}" 2>/dev/null
		up=("${up[@]:0:k}" "${up[@]:k+1}")
	done
	for _ in $(seq 1 "$VP_LOAD_CHURN"); do
		[ "${#down[@]}" -gt 0 ] || break
		k=$((RANDOM % ${#down[@]}))
		client_start "${down[k]}"
		down=("${down[@]:0:k}" "${down[@]:k+1}")
	done
	sample_fds
	sleep 1
done
e2e_log "churn: $ticks ticks of $VP_LOAD_CHURN out / $VP_LOAD_CHURN in"

# ---- phase 3: everyone leaves ------------------------------------------------------
# Let the last sessions get their answer first.
for _ in $(seq 1 90); do
	pending=0
	declare -A ans=()
	while IFS=: read -r f c; do
		f=${f##*/lc-}
		ans[${f%.log}]=$c
	done < <(grep -c -e "PUSH_REPLY," -e "AUTH_FAILED" "$E2E_DIR"/lc-*.log)
	for i in $(seq 0 $((N - 1))); do
		alive "$i" && [ "${ans[$i]:-0}" -lt "${STARTS[i]}" ] && pending=$((pending + 1))
	done
	[ "$pending" -eq 0 ] && break
	sleep 1
done
for i in $(seq 0 $((N - 1))); do alive "$i" && kill "${PID[i]}" 2>/dev/null; done
for _ in $(seq 1 30); do
	n=0
	for i in $(seq 0 $((N - 1))); do alive "$i" && n=$((n + 1)); done
	[ "$n" -eq 0 ] && break
	sleep 1
done
sleep 7	# OpenVPN ends a session 5 s after the client's EXIT (NOTES.md)
cpu_total=$(( $(cpu_ticks) - cpu0 ))
rss=$(awk '/VmHWM/ { print $2, $3 }' "/proc/$SPID/status")
fdlim=$(awk '/Max open files/ { print $4 }' "/proc/$SPID/limits")
kill -0 "$SPID" 2>/dev/null && e2e_pass "server alive after the run" || e2e_fail "server died"
e2e_server_stop
"$DUMP" "$E2E_DIR/state" >"$E2E_DIR/dump"
e2e_assert_match "state replays, nothing held twice" "$(tail -n 1 "$E2E_DIR/dump")" \
	'corrupt=0 corrupt_offset=0 overlaps=0$'

# ---- figures ------------------------------------------------------------------------
sessions=0
for i in $(seq 0 $((N - 1))); do sessions=$((sessions + STARTS[i])); done
c_served=$(cat "$E2E_DIR"/lc-*.log | grep -c "PUSH_REPLY,")
c_refused=$(cat "$E2E_DIR"/lc-*.log | grep -c "AUTH_FAILED")
errors=$((sessions - c_served - c_refused))
u=$E2E_DIR/usage.log
s_connect=$(grep -c ' event=connect ' "$u")
s_reject=$(grep -c ' event=reject ' "$u")
s_exhausted=$(grep -c ' event=reject .*reason=exhausted' "$u")
s_reclaim=$(grep -c ' event=reclaim ' "$u")
s_disconnect=$(grep -c ' event=disconnect ' "$u")
live_dups=$(awk '
	/ event=connect / { for (i = 1; i <= NF; i++) if ($i ~ /^address=/) { if ($i in by) d++; by[$i] = 1 } next }
	/ event=disconnect / { for (i = 1; i <= NF; i++) if ($i ~ /^address=/) delete by[$i] }
	END { print d + 0 }' "$u")
plugin_errors=$(grep -h 'vpnpool:' "$E2E_DIR"/server.*.log | grep -ciE 'cannot|damaged|not online|internal')
e2e_assert_eq "duplicates (live sessions sharing an address, usage log)" "$live_dups" 0
# What the clients were told, against the usage log: every address in a
# client's PUSH_REPLYs (all its sessions, churn included) is one the plugin
# logged as connected for that very client, so the log's "no two live
# sessions share an address" covers what the clients saw.
told_unlogged=$(for i in $(seq 0 $((N - 1))); do
	grep -o "PUSH_REPLY,[^']*" "$E2E_DIR/lc-$i.log" | grep -o 'ifconfig [0-9.]*' |
		sed "s/^ifconfig /load-$i /"
done | sort -u | comm -23 - <(sed -n 's/.* event=connect identity=\([^ ]*\) .*address=\([0-9.]*\).*/\1 \2/p' "$u" | sort -u) | wc -l)
e2e_assert_eq "addresses told to a client that the plugin did not log for it" "$told_unlogged" 0
told_any=$(cat "$E2E_DIR"/lc-*.log | grep -o "PUSH_REPLY,[^']*" | grep -c 'ifconfig [0-9]')
e2e_assert_eq "clients told an address at all" "$((told_any >= VP_LOAD_POOL))" 1
e2e_assert_eq "sessions with no answer (errors)" "$errors" 0
e2e_assert_eq "plugin error lines in OpenVPN's log" "$plugin_errors" 0
e2e_assert_eq "refusals other than exhausted" "$((s_reject - s_exhausted))" 0
e2e_assert_eq "every client PUSH_REPLY has a connect line" "$((s_connect >= c_served))" 1
e2e_assert_eq "usage lines that are not one logfmt line" "$(grep -vc '^time=[0-9T:Z-]* event=[a-z]* ' "$u")" 0
e2e_log "figures: clients=$N pool=$VP_LOAD_POOL seconds=$VP_LOAD_SECONDS sessions=$sessions served=$c_served refused=$c_refused errors=$errors duplicates=$live_dups"
e2e_log "figures: server usage log: connect=$s_connect reject=$s_reject (exhausted $s_exhausted) reclaim=$s_reclaim disconnect=$s_disconnect; leases at end: $(sed -n 's/.* leases=\([0-9]*\).*/\1/p' "$E2E_DIR/dump" | tail -n 1)"
e2e_log "figures: server CPU $(echo "scale=2; $cpu_total / $TCK" | bc) s in all ($(echo "scale=2; $storm_cpu / $TCK" | bc) s for the storm), peak RSS $rss, peak fds $FD_MAX of $fdlim"
e2e_finish

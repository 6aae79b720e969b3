#!/usr/bin/env bash
# Server CPU per client, on demand: real OpenVPN with the plugin against real
# OpenVPN with its own pool, on the same /16, measured in one run.  Both
# servers run side by side; each round N clients connect to each of them at
# the same time (VP_CPU_MODE=alternate: to one, then the other), started in
# turn in an order that alternates between rounds; all get their PUSH_REPLY,
# leave, and the servers end their sessions; the server's CPU time over that cycle (utime + stime
# from /proc/PID/stat, and the scheduler's nanoseconds from
# /proc/PID/schedstat) is divided by N.  The ratio plugin / built-in is the
# figure (goal: at most 1.05).  Then the same with the plugin on a /8, which
# OpenVPN's own pool cannot do (its start fails; the message is shown).
#
#   bash ../tests/load/cpu_compare.sh            (from build/, as root)
#   VP_CPU_ROUNDS=6 VP_CPU_CLIENTS=100 VP_CPU_NET8=11.0.0.0 bash ../tests/load/cpu_compare.sh
#   VP_CPU_MODE=alternate, VP_CPU_PERF=1 ...   also samples each server with perf and prints where its time went
#
# The /8 is 11.0.0.0/8 by default, not 10.0.0.0/8: a tun route over a whole
# /8 on this host must not catch its DNS server or anything else it uses.
: "${VP_CPU_ROUNDS:=6}"
: "${VP_CPU_CLIENTS:=100}"
: "${VP_CPU_NET8:=11.0.0.0}"
: "${E2E_TIMEOUT:=$((300 + VP_CPU_ROUNDS * 120))}"
. "$(dirname "$0")/../e2e/lib.sh"
e2e_require
N=$VP_CPU_CLIENTS
t0=$(date +%s)
cns=()
for i in $(seq 0 $((N - 1))); do cns+=("cpu-$i"); done
e2e_pki "${cns[@]}"
e2e_log "$N client certificates in $(($(date +%s) - t0)) s; $VP_CPU_ROUNDS rounds of $N clients per server"

# Two servers: A (plugin) and B (built-in pool), own port, tun and files.
declare -A SPID SPORT
server_conf() { # NAME SNIPPET
	e2e_server_conf "$2"
	sed -i "s|^status .*||; s|^writepid .*||; s|^verb .*|verb 1|" "$E2E_DIR/server.conf"
	mv "$E2E_DIR/server.conf" "$E2E_DIR/server-$1.conf"
}
server_up() { # NAME
	local name=$1 log=$E2E_DIR/server-$1.log up
	: >"$log"
	openvpn --config "$E2E_DIR/server-$name.conf" --log-append "$log" </dev/null >/dev/null 2>&1 &
	SPID[$name]=$!
	echo "$!" >>"$E2E_DIR/pids"
	E2E_PIDS+=($!)
	up=$(e2e_wait_log "$log" 20 "Initialization Sequence Completed" "${SPID[$name]}")
	[ "$up" = found ] && return 0
	e2e_log "server $name did not start ($up):"
	tail -n 5 "$log" | sed 's/^/    /'
	return 1
}
server_down() { e2e_stop_pid "${SPID[$1]}"; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
nanos() { awk '{ print $1 }' "/proc/$1/schedstat"; }

# One round: N clients connect at once to each server NAME given (several
# servers: at the same time, clients started in turn, so that both see the
# same load from the rest of the machine), get their address, leave.
# RT[NAME], RN[NAME]: the ticks and nanoseconds that server spent.
declare -A RT RN PREFIX=([plugin]=p [builtin]=b [plugin8]=e)
round() {
	local name pid i c perf=() t0=() n0=() k
	for name in "$@"; do
		pid=${SPID[$name]}
		if [ -n "${VP_CPU_PERF:-}" ]; then
			perf record -q -F 2000 -p "$pid" -o "$E2E_DIR/perf-$name-$r.data" >/dev/null 2>&1 &
			perf+=($!)
		fi
	done
	[ -z "${VP_CPU_PERF:-}" ] || sleep 0.5
	for name in "$@"; do
		t0+=("$(ticks "${SPID[$name]}")")
		n0+=("$(nanos "${SPID[$name]}")")
	done
	for i in $(seq 0 $((N - 1))); do
		for name in "$@"; do
			E2E_PORT=${SPORT[$name]}
			e2e_client_start "${PREFIX[$name]}$i" --cert "$E2E_DIR/pki/c$i.crt" \
				--key "$E2E_DIR/pki/c$i.key" --verb 3 --server-poll-timeout 60 --hand-window 60
		done
	done
	for name in "$@"; do
		for _ in $(seq 1 240); do
			c=$(grep -l "PUSH_REPLY," "$E2E_DIR/client-${PREFIX[$name]}"[0-9]*.log 2>/dev/null | wc -l)
			[ "$c" -ge "$N" ] && break
			sleep 0.5
		done
		[ "$c" -ge "$N" ] || e2e_fail "round on $name: only $c of $N clients served"
		SERVED[$name]=$((${SERVED[$name]:-0} + c))
		[ "$(grep -ho "PUSH_REPLY,[^']*" "$E2E_DIR/client-${PREFIX[$name]}"[0-9]*.log |
			grep -o 'ifconfig [0-9.]*' | sort | uniq -d | wc -l)" = 0 ] ||
			e2e_fail "round on $name: an address was given twice"
	done
	for name in "$@"; do
		e2e_client_stop $(for i in $(seq 0 $((N - 1))); do echo "${PREFIX[$name]}$i"; done)
	done
	sleep 7	# the server ends a session 5 s after the client's EXIT
	k=0
	for name in "$@"; do
		RT[$name]=$(($(ticks "${SPID[$name]}") - t0[k]))
		RN[$name]=$(($(nanos "${SPID[$name]}") - n0[k]))
		k=$((k + 1))
	done
	k=0
	for name in "$@"; do
		[ -n "${VP_CPU_PERF:-}" ] || break
		kill -INT "${perf[k]}"
		wait "${perf[k]}"
		perf report -q --stdio --sort dso -i "$E2E_DIR/perf-$name-$r.data" 2>/dev/null |
			head -n 8 | sed "s/^/    perf $name: /"
		k=$((k + 1))
	done
}

e2e_vpnpool_conf '
pool "all" { network = "10.8.0.0/16" }'
SPORT[plugin]=$E2E_PORT
server_conf plugin "topology subnet
server 10.8.0.0 255.255.0.0 nopool
max-clients 4096
$(e2e_plugin_line)"
E2E_PORT=$(e2e_free_port)
[ "$E2E_PORT" != "${SPORT[plugin]}" ] || E2E_PORT=$((E2E_PORT + 1))
SPORT[builtin]=$E2E_PORT
E2E_DEV=$(printf 'vq%s' "$$" | cut -c1-15)
server_conf builtin "topology subnet
server 10.8.0.0 255.255.0.0
max-clients 4096"
E2E_DEV=$(printf 'vp%s' "$$" | cut -c1-15)
server_up plugin || e2e_finish
# Both on 10.8.0.0/16 at once: the second tun gets the same address, which
# Linux allows on another device; the clients never send traffic.
server_up builtin || e2e_finish

declare -A TICKS NANOS SERVED
TCK=$(getconf CLK_TCK)
# VP_CPU_MODE=parallel (default): each round loads both servers at once;
# alternate: one server after the other.  Either way the order alternates.
for r in $(seq 1 "$VP_CPU_ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then order="plugin builtin"; else order="builtin plugin"; fi
	if [ "${VP_CPU_MODE:-parallel}" = parallel ]; then
		round $order
	else
		for s in $order; do round "$s"; done
	fi
	for s in $order; do
		TICKS[$s]=$((${TICKS[$s]:-0} + RT[$s]))
		NANOS[$s]=$((${NANOS[$s]:-0} + RN[$s]))
		e2e_log "round $r $s: ${RT[$s]} ticks, $((RN[$s] / 1000000)) ms CPU for $N clients"
	done
done
per() { echo "scale=3; $1 / ($VP_CPU_ROUNDS * $N)" | bc; }
p_ms=$(per "${NANOS[plugin]} / 1000000")
b_ms=$(per "${NANOS[builtin]} / 1000000")
ratio_ns=$(echo "scale=3; ${NANOS[plugin]} / ${NANOS[builtin]}" | bc)
ratio_ticks=$(echo "scale=3; ${TICKS[plugin]} / ${TICKS[builtin]}" | bc)
e2e_log "figures: /16, $VP_CPU_ROUNDS rounds x $N clients each: plugin $p_ms ms CPU per client (${TICKS[plugin]} ticks), built-in $b_ms ms (${TICKS[builtin]} ticks); ratio $ratio_ns (schedstat), $ratio_ticks (utime+stime)"
e2e_assert_eq "clients served, plugin" "${SERVED[plugin]}" "$((VP_CPU_ROUNDS * N))"
e2e_assert_eq "clients served, built-in" "${SERVED[builtin]}" "$((VP_CPU_ROUNDS * N))"
if [ "$(echo "$ratio_ns <= 1.05" | bc)" = 1 ]; then
	e2e_pass "plugin / built-in CPU per client $ratio_ns <= 1.05"
else
	e2e_fail "plugin / built-in CPU per client $ratio_ns > 1.05"
fi
server_down plugin
server_down builtin

# ---- a /8 -------------------------------------------------------------------------
E2E_PORT=$(e2e_free_port)
SPORT[builtin8]=$E2E_PORT
E2E_DEV=$(printf 'vq%s' "$$" | cut -c1-15)
server_conf builtin8 "topology subnet
server $VP_CPU_NET8 255.0.0.0
max-clients 4096"
if server_up builtin8 2>/dev/null; then
	e2e_log "note: OpenVPN's own pool started on a /8"
	server_down builtin8
else
	e2e_log "OpenVPN's own pool on a /8: $(grep -m1 -iE 'error|pool' "$E2E_DIR/server-builtin8.log")"
fi
E2E_PORT=$(e2e_free_port)
SPORT[plugin8]=$E2E_PORT
E2E_DEV=$(printf 'vp%s' "$$" | cut -c1-15)
printf 'state-dir = "%s/state8"\nusage-log = "%s/usage8.log"\npool "all" { network = "%s/8" }\n' \
	"$E2E_DIR" "$E2E_DIR" "$VP_CPU_NET8" >"$E2E_DIR/vpnpool.conf"
# OpenVPN's "server" directive stops at a /16 even with nopool: "mode
# server" (in every harness config) + "ifconfig" carries the /8.
server_conf plugin8 "topology subnet
ifconfig ${VP_CPU_NET8%.0}.1 255.0.0.0
push \"topology subnet\"
max-clients 4096
$(e2e_plugin_line)"
server_up plugin8 || e2e_finish
t8=0 n8=0
for r in $(seq 1 "$VP_CPU_ROUNDS"); do
	round plugin8
	t8=$((t8 + RT[plugin8])) n8=$((n8 + RN[plugin8]))
done
e2e_log "figures: /8 with the plugin: $(per "$n8 / 1000000") ms CPU per client ($t8 ticks for $((VP_CPU_ROUNDS * N)) clients); pool size $(grep -m1 -o 'pool all: [^,]*, size [0-9]*' "$E2E_DIR/server-plugin8.log")"
e2e_assert_eq "clients served on the /8" "${SERVED[plugin8]}" "$((VP_CPU_ROUNDS * N))"
server_down plugin8
e2e_finish

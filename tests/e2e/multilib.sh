# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for several OpenVPN servers ("instances") on one vpnpool.conf, for
# tests/e2e/multi*.sh.  Source it after lib.sh and e2e_require:
#
#   mp_instance udp udp            # NAME PROTO: a port, a tun name, a config
#   mp_instance tcp tcp-server "persist-tun"    # extra server.conf lines
#   mp_server_start udp            # waits for "Initialization Sequence Completed"
#   mp_client_start c5 c5 udp      # SLOT CERTSTEM INSTANCE [openvpn options]
#   e2e_client_wait c5             # lib.sh's helpers work on slots
#   mp_server_kill tcp             # SIGKILL, reaped
#
# Every server gets its own log per start (MP_LOG[NAME]); MP_PID[NAME] is
# its pid; the plugin line names the instance (instance=NAME).

# e2e_require, and what every multi*.sh needs: lo up in the network
# namespace of its own (MULTI_NETNS=1: the script ran itself again under
# unshare --net), jq, the command.
mp_require() {
	e2e_require
	[ "${MULTI_NETNS:-}" != 1 ] || ip link set lo up ||
		e2e_skip_or_fail "cannot bring lo up in the namespace"
	command -v jq >/dev/null || e2e_skip_or_fail "jq not installed (scripts/deps.sh installs it)"
	[ -x "$VPNPOOL_BIN" ] || e2e_skip_or_fail "command not built: $VPNPOOL_BIN"
}

declare -A MP_PROTO MP_PORT MP_DEV MP_PID MP_LOG MP_RUNS MP_EXTRA
MP_NAMES=()

# A port nobody listens on for that protocol (UDP or TCP).
mp_free_port() { # udp|tcp
	local port flag=-Hlun
	[ "$1" = udp ] || flag=-Hltn
	for _ in $(seq 1 50); do
		port=$((20000 + (RANDOM * 32768 + RANDOM + $$) % 12000))
		ss "$flag" "sport = :$port" 2>/dev/null | grep -q . && continue
		grep -qx "$port" <<<"$(printf '%s\n' "${MP_PORT[@]}")" && continue
		echo "$port"
		return 0
	done
	echo $((20000 + $$ % 12000))
}

# mp_instance NAME PROTO [EXTRA-LINES]: declare an instance (a server of its
# own: port, tun "vpPIDxN", config file $E2E_DIR/NAME.conf written by
# mp_server_conf with the shared snippet MP_SNIPPET).
mp_instance() {
	local name=$1 proto=$2 p=udp
	[ "$proto" = udp ] || p=tcp
	MP_NAMES+=("$name")
	MP_PROTO[$name]=$proto
	MP_PORT[$name]=$(mp_free_port "$p")
	# A name per run and instance (the kernel limit is 15 bytes).
	MP_DEV[$name]="vp$$${name:0:1}${#MP_NAMES[@]}"
	MP_DEV[$name]=${MP_DEV[$name]:0:15}
	MP_EXTRA[$name]=${3:-}
	MP_RUNS[$name]=0
}

# The plugin line of an instance (the same vpnpool.conf for all).
# MP_CONTROL=1, the control run that shows the checks can fail: no instance
# names, and each instance but the first has a vpnpool.conf of its own (a
# state-dir of its own: two address spaces).  mp_control_confs writes them.
mp_plugin_line() {
	if [ "${MP_CONTROL:-}" = 1 ] && [ "$1" != "${MP_NAMES[0]}" ]; then
		printf 'plugin %s %s/vpnpool-%s.conf\n' "$PLUGIN" "$E2E_DIR" "$1"
	elif [ "${MP_CONTROL:-}" = 1 ]; then
		printf 'plugin %s %s/vpnpool.conf\n' "$PLUGIN" "$E2E_DIR"
	else
		printf 'plugin %s %s/vpnpool.conf instance=%s\n' "$PLUGIN" "$E2E_DIR" "$1"
	fi
}

mp_control_confs() {
	local name
	[ "${MP_CONTROL:-}" = 1 ] || return 0
	e2e_log "MP_CONTROL=1: every instance has a state-dir of its own (checks must fail)"
	for name in "${MP_NAMES[@]:1}"; do
		sed "s#^state-dir = .*#state-dir = \"$E2E_DIR/state-$name\"#" \
			"$E2E_DIR/vpnpool.conf" >"$E2E_DIR/vpnpool-$name.conf"
	done
}

# mp_server_conf NAME: $E2E_DIR/NAME.conf from MP_SNIPPET (topology, server
# line; a line "@PLUGIN@" is replaced by the instance's plugin line, else
# the plugin line is appended).  MP_LOCAL (default 127.0.0.1; "" = every
# address) is where the server listens.
mp_server_conf() {
	local name=$1 snippet
	snippet=${MP_SNIPPET//@PLUGIN@/$(mp_plugin_line "$name")}
	[ "$snippet" != "$MP_SNIPPET" ] || snippet="$MP_SNIPPET
$(mp_plugin_line "$name")"
	cat >"$E2E_DIR/$name.conf" <<EOF
mode server
tls-server
proto ${MP_PROTO[$name]}
${MP_LOCAL-local 127.0.0.1}
port ${MP_PORT[$name]}
dev-type tun
dev ${MP_DEV[$name]}
ca $E2E_DIR/pki/ca.crt
cert $E2E_DIR/pki/server.crt
key $E2E_DIR/pki/server.key
dh none
verb ${MP_VERB:-4}
keepalive 2 10
hand-window 10
$([ "${MP_PROTO[$name]}" = udp ] && echo "explicit-exit-notify 1")
writepid $E2E_DIR/$name.pid
status $E2E_DIR/$name.status 1
${MP_EXTRA[$name]}
$snippet
EOF
}

# mp_server_start NAME: start it (config from mp_server_conf, written if
# missing); wait up to 15 s for "Initialization Sequence Completed".
# Returns 1 (log tail printed) when it died or hung.
mp_server_start() {
	local name=$1 log up
	[ -f "$E2E_DIR/$name.conf" ] || mp_server_conf "$name"
	MP_RUNS[$name]=$((MP_RUNS[$name] + 1))
	log=$E2E_DIR/server-$name.${MP_RUNS[$name]}.log
	MP_LOG[$name]=$log
	E2E_SERVER_LOG=$log
	: >"$log"
	openvpn --config "$E2E_DIR/$name.conf" --log-append "$log" </dev/null >/dev/null 2>&1 &
	MP_PID[$name]=$!
	e2e_track "${MP_PID[$name]}"
	up=$(e2e_wait_log "$log" 15 "Initialization Sequence Completed" "${MP_PID[$name]}")
	[ "$up" = found ] && return 0
	e2e_log "server $name did not start ($up); log tail:"
	tail -n 15 "$log" | sed 's/^/    /'
	e2e_stop_pid "${MP_PID[$name]}"
	MP_PID[$name]=
	return 1
}

mp_server_stop() { e2e_stop_pid "${MP_PID[$1]:-}"; MP_PID[$1]=; }

mp_server_kill() {
	[ -n "${MP_PID[$1]:-}" ] || return 0
	# (In braces: bash reports a killed job on stderr at the wait.)
	{
		e2e_ours "${MP_PID[$1]}" && kill -9 "${MP_PID[$1]}"
		wait "${MP_PID[$1]}"
	} 2>/dev/null
	MP_PID[$1]=
}

# mp_client_start SLOT CERTSTEM INSTANCE [openvpn options...]: a --dev null
# client (as lib.sh's) of certificate pki/CERTSTEM.crt, to INSTANCE; SLOT
# names the process for e2e_client_wait, e2e_push_reply, e2e_client_stop.
# MP_CLIENT_NETNS runs it in that network namespace; MP_REMOTE (default
# 127.0.0.1) is the server's address.
mp_client_start() {
	local slot=$1 stem=$2 inst=$3 pki=$E2E_DIR/pki log proto=udp ns=()
	shift 3
	[ "${MP_PROTO[$inst]}" = udp ] || proto=tcp-client
	[ -z "${MP_CLIENT_NETNS:-}" ] || ns=(ip netns exec "$MP_CLIENT_NETNS")
	log=$(e2e_client_log "$slot")
	: >"$log"
	echo 0 >"$E2E_DIR/client-$slot.mark"
	grep -qx -- "$slot" "$E2E_DIR/clients" || echo "$slot" >>"$E2E_DIR/clients"
	"${ns[@]}" openvpn --client --nobind \
		--remote "${MP_REMOTE:-127.0.0.1}" "${MP_PORT[$inst]}" --proto "$proto" \
		--ca "$pki/ca.crt" --cert "$pki/$stem.crt" --key "$pki/$stem.key" \
		--remote-cert-tls server \
		--verb 3 --auth-retry none --connect-retry 1 --connect-retry-max 1 \
		--server-poll-timeout 10 --hand-window 10 --explicit-exit-notify 1 \
		--ping 2 --ping-exit 30 --log "$log" "$@" </dev/null >/dev/null 2>&1 &
	eval "E2E_CLIENT_$slot=$!"
	e2e_track $!
}

# mp_client_null: the options of a client without a data path (lib.sh's).
MP_NULL=(--dev null --ifconfig-noexec --route-noexec)

# mp_wait_many SECONDS SLOT...: wait until every slot's log has a
# PUSH_REPLY or AUTH_FAILED, or its process is gone (one grep over all logs
# per poll).  Prints nothing; the outcome is read per slot afterwards.
mp_wait_many() {
	local secs=$1 i files=() left
	shift
	for s in "$@"; do files+=("$(e2e_client_log "$s")"); done
	for ((i = 0; i < secs * 5; i++)); do
		left=$(grep -L -e 'PUSH_REPLY,' -e AUTH_FAILED -e 'Exiting due to' "${files[@]}" 2>/dev/null | wc -l)
		[ "$left" -eq 0 ] && return 0
		sleep 0.2
	done
	return 1
}

# The outcome of a slot now: PUSH_REPLY, AUTH_FAILED or NONE.
mp_outcome() {
	local log
	log=$(e2e_client_log "$1")
	if grep -q 'PUSH_REPLY,' "$log" 2>/dev/null; then echo PUSH_REPLY
	elif grep -q AUTH_FAILED "$log" 2>/dev/null; then echo AUTH_FAILED
	else echo NONE; fi
}

# vpnpool command with the shared config.
vp() { "$VPNPOOL_BIN" -c "$E2E_DIR/vpnpool.conf" "$@"; }

# Addresses held twice in a `leases --json` document on stdin: one line per
# address with its identities ("" when none).
mp_json_dups() {
	jq -r '[.leases[] | select(.address != null) | {a: .address, i: .identity}]
		| group_by(.a) | map(select(length > 1))
		| .[] | "\(.[0].a) held by \([.[].i] | join(","))"' 2>/dev/null
}

# The /32 host routes on a device (any table): one address per line.
mp_host_routes() { # dev
	ip -4 route show table all dev "$1" 2>/dev/null |
		awk '$1 ~ /^[0-9.]+$/ || $1 ~ /\/32$/ { a = $1; sub(/\/32$/, "", a); print a }' | sort -u
}

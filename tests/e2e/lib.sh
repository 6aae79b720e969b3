# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end test helpers: a real OpenVPN server (dev tun, UDP on 127.0.0.1)
# and real OpenVPN clients (--dev null).  Source it from a test script:
#
#   . "$(dirname "$0")/lib.sh"
#   e2e_require [--no-plugin]      # skip (77) or, under CI=true, fail (1)
#   e2e_pki alice bob              # CA, server cert, client certs c0, c1
#   e2e_server_start "topology subnet
#   server 10.8.0.0 255.255.255.0"
#   e2e_client_start 0; e2e_client_wait 0      # prints PUSH_REPLY (or AUTH_FAILED, EXITED, TIMEOUT)
#   e2e_assert_match "addr" "$(e2e_pushed_ifconfig 0)" '^10\.8\.0\.'
#   e2e_finish                     # PASS/FAIL summary, exit 0/1
#
# Every process started here is stopped on exit (trap, plus a watchdog for
# when the script itself is killed).  Concurrent runs get their own scratch
# directory, port and tun device.  See tests/e2e/NOTES.md for what OpenVPN
# 2.6 does (envs, refusals, SIGHUP) that these helpers rely on.
#
# Environment: PLUGIN (the built .so; default .libs/ in the current dir),
# VPNPOOL_BIN, E2E_SERVER_WRAP (a command the server is started under, e.g.
# setpriv with a capability bounding set), E2E_KEEP=1 keeps the scratch
# directory (it is also kept when a check failed), E2E_TIMEOUT (seconds,
# default 300) caps a whole run, E2E_ON_EXIT (shell code) runs at exit after
# the run's processes are stopped, E2E_RUNDIR (default the scratch dir) holds
# the server's writepid and status files, CI=true turns a missing
# prerequisite into a failure.

set -u

E2E_NAME=$(basename "$0" .sh)
E2E_FAILS=0
E2E_PASSES=0
E2E_PIDS=()
E2E_SERVER_PID=
E2E_SERVER_RUN=0
E2E_SERVER_LOG=
E2E_DIR=
E2E_WATCHDOG=
: "${PLUGIN:=$PWD/.libs/openvpn-plugin-vpnpool.so}"
: "${VPNPOOL_BIN:=$PWD/vpnpool}"
: "${E2E_TIMEOUT:=300}"

e2e_log() { printf '%s: %s\n' "$E2E_NAME" "$*"; }

# ---- set-up and tear-down ----------------------------------------------------

e2e_skip_or_fail() {
	if [ "${CI:-}" = true ]; then
		e2e_log "FAIL: $* (CI=true: end-to-end tests must run)"
		exit 1
	fi
	e2e_log "SKIP: $*"
	exit 77
}

# e2e_require [--no-plugin]: root, /dev/net/tun, openvpn, openssl and (unless
# --no-plugin) the built plugin; then the scratch dir, tun name and port.
e2e_require() {
	[ "$(id -u)" -eq 0 ] || e2e_skip_or_fail "need root (to open a tun device)"
	[ -c /dev/net/tun ] || e2e_skip_or_fail "no /dev/net/tun"
	command -v openvpn >/dev/null || e2e_skip_or_fail "openvpn not installed"
	command -v openssl >/dev/null || e2e_skip_or_fail "openssl not installed"
	if [ "${1:-}" != --no-plugin ]; then
		[ -f "$PLUGIN" ] || e2e_skip_or_fail "plugin not built: $PLUGIN"
	fi
	E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vpnpool-e2e-$E2E_NAME.XXXXXX") ||
		e2e_skip_or_fail "cannot make a scratch directory"
	: >"$E2E_DIR/pids"
	: >"$E2E_DIR/clients"
	trap e2e_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	e2e_watchdog
	# A tun name per run (pids are unique among live processes); the
	# kernel limit is 15 bytes.
	E2E_DEV="vp$$"
	E2E_DEV=${E2E_DEV:0:15}
	E2E_PORT=$(e2e_free_port)
}

# Whether pid is still a process of this run: pids are reused (pid_max may be
# 32768, and tests running in parallel start hundreds of processes), so a
# process of ours that has ended must not be signalled by its old pid.
# Everything a run starts names its scratch directory on its command line.
e2e_ours() {
	[ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] &&
		{ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$E2E_DIR"
}

# Stops what the script started if the script dies without running its
# trap (SIGKILL), and ends a run that takes longer than E2E_TIMEOUT.
e2e_watchdog() {
	local parent=$$ dir=$E2E_DIR limit=$((E2E_TIMEOUT * 2))
	(
		trap - EXIT INT TERM
		i=0
		while [ "$i" -lt "$limit" ] && kill -0 "$parent" 2>/dev/null; do
			sleep 0.5
			i=$((i + 1))
		done
		if kill -0 "$parent" 2>/dev/null; then
			echo "$E2E_NAME: FAIL: run took longer than $E2E_TIMEOUT s" >&2
			kill -TERM "$parent" 2>/dev/null
			sleep 10
		fi
		[ -f "$dir/pids" ] || exit 0
		while read -r pid; do e2e_ours "$pid" && kill -9 "$pid" 2>/dev/null; done <"$dir/pids"
		[ "${E2E_KEEP:-}" = 1 ] || [ -e "$dir/keep" ] || rm -rf "$dir"
	) </dev/null >/dev/null 2>&1 &
	E2E_WATCHDOG=$!
}

e2e_stop_pid() { # pid: SIGTERM, then e2e_reap_pid
	[ -n "$1" ] || return 0
	e2e_ours "$1" && kill "$1" 2>/dev/null
	e2e_reap_pid "$1"
}

# Wait up to 5 s for an already signalled pid, then SIGKILL.  (A second
# SIGTERM would make OpenVPN exit at once, before its exit notification
# reached the peer.)
e2e_reap_pid() {
	local pid=$1
	for _ in $(seq 1 50); do
		e2e_ours "$pid" || break
		sleep 0.1
	done
	e2e_ours "$pid" && kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

e2e_cleanup() {
	local pid
	trap - INT TERM
	[ -n "$E2E_DIR" ] || return 0
	for pid in "${E2E_PIDS[@]}" $E2E_SERVER_PID; do e2e_ours "$pid" && kill "$pid" 2>/dev/null; done
	for pid in "${E2E_PIDS[@]}" $E2E_SERVER_PID; do e2e_reap_pid "$pid"; done
	# A script's own clean-up (E2E_ON_EXIT: shell code), once its processes are gone.
	[ -z "${E2E_ON_EXIT:-}" ] || eval "$E2E_ON_EXIT"
	if [ "${E2E_KEEP:-}" = 1 ] || [ "$E2E_FAILS" -ne 0 ]; then
		: >"$E2E_DIR/keep"
		e2e_log "scratch directory kept: $E2E_DIR"
	else
		rm -rf "$E2E_DIR"
	fi
	[ -z "$E2E_WATCHDOG" ] || { kill "$E2E_WATCHDOG" 2>/dev/null; wait "$E2E_WATCHDOG" 2>/dev/null; }
	return 0
}

e2e_track() { E2E_PIDS+=("$1"); echo "$1" >>"$E2E_DIR/pids"; }

# A UDP port on 127.0.0.1 nobody uses, below the kernel's ephemeral range
# (so a client's source port cannot take it).  A race with another run is
# still possible; e2e_server_start then picks another one.
e2e_free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + (RANDOM * 32768 + RANDOM + $$) % 12000))
		ss -Hlun "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return 0; }
	done
	echo $((20000 + $$ % 12000))
}

# ---- results -----------------------------------------------------------------

e2e_fail() {
	e2e_log "FAIL: $*"
	E2E_FAILS=$((E2E_FAILS + 1))
}

e2e_pass() {
	e2e_log "PASS: $*"
	E2E_PASSES=$((E2E_PASSES + 1))
}

e2e_assert_eq() { # what got want
	if [ "$2" = "$3" ]; then e2e_pass "$1 = $3"; else e2e_fail "$1: got '$2', want '$3'"; fi
}

e2e_assert_match() { # what text extended-regex
	if [[ $2 =~ $3 ]]; then e2e_pass "$1"; else e2e_fail "$1: '$2' does not match /$3/"; fi
}

# Summary and exit status: 0 when every check passed, 1 otherwise.
e2e_finish() {
	if [ "$E2E_FAILS" -eq 0 ]; then
		e2e_log "PASS ($E2E_PASSES checks)"
		exit 0
	fi
	e2e_log "FAIL: $E2E_FAILS of $((E2E_FAILS + E2E_PASSES)) checks failed; server log tail:"
	[ -z "$E2E_SERVER_LOG" ] || tail -n 30 "$E2E_SERVER_LOG" 2>/dev/null | sed 's/^/    /'
	exit 1
}

# ---- certificates ------------------------------------------------------------

# e2e_pki CN...: a CA, a server certificate and one client certificate per
# CN, in $E2E_DIR/pki; the Nth CN (from 0) gets files cN.crt/cN.key, used by
# "e2e_client_start N".  A CN may hold any bytes but NUL and newline
# (spaces, quotes, $, ;, =, \ ...).  EC P-256 keys: fast.
e2e_pki() {
	local pki=$E2E_DIR/pki cn i=0
	mkdir -p "$pki"
	[ -f "$pki/ca.crt" ] ||
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$pki/ca.key" -out "$pki/ca.crt" -days 2 \
			-subj "/CN=vpnpool test CA" 2>/dev/null ||
		{ e2e_fail "could not make the test CA"; return 1; }
	[ -f "$pki/server.crt" ] || e2e_issue server "vpnpool-server" serverAuth || return 1
	for cn in "$@"; do
		e2e_issue "c$i" "$cn" || return 1
		i=$((i + 1))
	done
}

# e2e_issue STEM CN [EKU [DN-LINES]]: one more certificate
# ($E2E_DIR/pki/STEM.crt/.key); "e2e_client_start STEM" uses it.  EKU
# defaults to clientAuth; DN-LINES adds to the subject ("OU=Staff").
e2e_issue() {
	local pki=$E2E_DIR/pki stem=$1 cn=$2 eku=${3:-clientAuth} dn=${4:-} conf
	conf=$pki/$stem.cnf
	case $cn in *$'\n'*) e2e_fail "a CN cannot hold a newline"; return 1 ;; esac
	# A config file carries the CN verbatim: inside double quotes OpenSSL
	# only needs \ and " escaped (no -subj rules for / + = and the like).
	{
		printf '[req]\ndistinguished_name=dn\nprompt=no\nutf8=yes\nstring_mask=utf8only\n'
		printf '[dn]\nCN="%s"\n' "$(printf '%s' "$cn" | sed 's/\\/\\\\/g; s/"/\\"/g')"
		[ -z "$dn" ] || printf '%s\n' "$dn"
		printf '[ext]\nextendedKeyUsage=%s\nkeyUsage=critical,digitalSignature,keyAgreement\nbasicConstraints=CA:FALSE\n' "$eku"
	} >"$conf"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$pki/$stem.key" -out "$pki/$stem.csr" -config "$conf" 2>/dev/null &&
	openssl x509 -req -in "$pki/$stem.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -out "$pki/$stem.crt" -days 2 -extfile "$conf" -extensions ext \
		2>/dev/null || { e2e_fail "could not issue a certificate for '$cn'"; return 1; }
}

# ---- the server --------------------------------------------------------------

# e2e_server_conf SNIPPET: $E2E_DIR/server.conf; SNIPPET holds the topology
# and pool lines (e.g. "server 10.8.0.0 255.255.255.0", a plugin line).
# writepid and status go to E2E_RUNDIR (default $E2E_DIR): after "user nobody"
# OpenVPN checks on SIGHUP that it may still write there.
e2e_server_conf() {
	cat >"$E2E_DIR/server.conf" <<EOF
mode server
tls-server
proto udp
local 127.0.0.1
port $E2E_PORT
dev tun
dev-type tun
dev $E2E_DEV
ca $E2E_DIR/pki/ca.crt
cert $E2E_DIR/pki/server.crt
key $E2E_DIR/pki/server.key
dh none
verb 4
keepalive 2 10
hand-window 10
explicit-exit-notify 1
writepid ${E2E_RUNDIR:-$E2E_DIR}/server.pid
status ${E2E_RUNDIR:-$E2E_DIR}/status.log 1
$1
EOF
}

# e2e_vpnpool_conf TEXT: the plugin's config; state in $E2E_DIR/state.
e2e_vpnpool_conf() {
	printf 'state-dir = "%s/state"\nusage-log = "%s/usage.log"\n%s\n' \
		"$E2E_DIR" "$E2E_DIR" "$1" >"$E2E_DIR/vpnpool.conf"
}

e2e_plugin_line() {
	printf 'plugin %s %s/vpnpool.conf\n' "$PLUGIN" "$E2E_DIR"
}

# e2e_server_start [SNIPPET]: (write server.conf from SNIPPET if given and)
# start the server in the background; wait up to 10 s for "Initialization
# Sequence Completed".  Returns 1, printing the log tail, if it died or
# hung.  Each start logs to its own file, $E2E_SERVER_LOG.
e2e_server_start() {
	local log try up
	[ $# -eq 0 ] || e2e_server_conf "$1"
	for try in 1 2 3; do
		E2E_SERVER_RUN=$((E2E_SERVER_RUN + 1))
		log=$E2E_DIR/server.$E2E_SERVER_RUN.log
		E2E_SERVER_LOG=$log
		: >"$log"
		${E2E_SERVER_WRAP:-} openvpn --config "$E2E_DIR/server.conf" --log-append "$log" \
			</dev/null >/dev/null 2>&1 &
		E2E_SERVER_PID=$!
		echo "$E2E_SERVER_PID" >>"$E2E_DIR/pids"
		up=$(e2e_wait_log "$log" 10 "Initialization Sequence Completed" "$E2E_SERVER_PID")
		[ "$up" = found ] && return 0
		e2e_stop_pid "$E2E_SERVER_PID"
		E2E_SERVER_PID=
		# Lost a race for the port with another run: take another.
		grep -q "bind failed.*Address already in use" "$log" || break
		E2E_PORT=$(e2e_free_port)
		sed -i "s/^port .*/port $E2E_PORT/" "$E2E_DIR/server.conf"
	done
	e2e_log "server did not start ($up); log tail:"
	tail -n 15 "$log" | sed 's/^/    /'
	return 1
}

# The log of the latest server start.
e2e_server_log() { cat "$E2E_SERVER_LOG" 2>/dev/null; }

# e2e_server_stop: SIGTERM (clients get a RESTART: explicit-exit-notify),
# wait for the exit (SIGKILL after 5 s).
e2e_server_stop() {
	[ -n "$E2E_SERVER_PID" ] || return 0
	e2e_stop_pid "$E2E_SERVER_PID"
	E2E_SERVER_PID=
}

# e2e_server_restart: stop and start again with the same config, port and
# tun name.  Running clients reconnect by themselves; e2e_client_wait then
# waits for their new PUSH_REPLY.
e2e_server_restart() {
	e2e_clients_mark
	e2e_server_stop
	e2e_server_start
}

# e2e_server_hup: SIGHUP (OpenVPN closes and re-opens plugins and drops all
# clients, who reconnect); waits for the new "Initialization Sequence
# Completed".
e2e_server_hup() {
	local before
	[ -n "$E2E_SERVER_PID" ] || return 1
	before=$(grep -c "Initialization Sequence Completed" "$E2E_SERVER_LOG")
	e2e_clients_mark
	kill -HUP "$E2E_SERVER_PID"
	for _ in $(seq 1 100); do
		[ "$(grep -c "Initialization Sequence Completed" "$E2E_SERVER_LOG")" -gt "$before" ] && return 0
		kill -0 "$E2E_SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	e2e_log "server did not come back after SIGHUP; log tail:"
	tail -n 15 "$E2E_SERVER_LOG" | sed 's/^/    /'
	return 1
}

# e2e_wait_log FILE SECONDS ERE [PID]: prints "found" once a line matches,
# "exited" if PID is gone first, "timeout" after SECONDS; 0 only for found.
e2e_wait_log() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -qE -- "$3" "$1" 2>/dev/null && { echo found; return 0; }
		if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then
			grep -qE -- "$3" "$1" 2>/dev/null && { echo found; return 0; }
			echo exited
			return 1
		fi
		sleep 0.1
	done
	echo timeout
	return 1
}

# ---- clients -----------------------------------------------------------------

e2e_client_log() { printf '%s/client-%s.log' "$E2E_DIR" "$1"; }

e2e_client_pid() { eval "printf '%s' \"\${E2E_CLIENT_$1:-}\""; }

# The client's log from its mark on (the mark is set at start and by a
# server restart or SIGHUP, so a later wait sees the reconnection).
e2e_client_log_new() {
	local mark=0
	[ -f "$E2E_DIR/client-$1.mark" ] && mark=$(cat "$E2E_DIR/client-$1.mark")
	tail -n "+$((mark + 1))" "$(e2e_client_log "$1")" 2>/dev/null
}

e2e_clients_mark() {
	local name
	while read -r name; do
		wc -l <"$(e2e_client_log "$name")" >"$E2E_DIR/client-$name.mark" 2>/dev/null
	done <"$E2E_DIR/clients"
}

# e2e_client_start NAME [openvpn options...]: a client in the background,
# with certificate pki/NAME.crt or, for a number N, pki/cN.crt (e2e_pki).
# NAME: letters, digits, _.  It gives up instead of retrying when refused
# (--auth-retry none) or when the server does not answer within 10 s.
e2e_client_start() {
	local name=$1 pki=$E2E_DIR/pki stem log
	shift
	[[ $name =~ ^[A-Za-z0-9_]+$ ]] || { e2e_fail "bad client name '$name'"; return 1; }
	log=$(e2e_client_log "$name")
	local cert=()
	for stem in "$name" "c$name"; do
		if [ -f "$pki/$stem.crt" ]; then
			cert=(--cert "$pki/$stem.crt" --key "$pki/$stem.key")
			break
		fi
	done
	: >"$log"
	echo 0 >"$E2E_DIR/client-$name.mark"
	grep -qx -- "$name" "$E2E_DIR/clients" || echo "$name" >>"$E2E_DIR/clients"
	openvpn --client --dev null --ifconfig-noexec --route-noexec --nobind \
		--remote 127.0.0.1 "$E2E_PORT" --proto udp \
		--ca "$pki/ca.crt" "${cert[@]}" --remote-cert-tls server \
		--verb 4 --auth-retry none --connect-retry 1 --connect-retry-max 1 \
		--server-poll-timeout 10 --hand-window 10 --explicit-exit-notify 1 \
		--ping 2 --ping-exit 30 --log "$log" "$@" </dev/null >/dev/null 2>&1 &
	eval "E2E_CLIENT_$name=$!"
	e2e_track $!
}

# e2e_client_wait NAME [SECONDS]: wait (default 15 s) until the client was
# pushed its config or refused.  Prints PUSH_REPLY, AUTH_FAILED, EXITED (it
# gave up for another reason) or TIMEOUT; returns 0 only for PUSH_REPLY.
e2e_client_wait() {
	local name=$1 secs=${2:-15} pid i new
	pid=$(e2e_client_pid "$name")
	for ((i = 0; i < secs * 10; i++)); do
		new=$(e2e_client_log_new "$name")
		case $new in
		*"AUTH_FAILED"*) echo AUTH_FAILED; return 1 ;;
		*"PUSH_REPLY,"*) echo PUSH_REPLY; return 0 ;;
		esac
		if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
			case $(e2e_client_log_new "$name") in
			*"AUTH_FAILED"*) echo AUTH_FAILED; return 1 ;;
			*"PUSH_REPLY,"*) echo PUSH_REPLY; return 0 ;;
			esac
			echo EXITED
			return 1
		fi
		sleep 0.1
	done
	echo TIMEOUT
	return 1
}

# The PUSH_REPLY the client received last (since its mark), continuation
# messages joined: "PUSH_REPLY,route-gateway 10.8.0.1,...,ifconfig A B,...".
e2e_push_reply() {
	e2e_client_log_new "$1" | grep -o "PUSH_REPLY,[^']*" | awk '
		{ msg[n++] = $0 }
		END {
			if (!n) exit
			# Walk back from the last message over "push-continuation 2" ones.
			s = n - 1
			while (s > 0 && msg[s - 1] ~ /,push-continuation 2(,|$)/) s--
			out = msg[s]
			for (i = s + 1; i < n; i++) { m = msg[i]; sub(/^PUSH_REPLY/, "", m); out = out m }
			print out
		}'
}

e2e_push_options() { e2e_push_reply "$1" | tr ',' '\n' | tail -n +2; }

# The address of "ifconfig A B" in the client's PUSH_REPLY.
e2e_pushed_ifconfig() {
	e2e_push_options "$1" | sed -n 's/^ifconfig \([0-9.]*\) .*/\1/p'
}

# "A B" of "ifconfig A B".
e2e_pushed_ifconfig_full() {
	e2e_push_options "$1" | sed -n 's/^ifconfig //p'
}

# "ADDR/BITS" of "ifconfig-ipv6 ADDR/BITS REMOTE".
e2e_pushed_ifconfig6() {
	e2e_push_options "$1" | sed -n 's/^ifconfig-ipv6 \([^ ]*\).*/\1/p'
}

# e2e_client_stop [--wait] NAME...: SIGTERM (the client sends its
# explicit-exit-notify EXIT to the server) and wait for the processes to end.
# OpenVPN runs CLIENT_DISCONNECT only 5 s after that EXIT (hard-coded, see
# NOTES.md); with --wait, also wait (up to 8 s) until the server has logged
# the end of every client that was connected.  Stop several in one call.
e2e_client_stop() {
	local name pid before=0 connected=0 pids=() wait=0
	[ "${1:-}" != --wait ] || { wait=1; shift; }
	[ -z "$E2E_SERVER_LOG" ] ||
		before=$(grep -c "client-instance exiting" "$E2E_SERVER_LOG" 2>/dev/null)
	for name in "$@"; do
		pid=$(e2e_client_pid "$name")
		[ -n "$pid" ] || continue
		if kill -0 "$pid" 2>/dev/null && [ -n "$E2E_SERVER_PID" ] &&
			e2e_client_log_new "$name" | grep -q "PUSH_REPLY,"; then
			connected=$((connected + 1))
		fi
		e2e_ours "$pid" && kill "$pid" 2>/dev/null
		pids+=("$pid")
		eval "E2E_CLIENT_$name="
	done
	for pid in "${pids[@]}"; do e2e_reap_pid "$pid"; done
	[ "$wait" = 1 ] && [ "$connected" -gt 0 ] || return 0
	for _ in $(seq 1 80); do
		[ "$(grep -c "client-instance exiting" "$E2E_SERVER_LOG")" -ge $((before + connected)) ] && return 0
		sleep 0.1
	done
	e2e_log "note: the server has not logged the end of $connected client(s) within 8 s"
	return 1
}

# Wait until the usage log has COUNT lines matching ERE.
e2e_wait_usage() {
	for _ in $(seq 1 100); do
		[ "$(grep -cE -- "$2" "$E2E_DIR/usage.log" 2>/dev/null)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

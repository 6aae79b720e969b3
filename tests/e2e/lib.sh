# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end test helpers: a real OpenVPN server (dev tun, 127.0.0.1) with
# the built plugin, and real OpenVPN clients (--dev null).  Source it.
#
# Needs root, /dev/net/tun and openvpn; without them a test skips (exit 77)
# saying why, except under CI=true where it fails.
#
# Environment: PLUGIN (path of the built .so; default from the build dir),
# E2E_KEEP=1 keeps the scratch directory.

set -u

E2E_NAME=$(basename "$0" .sh)
E2E_FAILS=0
E2E_PIDS=()
E2E_SERVER_PID=
: "${PLUGIN:=$PWD/.libs/openvpn-plugin-vpnpool.so}"
: "${VPNPOOL_BIN:=$PWD/vpnpool}"

e2e_log() { printf '%s: %s\n' "$E2E_NAME" "$*"; }

e2e_skip_or_fail() {
	if [ "${CI:-}" = true ]; then
		e2e_log "FAIL: $* (CI=true: end-to-end tests must run)"
		exit 1
	fi
	e2e_log "SKIP: $*"
	exit 77
}

e2e_require() {
	[ "$(id -u)" -eq 0 ] || e2e_skip_or_fail "need root to open a tun device"
	[ -c /dev/net/tun ] || e2e_skip_or_fail "no /dev/net/tun"
	command -v openvpn >/dev/null || e2e_skip_or_fail "openvpn is not installed"
	command -v openssl >/dev/null || e2e_skip_or_fail "openssl is not installed"
	[ -f "$PLUGIN" ] || e2e_skip_or_fail "plugin not built: $PLUGIN"
	E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vpnpool-e2e-$E2E_NAME.XXXXXX")
	trap e2e_cleanup EXIT
	# One tun name per test run: the kernel limit is 15 bytes.
	E2E_DEV="vp$$"
	E2E_DEV=${E2E_DEV:0:15}
	E2E_PORT=$(e2e_free_port)
}

e2e_cleanup() {
	local pid
	for pid in "${E2E_PIDS[@]}" $E2E_SERVER_PID; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${E2E_PIDS[@]}" $E2E_SERVER_PID; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$pid" 2>/dev/null
	done
	if [ "${E2E_KEEP:-}" = 1 ] || [ "$E2E_FAILS" -ne 0 ]; then
		e2e_log "scratch directory kept: $E2E_DIR"
	else
		rm -rf "$E2E_DIR"
	fi
}

# A UDP port on 127.0.0.1 nobody listens on.
e2e_free_port() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 30000))
		ss -Hlun "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
	done
	echo 31194
}

e2e_fail() {
	e2e_log "FAIL: $*"
	E2E_FAILS=$((E2E_FAILS + 1))
}

e2e_pass() { e2e_log "ok: $*"; }

e2e_assert_eq() { # what got want
	if [ "$2" = "$3" ]; then e2e_pass "$1 = $3"; else e2e_fail "$1: got '$2', want '$3'"; fi
}

e2e_assert_match() { # what text regex
	if [[ $2 =~ $3 ]]; then e2e_pass "$1"; else e2e_fail "$1: '$2' does not match /$3/"; fi
}

e2e_finish() {
	if [ "$E2E_FAILS" -eq 0 ]; then
		e2e_log "PASS"
		exit 0
	fi
	e2e_log "$E2E_FAILS check(s) failed; server log tail:"
	tail -n 30 "$E2E_DIR/server.log" 2>/dev/null | sed 's/^/    /'
	exit 1
}

# ---- certificates ---------------------------------------------------------

# e2e_pki CN... : a CA, a server certificate and one client certificate per
# CN (any bytes but NUL and newline), in $E2E_DIR/pki; client N's files are
# named by e2e_cert_name.
e2e_pki() {
	local pki=$E2E_DIR/pki cn i=0
	mkdir -p "$pki"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$pki/ca.key" -out "$pki/ca.crt" -days 2 -subj "/CN=vpnpool test CA" 2>/dev/null
	e2e_issue server "vpnpool-server" serverAuth
	for cn in "$@"; do
		e2e_issue "c$i" "$cn" clientAuth
		i=$((i + 1))
	done
}

# e2e_issue FILE-STEM CN EKU
e2e_issue() {
	local pki=$E2E_DIR/pki stem=$1 cn=$2 eku=$3 conf
	conf=$pki/$stem.cnf
	# A config file carries the CN verbatim (no -subj escaping rules).
	{
		printf '[req]\ndistinguished_name=dn\nprompt=no\nutf8=yes\nstring_mask=utf8only\n'
		printf '[dn]\nCN="%s"\n' "$(printf '%s' "$cn" | sed 's/\\/\\\\/g; s/"/\\"/g')"
		printf '[ext]\nextendedKeyUsage=%s\nkeyUsage=critical,digitalSignature,keyAgreement\nbasicConstraints=CA:FALSE\n' "$eku"
	} >"$conf"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$pki/$stem.key" -out "$pki/$stem.csr" -config "$conf" 2>/dev/null &&
	openssl x509 -req -in "$pki/$stem.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
		-CAcreateserial -out "$pki/$stem.crt" -days 2 -extfile "$conf" -extensions ext \
		2>/dev/null || { e2e_fail "could not issue a certificate for '$cn'"; return 1; }
}

# ---- the server -----------------------------------------------------------

# e2e_server_conf SNIPPET: server.conf with the given topology/pool lines.
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
writepid $E2E_DIR/server.pid
status $E2E_DIR/status.log 1
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

# Start the server in the background; wait until it is up (or has died).
e2e_server_start() {
	local log=$E2E_DIR/server.log
	: >"$log.new"
	openvpn --config "$E2E_DIR/server.conf" --log-append "$log.new" >/dev/null 2>&1 &
	E2E_SERVER_PID=$!
	for _ in $(seq 1 100); do
		if grep -q "Initialization Sequence Completed" "$log.new"; then
			cat "$log.new" >>"$log"
			E2E_LOG_FROM=$(wc -l <"$log")
			return 0
		fi
		kill -0 "$E2E_SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$log.new" >>"$log"
	E2E_SERVER_PID=
	return 1
}

e2e_server_log() { cat "$E2E_DIR/server.log.new" 2>/dev/null; }

e2e_server_stop() {
	[ -n "$E2E_SERVER_PID" ] || return 0
	kill "$E2E_SERVER_PID" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$E2E_SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$E2E_SERVER_PID" 2>/dev/null
	wait "$E2E_SERVER_PID" 2>/dev/null
	E2E_SERVER_PID=
}

# ---- clients ---------------------------------------------------------------

# e2e_client_start N [extra openvpn options...]: client with certificate cN.
e2e_client_start() {
	local n=$1
	shift
	: >"$E2E_DIR/c$n.log"
	openvpn --client --dev null --ifconfig-noexec --route-noexec --nobind \
		--remote 127.0.0.1 "$E2E_PORT" --proto udp \
		--ca "$E2E_DIR/pki/ca.crt" --cert "$E2E_DIR/pki/c$n.crt" --key "$E2E_DIR/pki/c$n.key" \
		--remote-cert-tls server --verb 4 --auth-retry none --connect-retry-max 1 \
		--hand-window 10 --explicit-exit-notify 1 --ping 2 --ping-exit 30 \
		--log "$E2E_DIR/c$n.log" "$@" >/dev/null 2>&1 &
	eval "E2E_CLIENT_$n=$!"
	E2E_PIDS+=($!)
}

# e2e_client_wait N: wait for PUSH_REPLY or AUTH_FAILED; prints which.
e2e_client_wait() {
	local log=$E2E_DIR/c$1.log
	for _ in $(seq 1 150); do
		if grep -q "AUTH_FAILED" "$log"; then echo AUTH_FAILED; return 0; fi
		if grep -q "PUSH_REPLY" "$log"; then echo PUSH_REPLY; return 0; fi
		sleep 0.1
	done
	echo TIMEOUT
}

# The PUSH_REPLY text client N received.
e2e_push_reply() {
	grep -o "PUSH_REPLY,[^']*" "$E2E_DIR/c$1.log" | tail -n 1
}

# The address of "ifconfig A B" in client N's PUSH_REPLY.
e2e_pushed_ifconfig() {
	e2e_push_reply "$1" | tr ',' '\n' | sed -n 's/^ifconfig \([0-9.]*\) .*/\1/p'
}

e2e_pushed_ifconfig_full() {
	e2e_push_reply "$1" | tr ',' '\n' | sed -n 's/^ifconfig //p'
}

e2e_pushed_ifconfig6() {
	e2e_push_reply "$1" | tr ',' '\n' | sed -n 's/^ifconfig-ipv6 \([^ ]*\) .*/\1/p'
}

# Stop client N and wait until the server has seen it go.
e2e_client_stop() {
	local pid
	eval "pid=\${E2E_CLIENT_$1:-}"
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	eval "E2E_CLIENT_$1="
}

# Wait until the usage log has COUNT lines matching REGEX (disconnects are
# reported by the server a moment after the client exits).
e2e_wait_usage() {
	for _ in $(seq 1 100); do
		[ "$(grep -cE "$2" "$E2E_DIR/usage.log" 2>/dev/null)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

#!/usr/bin/env bash
# The plugin under OpenVPN's privilege drop, as operators run it: `user
# nobody`, `group nogroup`, `persist-tun`, `persist-key`, a tun made
# beforehand for nobody (`openvpn --mktun --user nobody`) so that SIGHUP can
# reopen it, and fresh root-owned directories for the state, the usage log
# and the metrics file.  Checks: clients are served from the pool; the usage
# log and the metrics file stay current after the drop; SIGHUP twice (the
# plugin is closed and opened again by nobody) and the server still serves,
# with sticky addresses; SIGUSR1 keeps the plugin open; a full restart keeps
# the addresses; nothing the server started outlives it; then the same with
# `chroot` (state and logs outside the jail).  Last, tests/drop_driver (the
# entry points, 160,000 lease changes after the drop) in both modes.
# The server runs under systemd's capability bounding set of Debian 12's
# openvpn-server@.service (no CAP_CHOWN, CAP_FOWNER; CAP_DAC_OVERRIDE kept),
# through setpriv, as the unit would start it.
# PRIVDROP_CONTROL=1: all of it without `user`/`group` (drop_driver
# --no-drop).  See tests/e2e/NOTES.md section 11 for what OpenVPN 2.6 does
# here and why the set-up below is what it is.
. "$(dirname "$0")/lib.sh"
e2e_require
: "${DRIVER:=$PWD/tests/drop_driver}"
getent passwd nobody >/dev/null && getent group nogroup >/dev/null ||
	e2e_skip_or_fail "needs a user nobody and a group nogroup"
[ -x "$DRIVER" ] || e2e_skip_or_fail "tests/drop_driver not built: $DRIVER"
command -v setpriv >/dev/null || e2e_skip_or_fail "setpriv (util-linux) not installed"
E2E_SERVER_WRAP="setpriv --bounding-set -all,+ipc_lock,+net_admin,+net_bind_service,+net_raw,+setgid,+setuid,+setpcap,+sys_chroot,+dac_override,+audit_write --"

# nobody must reach what OpenVPN reopens at SIGHUP: the scratch dir itself,
# the server key (re-read by the options check), writepid/status (their
# directory and files must be writable), the plugin (dlopen()ed again) and a
# tun clone device it may open (/dev/net/tun may be 0600, as in containers).
chmod 0755 "$E2E_DIR"
mknod "$E2E_DIR/tun" c 10 200 2>/dev/null && chmod 0666 "$E2E_DIR/tun" ||
	e2e_skip_or_fail "cannot make a tun device node (mknod)"
E2E_RUNDIR=$E2E_DIR/run
# Before each start: OpenVPN (root) writes the pid file at start and removes
# it at exit, so a file nobody can rewrite at SIGHUP must be there already.
prepare_run() {
	mkdir -p "$E2E_RUNDIR"
	: >"$E2E_RUNDIR/server.pid"
	: >"$E2E_RUNDIR/status.log"
	chown -R nobody "$E2E_RUNDIR"
}
start_server() { prepare_run; e2e_server_start; }
e2e_pki alice bob carol || e2e_finish
chown nobody "$E2E_DIR/pki/server.key"
mkdir -p -m 0755 "$E2E_DIR/lib" "$E2E_DIR/etc" "$E2E_DIR/metrics"
PLUG=$E2E_DIR/lib/openvpn-plugin-vpnpool.so
cp "$PLUGIN" "$PLUG"
STATE=$E2E_DIR/var/lib/openvpn/vpnpool
LOGDIR=$E2E_DIR/var/log/openvpn
U=$LOGDIR/vpnpool-usage.log
M=$E2E_DIR/metrics/vpnpool.prom
VCONF=$E2E_DIR/etc/vpnpool.conf
cat >"$VCONF" <<EOF
state-dir    = "$STATE"
usage-log    = "$U"
metrics-file = "$M"
pool "p" { network = "10.8.0.0/24" }
EOF
chmod 0644 "$VCONF"
if ! openvpn --mktun --dev "$E2E_DEV" --dev-type tun --user nobody >/dev/null 2>&1; then
	e2e_skip_or_fail "openvpn --mktun failed"
fi
E2E_ON_EXIT="openvpn --rmtun --dev $E2E_DEV --dev-type tun >/dev/null 2>&1"

# PRIVDROP_CONTROL=1: the same run by a server that keeps root (no user,
# group), and drop_driver --no-drop: what fails only then is the drop's doing.
DROP_LINES="user nobody
group nogroup"
[ "${PRIVDROP_CONTROL:-}" != 1 ] || DROP_LINES=
server_conf() { # [chroot-dir]
	e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
$DROP_LINES
persist-tun
persist-key
disable-dco
dev-node $E2E_DIR/tun
${1:+chroot $1}
plugin $PLUG $VCONF"
}

# until_true SECONDS COMMAND...: poll (0.1 s) until COMMAND succeeds.
until_true() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	"$@"
}

metric() { awk -v n="$1" '$1 == n { print $2 }' "$M" 2>/dev/null; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
pool_size_set() { [ "$(metric 'vpnpool_pool_size{pool="p"}')" -gt 0 ] 2>/dev/null; }
usage_count() { grep -c -- " event=$1 " "$U" 2>/dev/null || true; }
usage_is() { [ "$(usage_count "$1")" = "$2" ]; }
# Connects since the plugin's latest start, as its metrics count them.
connects_since_start() {
	awk '/ event=start / { n = 0 } / event=connect / { n++ } END { print n + 0 }' "$U" 2>/dev/null
}
# The plugin's warning and error lines in every log of this run's servers.
plugin_complaints() {
	cat "$E2E_DIR"/server.*.log 2>/dev/null | grep -E 'vpnpool: ' |
		grep -E 'cannot|failed|[Dd]enied|No such file|error|refusing' || true
}

few_complaints() { # what: at most 3 warning/error lines of the plugin
	local lines n
	lines=$(plugin_complaints)
	n=$(printf '%s' "$lines" | grep -c . || true)
	if [ "$n" -le 3 ]; then
		e2e_pass "$1: $n plugin warning/error lines in OpenVPN's log (at most 3)"
	else
		e2e_fail "$1: $n plugin warning/error lines in OpenVPN's log (at most 3); first: $(printf '%s\n' "$lines" | head -n 1 | cut -d' ' -f3-); last: $(printf '%s\n' "$lines" | tail -n 1 | cut -d' ' -f3-)"
	fi
}

# Nothing the server started (a helper process of the plugin) outlives it.
nothing_left() { ! pgrep -f -- "--config $E2E_DIR/server.conf" >/dev/null; }
server_gone() { # what
	until_true 5 nothing_left
	e2e_assert_eq "$1: no process of the server left" \
		"$(pgrep -f -- "--config $E2E_DIR/server.conf" | tr '\n' ' ')" ""
}

declare -A addr
serve_all() { # what: every client gets an address back (same as before when known)
	local n got
	for n in 0 1 2; do
		e2e_assert_eq "$1: client$n outcome" "$(e2e_client_wait $n 20)" PUSH_REPLY
		got=$(e2e_pushed_ifconfig $n)
		if [ -z "${addr[$n]:-}" ]; then
			e2e_assert_match "$1: client$n address $got from the pool" "$got" \
				'^10\.8\.0\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$'
			addr[$n]=$got
		else
			e2e_assert_eq "$1: client$n keeps its address" "$got" "${addr[$n]}"
		fi
	done
}

# Metrics current: connects_total of this plugin instance, as the usage log counts it.
metrics_current() { # what
	local want
	want=$(connects_since_start)
	until_true 5 metric_is vpnpool_connects_total "$want"
	e2e_assert_eq "$1: metrics connects_total = connects since the plugin's start" \
		"$(metric vpnpool_connects_total)" "$want"
}

# ---- 1. user nobody, no chroot ----------------------------------------------
if [ -n "$DROP_LINES" ]; then
	e2e_log "part 1: user nobody, group nogroup, persist-tun, no chroot"
else
	e2e_log "part 1 (control: no user/group): persist-tun, no chroot"
fi
server_conf
if ! start_server; then
	if grep -q "cannot open the usage log" "$E2E_SERVER_LOG"; then
		e2e_fail "the plugin creates the usage log's missing parent directories ($(grep -o 'cannot open the usage log.*' "$E2E_SERVER_LOG" | head -n 1))"
		mkdir -p "$LOGDIR" && chmod 0750 "$LOGDIR" "$E2E_DIR/var/log"
		start_server || { e2e_fail "server did not start"; e2e_finish; }
	else
		e2e_fail "server did not start"
		e2e_finish
	fi
else
	e2e_pass "the plugin creates the usage log's missing parent directories"
fi
if [ -n "$DROP_LINES" ]; then
	e2e_assert_match "OpenVPN dropped privileges" "$(e2e_server_log)" 'UID set to nobody'
fi
e2e_assert_eq "state-dir created, root-owned" "$(stat -c %U "$STATE" 2>/dev/null)" root
until_true 5 pool_size_set
e2e_assert_match "metrics: pool size before the first client" \
	"$(metric 'vpnpool_pool_size{pool="p"}')" '^[1-9][0-9]*$'
e2e_assert_eq "usage log: the plugin's start" "$(usage_count start)" 1

for n in 0 1 2; do e2e_client_start $n; done
serve_all "first connects"
e2e_assert_eq "distinct addresses" "$(printf '%s\n' "${addr[@]}" | sort -u | wc -l)" 3
until_true 10 usage_is connect 3
e2e_assert_eq "usage log: a line per connect after the drop" "$(usage_count connect)" 3
metrics_current "after the drop"

for hup in 1 2; do
	starts=$(usage_count start)
	if e2e_server_hup; then
		e2e_pass "SIGHUP $hup: OpenVPN came back"
	else
		e2e_fail "SIGHUP $hup: OpenVPN came back ($(grep -E 'vpnpool: |Exiting' "$E2E_SERVER_LOG" | tail -n 2 | cut -d' ' -f3- | tr '\n' '|'))"
		break
	fi
	e2e_assert_eq "SIGHUP $hup: the plugin opened again (usage log start line)" \
		"$(usage_count start)" $((starts + 1))
	serve_all "SIGHUP $hup"
	metrics_current "SIGHUP $hup"
done

if ! kill -0 "$E2E_SERVER_PID" 2>/dev/null; then
	e2e_log "the server is gone (SIGHUP): started again for SIGUSR1"
	e2e_clients_mark
	start_server || e2e_fail "start for SIGUSR1: server did not start"
	serve_all "started again"
fi
if kill -0 "$E2E_SERVER_PID" 2>/dev/null; then
	starts=$(usage_count start)
	stops=$(usage_count stop)
	before=$(grep -c "Initialization Sequence Completed" "$E2E_SERVER_LOG")
	e2e_clients_mark
	kill -USR1 "$E2E_SERVER_PID"
	until_true 10 eval '[ "$(grep -c "Initialization Sequence Completed" "$E2E_SERVER_LOG")" -gt "$before" ]'
	serve_all "SIGUSR1"
	e2e_assert_eq "SIGUSR1: plugin stays open (no start/stop line)" \
		"$(usage_count start) $(usage_count stop)" "$starts $stops"
	metrics_current "SIGUSR1"
fi

e2e_clients_mark
e2e_server_stop
server_gone "restart"
start_server || e2e_fail "restart: server did not start"
serve_all "restart"
metrics_current "restart"
e2e_client_stop --wait 0 1 2
e2e_server_stop
server_gone "stop"
e2e_assert_eq "stop: final metrics connects_total" "$(metric vpnpool_connects_total)" \
	"$(connects_since_start)"
few_complaints "part 1"

# ---- 2. the same with chroot --------------------------------------------------
# OpenVPN re-reads its config at SIGHUP inside the jail, at the same path, and
# checks or reopens everything it names there: the jail mirrors what OpenVPN
# itself needs (config, keys, tun node, writepid/status, tmp, the jail path).
# Nothing of the plugin's: vpnpool.conf, the state, the usage log and the
# metrics file stay outside (the keeper serves them), and so does the .so
# itself (linked -z nodelete, it stays loaded across OpenVPN's dlclose and
# dlopen).
e2e_log "part 2: the same with chroot"
J=$E2E_DIR/jail
mkdir -p -m 0755 "$J"
server_conf "$J"
prepare_run
mkdir -p "$J$E2E_DIR" "$J$J/tmp" "$J/tmp"
chmod 1777 "$J/tmp" "$J$J/tmp"
cp -a "$E2E_DIR/server.conf" "$E2E_DIR/pki" "$E2E_DIR/run" "$E2E_DIR/tun" "$J$E2E_DIR/"
[ ! -e "$J$PLUG" ] || e2e_fail "chroot: the plugin must not be needed inside the jail"
chmod -R go+rX "$J"
hits=$(usage_count connect)
e2e_server_start || { e2e_fail "chroot: server did not start"; e2e_finish; }  # run/ prepared above
for n in 0 1 2; do e2e_client_start $n; done
e2e_assert_match "chroot: OpenVPN chrooted" "$(e2e_server_log)" "chroot to '$J'"
serve_all "chroot"
until_true 10 usage_is connect $((hits + 3))
e2e_assert_eq "chroot: usage log has a line per connect" "$(usage_count connect)" $((hits + 3))
metrics_current "chroot"
for hup in 1 2; do
	starts=$(usage_count start)
	if e2e_server_hup; then
		e2e_pass "chroot: SIGHUP $hup: OpenVPN came back"
	else
		e2e_fail "chroot: SIGHUP $hup: OpenVPN came back ($(grep -E 'vpnpool: |Exiting' "$E2E_SERVER_LOG" | tail -n 2 | cut -d' ' -f3- | tr '\n' '|'))"
		break
	fi
	e2e_assert_eq "chroot: SIGHUP $hup: the plugin opened again" "$(usage_count start)" \
		$((starts + 1))
	serve_all "chroot: SIGHUP $hup"
	metrics_current "chroot: SIGHUP $hup"
done
e2e_client_stop --wait 0 1 2
e2e_server_stop
server_gone "chroot: stop"
e2e_assert_eq "chroot: stop: final metrics connects_total" "$(metric vpnpool_connects_total)" \
	"$(connects_since_start)"
few_complaints "parts 1 and 2"

# ---- 3. the entry points, 160,000 lease changes after the drop -----------------
for mode in plain chroot; do
	out=$E2E_DIR/driver-$mode.out
	flag=
	[ $mode = plain ] || flag=--chroot
	[ -n "$DROP_LINES" ] || flag="$flag --no-drop"
	"$DRIVER" "$PLUG" "$E2E_DIR/driver-$mode" $flag >"$out" 2>&1
	e2e_log "drop_driver $mode: $(grep -E '^(journal_bytes_up|journal_bytes_end|log_warnings_errors|usage_connects_at_close|reopen)=' "$out" | tr '\n' ' ')"
	e2e_assert_eq "drop_driver $mode" "$(grep '^result=' "$out")" "result=PASS"
done
e2e_finish

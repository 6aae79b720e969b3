#!/usr/bin/env bash
# Hostile input from clients and from config files.
# Clients: certificate CNs with quotes, spaces, =, \, commas (OpenVPN's
# option separator), UTF-8, of 64 bytes (X.509's upper bound: OpenSSL does
# not issue longer ones); usernames
# (auth-user-pass-verify, identity = "username") with the same, 511 bytes,
# invalid UTF-8 and control characters; UV_* variables (setenv + push-peer-info)
# that decide a pool's match, with commas, spaces and a newline in them.
# Checks: every PUSH_REPLY holds only the directives OpenVPN itself sends plus
# the plugin's one ifconfig; every usage line is one well-formed logfmt line;
# the state replays with nothing twice; each client gets its address back
# after a restart; vpnpool leases/status/usage --json parse (jq) and give
# each client's identity exactly, their tables one row per lease and no
# control byte.  Config files: huge, deeply nested, unterminated strings,
# binary: OpenVPN stops at start (exit status 1, not a signal) and the log
# names FILE:LINE.
. "$(dirname "$0")/lib.sh"
e2e_require
DUMP=${STATE_DUMP:-$PWD/tests/state_dump}
[ -x "$DUMP" ] || { e2e_fail "tests/state_dump not built ($DUMP): run make check"; e2e_finish; }
[ -x "$VPNPOOL_BIN" ] || { e2e_fail "command not built: $VPNPOOL_BIN"; e2e_finish; }
command -v jq >/dev/null || e2e_skip_or_fail "jq not installed (scripts/deps.sh installs it)"
export LC_ALL=C

# What a PUSH_REPLY may carry: OpenVPN's own options and the plugin's address.
push_ok() { # NAME: "" when fine, else the offending options
	local opts
	opts=$(e2e_push_options "$1")
	[ "$(grep -c '^ifconfig ' <<<"$opts")" = 1 ] || echo "ifconfig count"
	grep -vE '^(route-gateway [0-9.]+|topology subnet|ping [0-9]+|ping-restart [0-9]+|ifconfig 10\.8\.[0-9]+\.[0-9]+ 255\.255\.0\.0|peer-id [0-9]+|cipher [A-Z0-9-]+|protocol-flags [a-z -]+|tun-mtu [0-9]+|key-derivation [a-z-]+)$' <<<"$opts"
}

# A usage line is "time=... event=..." then key=value pairs, each value bare
# (printable ASCII but space " = \) or quoted with \" \\ \xNN escapes only.
LOGFMT='^time=[0-9T:Z-]+ event=[a-z]+( [a-z0-9_]+=([]!#-<>-[^-~]+|"([] !#-[^-~]|\\\\|\\"|\\x[0-9a-f]{2})*"))*$'
check_usage_log() {
	local bad
	bad=$(grep -cvE "$LOGFMT" "$E2E_DIR/usage.log")
	e2e_assert_eq "usage lines that are not one well-formed logfmt line" "$bad" 0
	[ "$bad" = 0 ] || grep -vE "$LOGFMT" "$E2E_DIR/usage.log" | head -3 | cat -v | sed 's/^/    /'
}

check_state() { # what
	local rep
	rep=$("$DUMP" "$E2E_DIR/state" | tail -n 1)
	e2e_assert_match "$1: state replays, nothing held twice" "$rep" \
		' torn=0 .*corrupt=0 corrupt_offset=0 overlaps=0$'
}

# The command on hostile identities: every --json parses; each online lease's
# identity is the client's, exact for valid UTF-8, for invalid UTF-8 each bad
# byte as \u00XX (vpnpool(8)); tables have one row per lease and no control
# byte.  (The state-dir keeps the previous phase's leases, held: the clients
# now served are the online ones.)
# check_command PHASE NAME=IDENTITY...: the clients now served, with the
# identity OpenVPN hands the plugin; usage counts the lines of the usage log
# after its first USAGE_FROM (the phase's own).
VP=$VPNPOOL_BIN
USAGE_FROM=0
check_command() {
	local phase=$1 kv n id leases usage out bad log=$E2E_DIR/usage-$1.log
	shift
	for _ in $(seq 1 100); do
		tail -n "+$((USAGE_FROM + 1))" "$E2E_DIR/usage.log" >"$log"
		[ "$(grep -c ' event=connect ' "$log")" -ge $# ] && break
		sleep 0.1
	done
	usage=$("$VP" -c "$E2E_DIR/vpnpool.conf" usage --json --log "$log")
	leases=$("$VP" -c "$E2E_DIR/vpnpool.conf" leases --json --online)
	for cmd in "leases --json" "status --json" "usage --json"; do
		if out=$("$VP" -c "$E2E_DIR/vpnpool.conf" $cmd) && jq -e . <<<"$out" >/dev/null 2>&1; then
			e2e_pass "$phase: vpnpool $cmd is valid JSON"
		else
			e2e_fail "$phase: vpnpool $cmd is not valid JSON: $(head -c 300 <<<"$out" | cat -v)"
		fi
	done
	e2e_assert_eq "$phase: leases --json --online count" "$(jq -r .count <<<"$leases")" $#
	# (the previous phase's leases that no longer fit were dropped at the
	# start: those identities have drops, not sessions)
	e2e_assert_eq "$phase: usage --json identities with sessions" \
		"$(jq -r '[.identities[] | select(.sessions > 0)] | length' <<<"$usage")" $#
	e2e_assert_eq "$phase: status --json online" \
		"$("$VP" -c "$E2E_DIR/vpnpool.conf" status --json | jq -r .online)" $#
	for kv in "$@"; do
		n=${kv%%=*}
		id=${kv#*=}
		e2e_assert_eq "$phase: $n's lease under its exact identity has its address" \
			"$(jq -r --arg id "$id" '.leases[] | select(.identity == $id) | .address' <<<"$leases")" "${got[$n]}"
		e2e_assert_eq "$phase: $n's identity in usage --json, one session" \
			"$(jq -r --arg id "$id" '.identities[] | select(.identity == $id) | .sessions' <<<"$usage")" 1
	done
	out=$("$VP" -c "$E2E_DIR/vpnpool.conf" leases --online)
	# header, one row per lease, a blank line and the total
	e2e_assert_eq "$phase: leases --online table lines" "$(wc -l <<<"$out")" $(($# + 3))
	bad=$(grep -c $'[\x01-\x09\x0b-\x1f\x7f]' <<<"$out")
	e2e_assert_eq "$phase: leases table lines with a control byte" "$bad" 0
	for kv in "$@"; do
		n=${kv%%=*}
		e2e_assert_eq "$phase: leases table has one row with $n's address" \
			"$(grep -cE " ${got[$n]//./\\.}( |$)" <<<"$out")" 1
	done
	out=$("$VP" -c "$E2E_DIR/vpnpool.conf" usage)
	bad=$(grep -c $'[\x01-\x09\x0b-\x1f\x7f]' <<<"$out")
	e2e_assert_eq "$phase: usage table lines with a control byte" "$bad" 0
	out=$("$VP" -c "$E2E_DIR/vpnpool.conf" status)
	bad=$(grep -c $'[\x01-\x09\x0b-\x1f\x7f]' <<<"$out")
	e2e_assert_eq "$phase: status table lines with a control byte" "$bad" 0
}

declare -A got
serve_all() { # phase NAME...: every client served, nothing injected
	local phase=$1 n out bad
	shift
	for n in "$@"; do
		out=$(e2e_client_wait "$n" 20)
		e2e_assert_eq "$phase $n outcome" "$out" PUSH_REPLY
		bad=$(push_ok "$n")
		e2e_assert_eq "$phase $n: PUSH_REPLY has only expected options" "$bad" ""
		if [ -n "${got[$n]:-}" ]; then
			e2e_assert_eq "$phase $n: same address again" "$(e2e_pushed_ifconfig "$n")" "${got[$n]}"
		else
			got[$n]=$(e2e_pushed_ifconfig "$n")
		fi
	done
}

# ---- phase 1: certificate CNs, UV_* match variables ---------------------------
CN64=$(printf 'L%.0s' $(seq 1 64))
declare -A CN=(
	[h0]='q"uo'"'"'te $(x) `y`;=\ end'
	[h1]='a,ifconfig-push 6.6.6.6 255.0.0.0,b'
	[h2]='  spaces  and	tab  '
	[h3]="$CN64"
	[h4]='Zoë Ωmega 日本 ✓'
	[h5]='x=y' [h6]='\\' [h7]='"'
	[u0]=uv-admin [u1]=uv-comma [u2]=uv-newline [u3]=uv-long)
e2e_pki
for n in "${!CN[@]}"; do e2e_issue "$n" "${CN[$n]}" || e2e_finish; done
e2e_vpnpool_conf '
pool "admins" {
    network = "10.8.1.0/24"
    match   = {"UV_ROLE=admin"}
}
pool "rest" {
    network = "10.8.2.0/24"
}'
SERVER="topology subnet
server 10.8.0.0 255.255.0.0 nopool
verb 3
$(e2e_plugin_line)"
e2e_server_start "$SERVER" || { e2e_fail "server did not start"; e2e_finish; }

LONGUV=$(printf 'admin%.0s' $(seq 1 400))
start_phase1() {
	for n in h0 h1 h2 h3 h4 h5 h6 h7; do e2e_client_start "$n" --verb 3; done
	e2e_client_start u0 --verb 3 --push-peer-info --setenv UV_ROLE admin
	e2e_client_start u1 --verb 3 --push-peer-info --setenv UV_ROLE 'admin,ifconfig-push 6.6.6.6 255.0.0.0'
	e2e_client_start u2 --verb 3 --push-peer-info --setenv UV_ROLE $'user\nUV_ROLE=admin'
	e2e_client_start u3 --verb 3 --push-peer-info --setenv UV_ROLE "$LONGUV"
}
start_phase1
serve_all certs h0 h1 h2 h3 h4 h5 h6 h7 u0 u1 u3
# u2's newline splits its peer info; what OpenVPN makes of it is OpenVPN's
# business (UV_* is client controlled, vpnpool.conf(5)), but it must not break a line.
out=$(e2e_client_wait u2 20)
e2e_log "UV_ROLE with a newline: $out, $(e2e_pushed_ifconfig u2)"
e2e_assert_match "u0 (UV_ROLE=admin) in pool admins" "${got[u0]}" '^10\.8\.1\.'
e2e_assert_match "u1 (UV_ROLE with comma) in pool rest" "${got[u1]}" '^10\.8\.2\.'
e2e_assert_match "u3 (UV_ROLE of 2000 bytes) in pool rest" "${got[u3]}" '^10\.8\.2\.'
kill -0 "$E2E_SERVER_PID" && e2e_pass "server alive" || e2e_fail "server died"
e2e_assert_match "the CN with quotes is escaped in the usage log" "$(cat "$E2E_DIR/usage.log")" \
	'identity="q\\"uo'"'"'te \$\(x\) `y`;=\\\\ end"'
e2e_assert_match "the UTF-8 CN is escaped byte by byte" "$(cat "$E2E_DIR/usage.log")" \
	'identity="Zo\\xc3\\xab \\xce\\xa9mega '
e2e_assert_match "the 64-byte CN arrives whole" "$(cat "$E2E_DIR/usage.log")" "identity=$CN64 "
check_usage_log
# OpenVPN hands on a CN's tab as "_".
served=()
for n in h0 h1 h3 h4 h5 h6 h7 u0 u1 u3; do served+=("$n=${CN[$n]}"); done
served+=("h2=${CN[h2]//$'\t'/_}")
[ -z "$(e2e_pushed_ifconfig u2)" ] || { got[u2]=$(e2e_pushed_ifconfig u2); served+=("u2=${CN[u2]}"); }
check_command certs "${served[@]}"

# Restart: everyone gets the same address back.
e2e_client_stop h0 h1 h2 h3 h4 h5 h6 h7 u0 u1 u2 u3
e2e_server_stop
check_state "certs"
e2e_server_start || { e2e_fail "server did not restart"; e2e_finish; }
start_phase1
serve_all "certs, after restart" h0 h1 h2 h3 h4 h5 h6 h7 u0 u1 u3
e2e_client_wait u2 20 >/dev/null
e2e_client_stop h0 h1 h2 h3 h4 h5 h6 h7 u0 u1 u2 u3
e2e_server_stop

# ---- phase 2: usernames ------------------------------------------------------
U511=$(printf 'N%.0s' $(seq 1 511))
declare -A USER=(
	[n0]='q"uo'"'"'te $(x) `y`;=\ end'
	[n1]='a,ifconfig-push 6.6.6.6 255.0.0.0,b'
	[n2]="$U511"
	[n3]=$'bad \xff\xfe\x80 utf8 \xc3('
	[n4]=$'ctl\tchars\r\x01\x1b[31m'
	[n5]=' '
	[n6]='push "route 6.6.6.0 255.255.255.0"')
for n in "${!USER[@]}"; do printf '%s\npw\n' "${USER[$n]}" >"$E2E_DIR/up-$n"; done
e2e_issue shared shared-cert || e2e_finish
USAGE_FROM=$(wc -l <"$E2E_DIR/usage.log")
e2e_vpnpool_conf '
identity = "username"
pool "all" { network = "10.8.3.0/24" }'
e2e_server_start "$SERVER
duplicate-cn
script-security 2
auth-user-pass-verify /bin/true via-file" || { e2e_fail "server did not start"; e2e_finish; }
start_phase2() {
	for n in n0 n1 n2 n3 n4 n5 n6; do
		e2e_client_start "$n" --verb 3 --cert "$E2E_DIR/pki/shared.crt" \
			--key "$E2E_DIR/pki/shared.key" --auth-user-pass "$E2E_DIR/up-$n"
	done
}
start_phase2
serve_all usernames n0 n1 n2 n3 n4 n5 n6
e2e_assert_eq "usernames: distinct addresses" \
	"$(for n in n0 n1 n2 n3 n4 n5 n6; do echo "${got[$n]}"; done | sort -u | wc -l)" 7
e2e_assert_match "the 511-byte username arrives whole" "$(cat "$E2E_DIR/usage.log")" "identity=$U511 "
e2e_assert_match "invalid UTF-8 is escaped" "$(cat "$E2E_DIR/usage.log")" \
	'identity="bad \\xff\\xfe\\x80 utf8 \\xc3\("'
check_usage_log
# OpenVPN drops a username's control bytes itself (its log says so).
e2e_assert_match "OpenVPN's log: the username without its control bytes" "$(cat "$E2E_DIR"/server.*.log)" \
	"succeeded for username 'ctlchars\\[31m'"
check_command usernames n0="${USER[n0]}" n1="${USER[n1]}" n2="${USER[n2]}" \
	n3="$(printf '%s' "${USER[n3]}" | iconv -f ISO-8859-1 -t UTF-8)" \
	n4='ctlchars[31m' n5="${USER[n5]}" n6="${USER[n6]}"
# The documented escape, in the JSON text itself (vpnpool(8)).
e2e_assert_match "usernames: invalid UTF-8 in leases --json, byte by byte as \\u00XX" \
	"$("$VP" -c "$E2E_DIR/vpnpool.conf" leases --json)" \
	'"identity":"bad \\u00ff\\u00fe\\u0080 utf8 \\u00c3\("'
e2e_client_stop n0 n1 n2 n3 n4 n5 n6
e2e_server_stop
check_state "usernames"
e2e_server_start || { e2e_fail "server did not restart"; e2e_finish; }
start_phase2
serve_all "usernames, after restart" n0 n1 n2 n3 n4 n5 n6
e2e_client_stop n0 n1 n2 n3 n4 n5 n6
e2e_server_stop
check_usage_log
grep -q 'cannot\|damaged' "$E2E_DIR"/server.*.log &&
	e2e_fail "OpenVPN's log has a plugin error: $(grep -h 'vpnpool:.*\(cannot\|damaged\)' "$E2E_DIR"/server.*.log | head -2)"

# ---- phase 3: hostile config files -------------------------------------------
# bad_config NAME ERE: OpenVPN refuses to start (status 1) and its log names
# vpnpool.conf followed by ERE (":LINE: message").
bad_config() {
	local rc=0 log=$E2E_DIR/server.conf-$1.log
	timeout 60 openvpn --config "$E2E_DIR/server.conf" --log "$log" </dev/null >/dev/null 2>&1 || rc=$?
	e2e_assert_eq "config $1: OpenVPN exit status" "$rc" 1
	e2e_assert_match "config $1: the log names FILE:LINE" "$(grep 'vpnpool:' "$log" | head -n 3)" \
		"vpnpool: $E2E_DIR/vpnpool.conf$2"
}
conf=$E2E_DIR/vpnpool.conf
# Every file starts with these two lines, so that nothing outside the scratch
# directory is touched if a file were taken.
head2() { printf 'state-dir = "%s/state"\nusage-log = "%s/usage.log"\n' "$E2E_DIR" "$E2E_DIR"; }
{ head2; printf 'pool "p" {\n    network = "10.8.4.0/24\n}\n'; } >"$conf"
bad_config unterminated-string ':4: unterminated string'
{ head2; for _ in $(seq 1 20000); do printf 'pool "p" {\n'; done; } >"$conf"
bad_config nested-20000 ':4: '
{ head2; yes '# a comment line' | head -n 500000; printf 'pool "p" { network = "10.8.4.0/24" bogus = 1 }\n'; } >"$conf"
bad_config comments-500000 ':500003: '
{ head2; yes '# a comment line' | head -n 1100000; } >"$conf"
bad_config over-16MiB ': cannot open: not a regular file of at most 16 MiB'
{ head2; printf 'pool "p" {\n    network = "'; head -c 8000000 /dev/zero | tr '\0' 'x'; printf '"\n}\n'; } >"$conf"
bad_config string-8MB ':4: network: '
{ head2; printf 'pool "p" {\n    network = "10.8.4.0/24"\n    match = {'; for i in $(seq 1 100000); do printf '"X%d=*", ' "$i"; done; printf '"Y=1"}\n}\n'; } >"$conf"
rc=0
timeout 60 openvpn --config "$E2E_DIR/server.conf" --log "$E2E_DIR/server.conf-biglist.log" </dev/null >/dev/null 2>&1 &
pid=$!
# A valid file, however long its list: OpenVPN must come up with it.
if [ "$(e2e_wait_log "$E2E_DIR/server.conf-biglist.log" 30 "Initialization Sequence Completed" "$pid")" = found ]; then
	e2e_pass "config with a match list of 100000 entries: OpenVPN came up"
else
	e2e_fail "config with a match list of 100000 entries: $(tail -n 2 "$E2E_DIR/server.conf-biglist.log")"
fi
e2e_ours "$pid" && kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
head -c 100000 /dev/urandom >"$conf"
bad_config binary ':[0-9]+: '
{ head2; printf 'pool "p" { network = "10.8.4.0/24" }\n}\n}\n'; } >"$conf"
bad_config stray-braces ':4: unexpected closing brace'
e2e_finish

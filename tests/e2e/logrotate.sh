#!/usr/bin/env bash
# The usage log under a real logrotate (-f, several times) while clients
# connect and disconnect, with OpenVPN as root and with `user nobody` /
# `group nogroup`: `create` (+compress), `copytruncate` (+compress) and the
# shipped examples/logrotate.conf.  Across usage.log, its rotations and the
# .gz files, every connect a client saw (PUSH_REPLY) is there once: none lost,
# none twice.  A usage.log that is a symlink is refused at start; one put in
# place by a rotation is not written through: OpenVPN's log says so once, the
# lines are held and written to the path once the symlink is gone.
#
# nobody with `create 0640 root adm` needs the plugin's root helper (the
# plugin cannot open a root-owned 0640 file itself after the privilege drop).
. "$(dirname "$0")/lib.sh"
e2e_require
command -v logrotate >/dev/null || e2e_skip_or_fail "logrotate not installed (scripts/deps.sh installs it)"
getent passwd nobody >/dev/null && getent group nogroup >/dev/null ||
	e2e_skip_or_fail "no user nobody or group nogroup"
top=$(cd "$(dirname "$0")/../.." && pwd)
CYCLES=${LOGROTATE_CYCLES:-6}
CLIENTS=(0 1 2)
U=$E2E_DIR/usage.log
e2e_pki user-0 user-1 user-2
# OpenVPN as nobody reaches the usage log (and its state) by this path.
chmod 755 "$E2E_DIR"
e2e_vpnpool_conf 'pool "all" { network = "10.8.0.0/24" }'

# The usage log and its rotations, oldest last does not matter: all lines.
all_lines() {
	local f
	for f in "$U" "$U".*; do
		[ -f "$f" ] || continue
		case $f in
		*.gz) zcat "$f" ;;
		*) cat "$f" ;;
		esac
	done
}

# start_server USER-LINES: a fresh state, log and server.
start_server() {
	rm -rf "$E2E_DIR/state" "$U" "$U".* "$E2E_DIR/logrotate.state" "$E2E_DIR/target"
	e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
$1
$(e2e_plugin_line)"
	e2e_server_start
}

# rotate_mode NAME USER-LINES LOGROTATE-FILE: clients connect and disconnect
# CYCLES times while logrotate rotates every few tenths of a second.
rotate_mode() {
	local name=$1 user=$2 conf=$3 pushes=0 rotator i n got uniq broken reopen
	start_server "$user" || { e2e_fail "$name: server did not start"; return; }
	rm -f "$E2E_DIR/stop-rotating" "$E2E_DIR/rotations"
	(
		trap - EXIT INT TERM
		while [ -d "$E2E_DIR" ] && [ ! -e "$E2E_DIR/stop-rotating" ] && kill -0 $$ 2>/dev/null; do
			logrotate -f -s "$E2E_DIR/logrotate.state" "$conf" 2>>"$E2E_DIR/logrotate.err" &&
				echo >>"$E2E_DIR/rotations"
			sleep "0.$((RANDOM % 5 + 2))"
		done
	) &
	rotator=$!
	for ((i = 0; i < CYCLES; i++)); do
		for n in "${CLIENTS[@]}"; do e2e_client_start "$n"; done
		for n in "${CLIENTS[@]}"; do
			[ "$(e2e_client_wait "$n")" = PUSH_REPLY ] && pushes=$((pushes + 1))
		done
		e2e_client_stop "${CLIENTS[@]}"
	done
	: >"$E2E_DIR/stop-rotating"
	wait "$rotator"
	e2e_server_stop
	got=$(all_lines | grep -c ' event=connect ')
	uniq=$(all_lines | grep ' event=connect ' | sort -u | wc -l)
	broken=$(all_lines | grep -vc '^time=[0-9T:Z-]* event=[a-z]* ')
	reopen=$(grep -c 'cannot reopen the usage log' "$E2E_SERVER_LOG")
	e2e_assert_eq "$name: every client was served" "$pushes" $((CYCLES * ${#CLIENTS[@]}))
	e2e_assert_match "$name: logrotate rotated several times" \
		"$(wc -l <"$E2E_DIR/rotations" 2>/dev/null || echo 0)" '^([3-9]|[1-9][0-9]+)$'
	e2e_assert_eq "$name: connect lines across the rotations (0 lost)" "$got" "$pushes"
	e2e_assert_eq "$name: connect lines, each once (0 twice)" "$uniq" "$got"
	e2e_assert_eq "$name: the plugin's own count of connects" \
		"$(grep -c 'vpnpool: client user-' "$E2E_SERVER_LOG")" "$pushes"
	e2e_assert_eq "$name: lines that are not one whole logfmt line" "$broken" 0
	e2e_assert_eq "$name: OpenVPN's log: no failure to reopen" "$reopen" 0
	if [ -s "$E2E_DIR/logrotate.err" ]; then
		e2e_fail "$name: logrotate said: $(head -n 3 "$E2E_DIR/logrotate.err")"
	fi
	rm -f "$E2E_DIR/logrotate.err"
}

# logrotate_conf NAME DIRECTIVES: a logrotate file for the usage log that
# keeps every rotation (for the count).
logrotate_conf() {
	printf '%s {\n\trotate 1000\n\tmissingok\n%s\n}\n' "$U" "$2" >"$E2E_DIR/$1.logrotate"
	printf '%s' "$E2E_DIR/$1.logrotate"
}

# The shipped file, on this log, keeping every rotation.
sed -e "s|^/var/log/openvpn/vpnpool-usage.log {|$U {|" -e 's/^\trotate .*/\trotate 1000/' \
	"$top/examples/logrotate.conf" >"$E2E_DIR/example.logrotate"
grep -q "^$U {" "$E2E_DIR/example.logrotate" ||
	e2e_fail "examples/logrotate.conf does not name /var/log/openvpn/vpnpool-usage.log"

ROOT_ADM=$(logrotate_conf create "	compress
	create 0640 root adm")
NOBODY=$(logrotate_conf create-nobody "	compress
	create 0640 nobody nogroup")
COPY=$(logrotate_conf copytruncate "	compress
	copytruncate")
DROP="user nobody
group nogroup"

rotate_mode "root, create 0640 root adm + compress" "" "$ROOT_ADM"
rotate_mode "root, copytruncate + compress" "" "$COPY"
rotate_mode "root, examples/logrotate.conf" "" "$E2E_DIR/example.logrotate"
rotate_mode "nobody, create 0640 nobody nogroup + compress" "$DROP" "$NOBODY"
rotate_mode "nobody, copytruncate + compress" "$DROP" "$COPY"
rotate_mode "nobody, examples/logrotate.conf" "$DROP" "$E2E_DIR/example.logrotate"
rotate_mode "nobody, create 0640 root adm + compress (needs the root helper)" "$DROP" "$ROOT_ADM"

# ---- symlinks ----------------------------------------------------------------

# At start: refused, and the target is not appended to.
rm -rf "$E2E_DIR/state" "$U" "$U".*
: >"$E2E_DIR/target"
ln -s "$E2E_DIR/target" "$U"
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
$(e2e_plugin_line)"
e2e_log "a symlinked usage log at start: the server is expected not to start"
if e2e_server_start >/dev/null 2>&1; then
	e2e_fail "symlinked usage log at start: the server started"
	e2e_server_stop
fi
e2e_assert_match "symlinked usage log at start: OpenVPN's log says why" "$(e2e_server_log)" \
	"vpnpool: cannot open the usage log $U: it is a symbolic link, which is never followed"
e2e_assert_eq "symlinked usage log at start: target untouched" "$(wc -c <"$E2E_DIR/target")" 0

# Put in place of the log by a rotation: told once, not written through;
# the held lines go to the path once the symlink is gone.
start_server "" || e2e_fail "symlink after rotation: server did not start"
e2e_client_start 0
e2e_assert_eq "symlink after rotation: first client" "$(e2e_client_wait 0)" PUSH_REPLY
e2e_wait_usage 1 'event=connect identity=user-0 ' || e2e_fail "no connect line for user-0"
: >"$E2E_DIR/target"
mv "$U" "$U.1"
ln -s "$E2E_DIR/target" "$U"
e2e_client_start 1
e2e_assert_eq "symlink after rotation: client served while the log is a symlink" \
	"$(e2e_client_wait 1)" PUSH_REPLY
sleep 1.5	# the writer has met the symlink; the next event tells it
e2e_client_start 2
e2e_assert_eq "symlink after rotation: another client" "$(e2e_client_wait 2)" PUSH_REPLY
e2e_assert_eq "symlink after rotation: OpenVPN's log says so, once" \
	"$(grep -c "vpnpool: cannot reopen the usage log $U: it is a symbolic link, which is never followed" "$E2E_SERVER_LOG")" 1
rm "$U"
e2e_wait_log "$U" 10 'event=connect identity=user-2 ' >/dev/null ||
	e2e_fail "symlink after rotation: held lines not written once the symlink was gone"
e2e_client_stop 1
e2e_client_start 1
e2e_assert_eq "symlink after rotation: a client after" "$(e2e_client_wait 1)" PUSH_REPLY
e2e_wait_log "$E2E_SERVER_LOG" 5 "usage log $U is written again" >/dev/null
e2e_assert_match "symlink after rotation: OpenVPN's log says it is written again" \
	"$(grep 'is written again' "$E2E_SERVER_LOG")" \
	"vpnpool: the usage log $U is written again: [2-9] lines held back and written now, 0 lost"
e2e_client_stop 0 1 2
e2e_server_stop
e2e_assert_eq "symlink after rotation: target untouched" "$(wc -c <"$E2E_DIR/target")" 0
e2e_assert_eq "symlink after rotation: the moved file has only what came before" \
	"$(grep -c ' event=connect ' "$U.1")" 1
e2e_assert_eq "symlink after rotation: user-1's and user-2's connects at the path, in order" \
	"$(grep -o ' event=connect identity=user-[12] ' "$U" | head -n 2 | tr -d '\n')" \
	" event=connect identity=user-1  event=connect identity=user-2 "

e2e_finish

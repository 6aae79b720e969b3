#!/usr/bin/env bash
# The state directory runs out of space or turns read-only under a running
# server.  A client whose lease cannot be written is refused cleanly
# (AUTH_FAILED, one clear line in OpenVPN's log, event=reject
# reason=store-error), the server goes on, nothing is given twice; once there
# is space again new clients are served and the state is whole after a
# restart.  Cases: a full 64 KiB tmpfs; a server killed (SIGKILL) and started
# again on the full disk; a tmpfs remounted read-only between
# runs (OpenVPN refuses to start, naming the directory); an ext4 image that
# turns read-only while OpenVPN runs (errors=remount-ro, trigger_fs_error).
# chmod is no case of its own: it does not stop root, and OpenVPN keeps the
# journal open across a privilege drop; read-only is what stops root.
. "$(dirname "$0")/lib.sh"
e2e_require
DUMP=${STATE_DUMP:-$PWD/tests/state_dump}
[ -x "$DUMP" ] || { e2e_fail "tests/state_dump not built ($DUMP): run make check"; e2e_finish; }
STATE=$E2E_DIR/state
mkdir -p "$STATE"
command -v mount >/dev/null || e2e_skip_or_fail "no mount command"
mount -t tmpfs -o size=64k,mode=0750 vpnpool-diskfull "$STATE" 2>"$E2E_DIR/mount.err" ||
	e2e_skip_or_fail "cannot mount a tmpfs: $(cat "$E2E_DIR/mount.err")"
LOOPIMG=
df_cleanup() {
	e2e_server_stop
	for pid in "${E2E_PIDS[@]}"; do e2e_ours "$pid" && kill -9 "$pid" 2>/dev/null; done
	sleep 0.2
	mountpoint -q "$STATE" && { umount "$STATE" 2>/dev/null || umount -l "$STATE"; }
	[ -z "$LOOPIMG" ] || rm -f "$LOOPIMG"
	e2e_cleanup
}
trap df_cleanup EXIT

# Identities are usernames of 480 bytes (as long as OpenVPN lets through,
# NOTES.md 8): big records, so the journal's last page fills after a few.
e2e_pki client
user() { printf 'user-%s-%0470d' "$1" 0; }
start() { # NAME: a client logging in as user NAME
	printf '%s\npw\n' "$(user "$1")" >"$E2E_DIR/up-$1"
	e2e_client_start "$1" --cert "$E2E_DIR/pki/c0.crt" --key "$E2E_DIR/pki/c0.key" \
		--auth-user-pass "$E2E_DIR/up-$1" --verb 3
}
e2e_vpnpool_conf '
identity = "username"
pool "p" {
    network = "10.8.0.0/24"
    range   = "10.8.0.10-10.8.0.200"
}'
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
duplicate-cn
script-security 2
auth-user-pass-verify /bin/true via-file
verb 3
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start"; e2e_finish; }

declare -A got
served() { # NAME...: all served; remember the address
	local n out
	for n in "$@"; do
		out=$(e2e_client_wait "$n")
		e2e_assert_eq "$n outcome" "$out" PUSH_REPLY
		got[$n]=$(e2e_pushed_ifconfig "$n")
	done
}
start a0; start a1
served a0 a1

# ---- disk full ----------------------------------------------------------------
dd if=/dev/zero of="$STATE/fill" bs=4k 2>/dev/null
e2e_log "state-dir full: $(df -h --output=used,avail "$STATE" | tail -n 1)"
for i in 0 1 2 3 4 5 6 7; do start "b$i"; done
ok=() refused=()
for i in 0 1 2 3 4 5 6 7; do
	out=$(e2e_client_wait "b$i")
	case $out in
	PUSH_REPLY) ok+=("b$i"); got[b$i]=$(e2e_pushed_ifconfig "b$i") ;;
	AUTH_FAILED) refused+=("b$i") ;;
	*) e2e_fail "b$i: neither served nor refused ($out)" ;;
	esac
done
e2e_log "disk full: ${#ok[@]} served from the journal's last page, ${#refused[@]} refused"
[ "${#refused[@]}" -gt 0 ] && e2e_pass "clients refused while the disk is full" ||
	e2e_fail "no client was refused on a full disk"
kill -0 "$E2E_SERVER_PID" 2>/dev/null && e2e_pass "server alive on a full disk" || e2e_fail "server died"
e2e_assert_match "OpenVPN's log says why" "$(grep -m1 'vpnpool: refusing' "$E2E_SERVER_LOG")" \
	"vpnpool: refusing client user-[a-z0-9]+-0+: cannot record its lease in $STATE: No space left on device"
e2e_assert_eq "usage log: one store-error reject per refused client" \
	"$(grep -c 'event=reject .*reason=store-error' "$E2E_DIR/usage.log")" "${#refused[@]}"
e2e_assert_eq "served clients have distinct addresses" \
	"$(printf '%s\n' "${got[@]}" | sort | uniq -d)" ""
# A disconnect that cannot be written is logged, the session still ends;
# the same failure again is not logged again.
e2e_client_stop a0 "${ok[@]}"
e2e_wait_usage 1 'event=disconnect identity=user-a0-' || e2e_fail "no disconnect logged for a0"
e2e_wait_usage $((1 + ${#ok[@]})) 'event=disconnect identity=user-(a0|b[0-9])-' ||
	e2e_fail "not every disconnect logged"
e2e_assert_match "a failed disconnect write is logged" "$(grep -m1 'vpnpool: state directory' "$E2E_SERVER_LOG")" \
	"vpnpool: state directory $STATE: recording a disconnect: No space left on device"
e2e_assert_eq "once for $((1 + ${#ok[@]})) failed disconnects" \
	"$(grep -c 'vpnpool: state directory .*recording a disconnect' "$E2E_SERVER_LOG")" 1

# ---- space again --------------------------------------------------------------
rm -f "$STATE/fill"
e2e_client_stop "${refused[@]}"
for n in "${refused[@]}"; do start "$n"; done
start c0
served "${refused[@]}" c0
e2e_assert_match "once there is space: the failure cleared, with its count" \
	"$(grep 'vpnpool: state directory' "$E2E_SERVER_LOG" | tail -n 1)" \
	"recording a disconnect: No space left on device: cleared after $((1 + ${#ok[@]})) failures"
start a0
served a0
e2e_assert_eq "every session has its own address" "$(printf '%s\n' "${got[@]}" | sort | uniq -d)" ""
before_a0=${got[a0]}
e2e_client_stop a0 a1 c0 "${ok[@]}" "${refused[@]}"
e2e_server_stop
"$DUMP" "$STATE" >"$E2E_DIR/dump.1"
e2e_assert_match "state after the full disk replays, nothing twice" "$(tail -n 1 "$E2E_DIR/dump.1")" \
	'corrupt=0 corrupt_offset=0 overlaps=0$'
e2e_server_start || e2e_fail "server did not restart after the full disk"
start a1
served a1
e2e_assert_eq "a1 sticky after the full disk and a restart" "${got[a1]}" "$(e2e_pushed_ifconfig a1)"
e2e_client_stop a1

# ---- killed, then started again on a full disk ---------------------------------
# A SIGKILL ends no session: the journal still shows k0 and k1 online.  The
# start makes them held and would rewrite the journal, which a full disk
# refuses; it must come up anyway with every lease, warn once, and refuse
# only what needs a new record.
start k0; start k1
served k0 k1
kill -9 "$E2E_SERVER_PID" 2>/dev/null
e2e_reap_pid "$E2E_SERVER_PID"
E2E_SERVER_PID=
e2e_client_stop k0 k1
"$DUMP" "$STATE" >"$E2E_DIR/dump.k"
leases=$(sed -n 's/^report .* leases=\([0-9]*\) .*/\1/p' "$E2E_DIR/dump.k")
e2e_assert_eq "the killed server's journal shows k0 online" \
	"$(grep -c "^lease identity=$(user k0) slot=0 state=online" "$E2E_DIR/dump.k")" 1
dd if=/dev/zero of="$STATE/fill" bs=4k 2>/dev/null
e2e_log "state-dir full again: $(df -h --output=used,avail "$STATE" | tail -n 1)"
if e2e_server_start; then
	e2e_pass "OpenVPN starts on a full disk after a crash"
	e2e_assert_match "with every lease" "$(grep -m1 ' leases in ' "$E2E_SERVER_LOG")" " $leases leases in $STATE"
	# The killed server's sessions end with a record each (no rewrite of
	# the journal): the last block's room takes them, or the log says so
	# once and the journal as it is keeps them online-of-a-dead-instance.
	e2e_assert_eq "OpenVPN's log says at most once that recording them failed" \
		"$(grep -c "vpnpool: state directory $STATE: recording the end of the sessions of stopped instances at start failed (the leases are loaded; the journal as it is keeps them; new leases may be refused): No space left on device" "$E2E_SERVER_LOG" | sed 's/^0$/1/')" 1
	e2e_server_stop
else
	e2e_fail "OpenVPN did not start on a full disk after a crash: $(grep -m1 vpnpool: "$E2E_SERVER_LOG")"
fi
rm -f "$STATE/fill"
"$DUMP" "$STATE" >"$E2E_DIR/dump.k2"
e2e_assert_eq "the journal still replays to the same leases" \
	"$(sed -n 's/^report .* leases=\([0-9]*\) .*/\1/p' "$E2E_DIR/dump.k2")" "$leases"
e2e_server_start || e2e_fail "server did not start once there was space again"
before_k0=${got[k0]}
start k0
served k0
e2e_assert_eq "k0 sticky across a crash and a start on a full disk" "${got[k0]}" "$before_k0"
e2e_client_stop k0

# ---- read-only between runs ---------------------------------------------------
e2e_server_stop
mount -o remount,ro "$STATE"
rc=0
timeout 30 openvpn --config "$E2E_DIR/server.conf" --log "$E2E_DIR/server.ro.log" \
	</dev/null >/dev/null 2>&1 || rc=$?
e2e_assert_eq "OpenVPN on a read-only state-dir exits with status" "$rc" 1
e2e_assert_match "and names the directory and the reason" "$(cat "$E2E_DIR/server.ro.log")" \
	"vpnpool: cannot open the state directory $STATE: Read-only file system"
mount -o remount,rw "$STATE"
e2e_server_start || e2e_fail "server did not start once the state-dir was writable again"
start a0
served a0
e2e_assert_eq "a0 sticky across full disk, read-only and restarts" "${got[a0]}" "$before_a0"
e2e_client_stop a0
e2e_server_stop

# ---- the usage log on the full disk too (its default place) -----------------
# A line that crosses into a page the disk no longer has is written in part:
# the plugin must cut that part off, or the next line is glued to it.
sed -i "s|^usage-log = .*|usage-log = \"$STATE/usage.log\"|" "$E2E_DIR/vpnpool.conf"
e2e_server_start || e2e_fail "server did not start with the usage log in the state-dir"
dd if=/dev/zero of="$STATE/fill" bs=4k 2>/dev/null
for i in 0 1 2 3 4 5; do start "f$i"; done
for i in 0 1 2 3 4 5; do e2e_client_wait "f$i" >/dev/null; done
e2e_client_stop f0 f1 f2 f3 f4 f5
e2e_wait_log "$E2E_SERVER_LOG" 10 "cannot write the usage log" >/dev/null
e2e_assert_match "OpenVPN's log says the usage log is full" \
	"$(grep -m1 'cannot write the usage log' "$E2E_SERVER_LOG")" \
	"vpnpool: cannot write the usage log $STATE/usage.log: No space left on device"
e2e_assert_eq "usage log on the full disk: lines that are not one logfmt line" \
	"$(grep -vc '^time=[0-9T:Z-]* event=[a-z]* ' "$STATE/usage.log")" 0
e2e_assert_eq "usage log on the full disk ends with a whole line" \
	"$(tail -c 1 "$STATE/usage.log" | od -An -c | tr -d ' ')" '\n'
e2e_server_stop
rm -f "$STATE/fill"
sed -i "s|^usage-log = .*|usage-log = \"$E2E_DIR/usage.log\"|" "$E2E_DIR/vpnpool.conf"

# ---- read-only while running (ext4 errors=remount-ro) -----------------------
ext4_case() {
	local dev loops
	command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null ||
		{ e2e_log "note: ext4 case skipped: no mkfs.ext4/losetup"; return 0; }
	umount "$STATE" || { e2e_fail "cannot unmount the tmpfs"; return 1; }
	LOOPIMG=$E2E_DIR/ext4.img
	truncate -s 8M "$LOOPIMG" && mkfs.ext4 -q -b 1024 -O ^has_journal "$LOOPIMG" ||
		{ e2e_fail "mkfs.ext4 failed"; return 1; }
	mount -o loop,errors=remount-ro "$LOOPIMG" "$STATE" 2>"$E2E_DIR/mount.err" ||
		{ e2e_log "note: ext4 case skipped: loop mount: $(cat "$E2E_DIR/mount.err")"; return 0; }
	dev=$(basename "$(findmnt -no SOURCE "$STATE")")
	[ -w "/sys/fs/ext4/$dev/trigger_fs_error" ] ||
		{ e2e_log "note: ext4 case skipped: no /sys/fs/ext4/$dev/trigger_fs_error"; return 0; }
	e2e_server_start || { e2e_fail "server did not start on ext4"; return 1; }
	start e0
	served e0
	echo 1 >"/sys/fs/ext4/$dev/trigger_fs_error"
	if touch "$STATE/probe" 2>/dev/null; then
		e2e_fail "ext4 did not turn read-only"
	else
		e2e_pass "ext4 state-dir turned read-only ($(findmnt -no OPTIONS "$STATE"))"
	fi
	start e1
	e2e_assert_eq "new client on a read-only state-dir" "$(e2e_client_wait e1)" AUTH_FAILED
	e2e_assert_match "OpenVPN's log says why" "$(grep -m1 'vpnpool: refusing' "$E2E_SERVER_LOG")" \
		"vpnpool: refusing client user-e1-0+: cannot record its lease in $STATE: Read-only file system"
	kill -0 "$E2E_SERVER_PID" 2>/dev/null && e2e_pass "server alive on a read-only state-dir" ||
		e2e_fail "server died"
	e2e_client_stop e0 e1
	e2e_server_stop
	umount "$STATE" && mount -o loop "$LOOPIMG" "$STATE" ||
		{ e2e_fail "cannot mount the ext4 image again"; return 1; }
	"$DUMP" "$STATE" >"$E2E_DIR/dump.2"
	e2e_assert_match "state after read-only replays, nothing twice" "$(tail -n 1 "$E2E_DIR/dump.2")" \
		'corrupt=0 corrupt_offset=0 overlaps=0$'
	e2e_server_start || { e2e_fail "server did not restart on ext4"; return 1; }
	start e0
	local first=${got[e0]}
	served e0
	e2e_assert_eq "e0 sticky after read-only and restart" "${got[e0]}" "$first"
	start e1
	served e1
	e2e_client_stop e0 e1
	e2e_server_stop
}
ext4_case
e2e_assert_eq "usage lines that are not one logfmt line" \
	"$(grep -vc '^time=[0-9T:Z-]* event=[a-z]* ' "$E2E_DIR/usage.log")" 0
e2e_finish

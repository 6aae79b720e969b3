#!/usr/bin/env bash
# The PostgreSQL store as production runs it (openvpn-plugin-vpnpool(8),
# SEVERAL HOSTS and PRODUCTION): a UDP and a TCP server on one host and one
# vpnpool.conf (mode 0600, root's) naming the store with a password, both
# `user nobody`, `group nogroup`, `persist-tun`, `persist-key`, on tuns made
# for nobody; the database (a throwaway cluster run as nobody) asks for a
# password (scram-sha-256).  Checks: after the drop both serve from one
# address space, each /32 on its own tun; the database restarted after the
# drop: the plugin reconnects as nobody and serves again; a SIGHUP (the
# plugin reopened as nobody, its config read through the keeper) gives a
# client its sticky address and a new one a free one; the usage log moved
# away as logrotate does is reopened; the password is in no log.  Runs in a
# network namespace of its own.
: "${E2E_TIMEOUT:=180}"
if [ -z "${MULTI_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
	MULTI_NETNS=1 exec unshare --net -- "${BASH:-bash}" "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/multilib.sh"
. "$(dirname "$0")/../pglib.sh"
mp_require
getent passwd nobody >/dev/null && getent group nogroup >/dev/null ||
	e2e_skip_or_fail "needs a user nobody and a group nogroup"
pg_require
r=$?
[ "$r" -eq 0 ] || { e2e_log "$([ "$r" = 77 ] && echo SKIP || echo FAIL): PostgreSQL (see above)"; exit "$r"; }
NET=10.$((64 + $$ % 120))
PW="s3cret-$$-pw"

E2E_ON_EXIT='pg_cleanup'
pg_start >"$E2E_DIR/pg_start.log" 2>&1 ||
	{ cat "$E2E_DIR/pg_start.log"; e2e_fail "could not start the PostgreSQL cluster"; e2e_finish; }
# A password on TCP from now on.
pg_psql -c "alter role vpnpool password '$PW'" >/dev/null
printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$PG_DIR/data/pg_hba.conf"
pg_as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" reload >/dev/null
URI="postgresql://vpnpool:$PW@127.0.0.1:$PG_PORT/vpnpool"
psql "postgresql://vpnpool:wrong@127.0.0.1:$PG_PORT/vpnpool" -c 'select 1' >/dev/null 2>&1 &&
	e2e_fail "the database took a wrong password" || e2e_pass "the database asks for the password"

# What nobody reopens at SIGHUP: the scratch dir, the server key, the pid
# and status files, the plugin (dlopen()ed again) and a tun clone node.
chmod 0755 "$E2E_DIR"
mknod "$E2E_DIR/tun" c 10 200 2>/dev/null && chmod 0666 "$E2E_DIR/tun" ||
	e2e_skip_or_fail "cannot make a tun device node (mknod)"
e2e_pki alpha bravo charlie delta echo || e2e_finish	# certificates c0..c4
chown nobody "$E2E_DIR/pki/server.key"
mkdir -m 0755 "$E2E_DIR/lib" && cp "$PLUGIN" "$E2E_DIR/lib/" && PLUGIN=$E2E_DIR/lib/${PLUGIN##*/}
e2e_vpnpool_conf "store = \"$URI\"
node = \"vpn1\"
store-timeout = 3
pool \"p\" { network = \"$NET.0.0/16\" }"
chmod 0600 "$E2E_DIR/vpnpool.conf"	# root's: nobody reads it only through the keeper
DROP="user nobody
group nogroup
persist-tun
persist-key
dev-node $E2E_DIR/tun"
RUN=$E2E_DIR/run
mkdir -m 0755 "$RUN" && chown nobody "$RUN"
for name in udp tcp; do
	: >"$RUN/$name.pid"
	: >"$RUN/$name.status"
done
chown nobody "$RUN"/*
mp_instance udp udp "$DROP
writepid $RUN/udp.pid
status $RUN/udp.status 1"
mp_instance tcp tcp-server "$DROP
writepid $RUN/tcp.pid
status $RUN/tcp.status 1"
MP_SNIPPET="topology subnet
server $NET.0.0 255.255.0.0 nopool"
for name in udp tcp; do
	openvpn --mktun --dev "${MP_DEV[$name]}" --dev-type tun --user nobody >/dev/null 2>&1 ||
		e2e_skip_or_fail "openvpn --mktun failed"
done
E2E_ON_EXIT="pg_cleanup; openvpn --rmtun --dev ${MP_DEV[udp]} --dev-type tun >/dev/null 2>&1;
openvpn --rmtun --dev ${MP_DEV[tcp]} --dev-type tun >/dev/null 2>&1"
mp_server_start udp || { e2e_fail "the UDP server did not start"; e2e_finish; }
mp_server_start tcp || { e2e_fail "the TCP server did not start next to the UDP one"; e2e_finish; }
for name in udp tcp; do
	e2e_assert_match "$name: OpenVPN dropped privileges" "$(cat "${MP_LOG[$name]}")" 'UID set to nobody'
done
TU=${MP_DEV[udp]} TT=${MP_DEV[tcp]}

on() { mp_host_routes "$1" | grep -qx "$2"; }
routed() { # what dev address
	for _ in $(seq 1 50); do on "$2" "$3" && break; sleep 0.1; done
	on "$2" "$3" && e2e_pass "$1: $3/32 on $2" || e2e_fail "$1: no $3/32 on $2"
}
served() { # slot cert instance: its address
	mp_client_start "$1" "$2" "$3" "${MP_NULL[@]}"
	[ "$(e2e_client_wait "$1" 30)" = PUSH_REPLY ] && e2e_pushed_ifconfig "$1"
}

A=$(served a c0 udp)
B=$(served b c1 tcp)
e2e_assert_match "alpha over UDP, after the drop" "$A" "^$NET\\."
e2e_assert_match "bravo over TCP, after the drop" "$B" "^$NET\\."
[ "$A" != "$B" ] && e2e_pass "one address space: $A, $B" || e2e_fail "both were given ${A:-nothing}"
routed "alpha (keeper, after the drop)" "$TU" "$A"
routed "bravo (keeper, after the drop)" "$TT" "$B"

# The database restarted: the plugins (nobody now) reconnect by themselves
# with the password of the URI.
pg_stop_db fast
pg_start_db || { e2e_fail "the database did not start again"; e2e_finish; }
D=$(served d c3 tcp)
e2e_assert_match "delta over TCP after the database restarted (reconnected as nobody)" "$D" "^$NET\\."

# SIGHUP of the UDP server: OpenVPN closes the plugin and opens it again as
# nobody, which reads the 0600 vpnpool.conf through the keeper and connects
# again; alpha comes back after it.  (served runs in a subshell, so its
# client's pid is not known here: stopped by its log path.)
stop_client() {
	pkill -f -- "--log $E2E_DIR/client-$1.log"
	for _ in $(seq 1 50); do pgrep -f -- "--log $E2E_DIR/client-$1.log" >/dev/null || return 0; sleep 0.1; done
}
stop_client a
E2E_SERVER_PID=${MP_PID[udp]} E2E_SERVER_LOG=${MP_LOG[udp]} e2e_server_hup ||
	{ e2e_fail "the UDP server did not come back after SIGHUP"; e2e_finish; }
e2e_assert_match "the plugin opened again after the SIGHUP (OpenVPN is nobody now)" \
	"$(sed -n '/SIGHUP/,$p' "${MP_LOG[udp]}")" 'PLUGIN_INIT: POST.*vpnpool'
A2=$(served a2 c0 udp)
C=$(served c c2 udp)
e2e_assert_eq "alpha's sticky address after the SIGHUP" "$A2" "$A"
e2e_assert_match "charlie served after the SIGHUP" "$C" "^$NET\\."
[ -n "$C" ] && [ "$C" != "$A" ] && [ "$C" != "$B" ] && [ "$C" != "$D" ] &&
	e2e_pass "charlie's $C is held by nobody else" ||
	e2e_fail "charlie was given ${C:-nothing} (alpha $A, bravo $B, delta $D)"
routed "charlie (after the SIGHUP)" "$TU" "$C"

# logrotate's "create": the usage log is moved away; the next connect goes
# to a new file at the same path.
mv "$E2E_DIR/usage.log" "$E2E_DIR/usage.log.1"
sleep 1.2
E=$(served e c4 tcp)
e2e_assert_match "echo over TCP after the rotation" "$E" "^$NET\\."
found=$(e2e_wait_log "$E2E_DIR/usage.log" 5 "event=connect identity=echo ")
e2e_assert_eq "the usage log reopened at its path with echo's connect" "$found" found
grep -q "identity=echo" "$E2E_DIR/usage.log.1" && e2e_fail "echo's line went to the moved file" ||
	e2e_pass "nothing written to the moved file after the rotation"

# The command (root, reading the 0600 file) sees the database.
leases=$(vp leases --json --online)
e2e_assert_eq "leases online in the database" \
	"$(jq -r '[.leases[].identity] | sort | join(",")' <<<"$leases")" "alpha,bravo,charlie,delta,echo"
e2e_assert_eq "no address held twice" "$(mp_json_dups <<<"$leases")" ""
e2e_assert_eq "leases on node vpn1, instances tcp and udp" \
	"$(jq -r '[.leases[] | "\(.node)/\(.instance)"] | unique | join(",")' <<<"$leases")" "vpn1/tcp,vpn1/udp"
# The password is in no log.
if grep -l -- "$PW" "${MP_LOG[udp]}" "${MP_LOG[tcp]}" "$E2E_DIR"/server-*.log "$E2E_DIR"/usage.log* 2>/dev/null; then
	e2e_fail "the store's password is in a log"
else
	e2e_pass "the store's password is in no log"
fi
e2e_finish

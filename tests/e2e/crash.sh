#!/usr/bin/env bash
# Crash safety: real clients connect and disconnect in a loop while the
# server is killed with SIGKILL at random moments and started again.  After
# each kill the state directory, exactly as the crash left it, must replay
# (a torn tail is reported and fine, damage is not), hold no address or
# subnet twice, and still hold the lease of every client that was told an
# address; after each restart OpenVPN must load it.  Over the whole run every
# client must get the same address every time (the pool never runs short),
# and the usage log must never show one address given to two live sessions.
#
# VP_CRASH_TRIALS (default 8) kills; VP_CRASH_SEED fixes the random moments.
# On demand:  VP_CRASH_TRIALS=50 sh tests/e2e/crash.sh   (from build/)
: "${VP_CRASH_TRIALS:=8}"
: "${VP_CRASH_SEED:=$$}"
: "${E2E_TIMEOUT:=$((90 + VP_CRASH_TRIALS * 10))}"
. "$(dirname "$0")/lib.sh"
e2e_require
DUMP=${STATE_DUMP:-$PWD/tests/state_dump}
[ -x "$DUMP" ] || { e2e_fail "tests/state_dump not built ($DUMP): run make check"; e2e_finish; }
RANDOM=$VP_CRASH_SEED
e2e_log "$VP_CRASH_TRIALS trials, seed $VP_CRASH_SEED"

# Clients: six laptops, two routers (a routed /24 each), and two sessions of
# one certificate (duplicate-cn: each session its own address).
declare -A CN=([l0]=laptop-0 [l1]=laptop-1 [l2]=laptop-2 [l3]=laptop-3 [l4]=laptop-4
	[l5]=laptop-5 [s0]=site-0 [s1]=site-1 [d0]=shared [d1]=shared)
NAMES="l0 l1 l2 l3 l4 l5 s0 s1 d0 d1"
e2e_pki
for n in $NAMES; do e2e_issue "$n" "${CN[$n]}" || e2e_finish; done

# Sixty addresses for ten identities.  Under duplicate-cn a client back
# before the server ended its previous session (OpenVPN waits up to 5 s, and
# a SIGKILLed server ends none) is a second session with an address of its
# own; were the pool short of those, the plugin would rightly reclaim some
# client's held lease (hold-time 0), and no check below could tell a lost
# lease from a reclaimed one.  With room to spare nothing is reclaimed, so
# every returning client must find its own lease.
e2e_vpnpool_conf '
pool "laptops" {
    network = "10.8.0.0/24"
    range   = "10.8.0.10-10.8.0.69"
}
router-pool "sites" {
    network = "10.9.0.0/16"
    prefix  = 24
    match   = {"common_name=site-*"}
}'
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
route 10.9.0.0 255.255.0.0
duplicate-cn
verb 3
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start"; e2e_finish; }

WORKERS=()
crash_cleanup() {
	: >"$E2E_DIR/stop"
	for pid in "${WORKERS[@]}"; do kill "$pid" 2>/dev/null; done
	while read -r pid; do e2e_ours "$pid" && kill -9 "$pid" 2>/dev/null; done <"$E2E_DIR/pids"
	return 0
}
trap 'crash_cleanup; e2e_cleanup' EXIT

# One client session after another until told to stop: connect, record the
# outcome (and the address it was told), stay 0-2.5 s, leave (SIGTERM).
worker() {
	local name=$1 outcome addr
	RANDOM=$((VP_CRASH_SEED + $2))
	while [ ! -e "$E2E_DIR/stop" ]; do
		e2e_client_start "$name" --verb 3 --server-poll-timeout 4 --hand-window 6
		outcome=$(e2e_client_wait "$name" 8)
		echo "$outcome" >>"$E2E_DIR/outcomes"
		if [ "$outcome" = PUSH_REPLY ]; then
			addr=$(e2e_pushed_ifconfig "$name")
			echo "${CN[$name]} $name $addr" >>"$E2E_DIR/told"
			sleep "$((RANDOM % 26 / 10)).$((RANDOM % 10))"
		fi
		e2e_client_stop "$name"
		sleep "0.$((RANDOM % 5))"
	done
}
: >"$E2E_DIR/told"
: >"$E2E_DIR/outcomes"
i=0
for n in $NAMES; do
	worker "$n" "$i" </dev/null >/dev/null 2>&1 &
	WORKERS+=($!)
	i=$((i + 1))
done

# The identity's address from a state_dump line set ("" if no lease).
dump_address() { # dumpfile identity
	sed -n "s/^lease identity=$2 slot=0 .* address=\\([0-9.]*\\).*/\\1/p" "$1"
}

# Check the state as the crash left it; $1 = trial number.
check_state() {
	local t=$1 dump=$E2E_DIR/dump.$1 rc report cn want got
	"$DUMP" "$E2E_DIR/state" >"$dump" 2>&1
	rc=$?
	report=$(grep '^report ' "$dump")
	if [ "$rc" -ne 0 ]; then
		e2e_fail "trial $t: the state does not replay cleanly (rc $rc): $report $(grep -v '^lease' "$dump" | head -3)"
		CORRUPT=$((CORRUPT + 1))
	fi
	case $report in *" torn=1 "*) TORN=$((TORN + 1)) ;; esac
	case $report in
	*" overlaps=0") ;;
	*)
		e2e_fail "trial $t: addresses or subnets held twice: $(grep '^overlap' "$dump" | head -3)"
		DUPS=$((DUPS + $(grep -c '^overlap' "$dump")))
		;;
	esac
	# Every identity that was told an address (before this kill) still holds
	# it.  The shared certificate's second session is not sticky by design.
	while read -r cn want; do
		[ "$cn" = shared ] && continue
		got=$(dump_address "$dump" "$cn")
		if [ "$got" != "$want" ]; then
			e2e_fail "trial $t: $cn was told $want, the state holds '${got}'"
			LOST=$((LOST + 1))
		fi
	done < <(awk '!seen[$1]++ { print $1, $3 }' "$E2E_DIR/told")
	LEASES_SEEN=$(sed -n 's/^report .* leases=\([0-9]*\).*/\1/p' "$dump")
}

CORRUPT=0 TORN=0 DUPS=0 LOST=0 LOAD_TORN=0 LEASES_SEEN=0 RESTART_FAILS=0
for t in $(seq 1 "$VP_CRASH_TRIALS"); do
	# A random moment: 0.1-4.0 s after the server came up.
	sleep "$((RANDOM % 4)).$((RANDOM % 10))"
	kill -9 "$E2E_SERVER_PID" 2>/dev/null
	wait "$E2E_SERVER_PID" 2>/dev/null
	E2E_SERVER_PID=
	check_state "$t"
	if ! e2e_server_start; then
		e2e_fail "trial $t: the server did not start again after SIGKILL"
		RESTART_FAILS=$((RESTART_FAILS + 1))
		break
	fi
	log=$(e2e_server_log)
	case $log in *"dropped a record cut short"*) LOAD_TORN=$((LOAD_TORN + 1)) ;; esac
	case $log in *"is damaged at offset"*)
		e2e_fail "trial $t: OpenVPN reports a damaged journal: $(grep 'is damaged' "$E2E_SERVER_LOG")" ;;
	esac
	[[ $log =~ vpnpool:\ .*\ ([0-9]+)\ leases\ in ]] ||
		e2e_fail "trial $t: the plugin did not report the leases it loaded"
done

# Let the clients run a last round against the last server, then stop all.
sleep 3
: >"$E2E_DIR/stop"
for pid in "${WORKERS[@]}"; do wait "$pid" 2>/dev/null; done
WORKERS=()
e2e_server_stop
check_state final

e2e_assert_eq "journals set aside as corrupt" "$(ls "$E2E_DIR/state" | grep -c corrupt)" 0
e2e_assert_eq "states that did not replay" "$CORRUPT" 0
e2e_assert_eq "addresses or subnets held twice in the state" "$DUPS" 0
e2e_assert_eq "leases lost" "$LOST" 0
e2e_assert_eq "restarts that failed" "$RESTART_FAILS" 0

# Stickiness as the clients saw it: one address per identity, always.
# With duplicate-cn a client that is back before the server has ended its
# previous session gets a second session, with an address of its own: the
# plugin logs those, and they do not count (openvpn-plugin-vpnpool(8): "the first keeps the sticky
# one").
# So: every address a client was told is its first one (its sticky lease),
# or one the server logged as another session of that identity, and no more
# often than the server logged such sessions (a server may log one that a
# crash kept from reaching the client, never the reverse).
cat "$E2E_DIR"/server.*.log 2>/dev/null | grep -o 'vpnpool: client [^ ]*: [0-9.]* from pool .*(another session' |
	awk '{ sub(":", "", $3); print $3, $4 }' >"$E2E_DIR/extra"
moved=$(awk 'NR == FNR { extra[$1 " " $2] = 1; n_extra[$1]++; next }
	$1 == "shared" { next }
	!($1 in first) { first[$1] = $3; next }
	$3 != first[$1] {
		n_other[$1]++
		if (!(($1 " " $3) in extra)) print $1 ": " first[$1] " then " $3
	}
	END { for (c in n_other) if (n_other[c] > n_extra[c] + 0)
		print c ": " n_other[c] " other addresses, " n_extra[c] + 0 " other sessions logged" }' \
	"$E2E_DIR/extra" "$E2E_DIR/told")
e2e_assert_eq "clients told a different address on reconnect" "$moved" ""
told=$(awk '$1 != "shared"' "$E2E_DIR/told" | wc -l)
firsts=$(awk '$1 != "shared" && !seen[$1]++' "$E2E_DIR/told" | wc -l)
[ "$((told - firsts))" -gt 0 ] && e2e_pass "$((told - firsts)) reconnects checked for stickiness" ||
	e2e_fail "no client reconnected: nothing was checked"
# Routers keep their subnet too (the usage log names it at each connect).
# Extra duplicate-cn sessions of a router get subnets of their own: left out.
cat "$E2E_DIR"/server.*.log 2>/dev/null |
	grep -o 'vpnpool: client site-[^ ]*: [0-9.]* from pool [^ ]*, routed subnet [^ ]* (another session' |
	awk '{ sub(":", "", $3); print $3, $10 }' | sort -u >"$E2E_DIR/extra-subnets"
moved=$(grep -h 'event=connect identity=site-' "$E2E_DIR/usage.log" |
	sed 's/.*identity=\([^ ]*\) .* subnet=\([^ ]*\).*/\1 \2/' | sort -u |
	awk 'NR == FNR { extra[$0] = 1; next } !($0 in extra)' "$E2E_DIR/extra-subnets" - |
	awk '{ n[$1]++ } END { for (k in n) if (n[k] > 1) print k }')
e2e_assert_eq "routers given another subnet" "$moved" ""

# Live sessions never share an address: replay the usage log (a start line
# begins a new server run; a SIGKILLed run's sessions ended with it).
live_dups=$(awk '
	/ event=start / { delete by; next }
	/ event=connect / {
		for (i = 1; i <= NF; i++) if ($i ~ /^(address|subnet)=/) {
			if ($i in by) { print by[$i] " and " $0 }
			by[$i] = $0
		}
		next
	}
	/ event=disconnect / {
		for (i = 1; i <= NF; i++) if ($i ~ /^(address|subnet)=/) delete by[$i]
	}' "$E2E_DIR/usage.log")
e2e_assert_eq "live sessions sharing an address (usage log)" "$live_dups" ""
e2e_assert_eq "clients refused" "$(grep -c 'event=reject' "$E2E_DIR/usage.log")" 0
e2e_assert_eq "usage lines that are not one logfmt line" \
	"$(grep -vc '^time=[0-9T:Z-]* event=[a-z]* ' "$E2E_DIR/usage.log")" 0

served=$(grep -c 'event=connect ' "$E2E_DIR/usage.log")
e2e_log "figures: trials=$VP_CRASH_TRIALS connects=$served told=$(wc -l <"$E2E_DIR/told") torn_tails=$TORN (reported at load: $LOAD_TORN) corrupt=$CORRUPT duplicates=$DUPS leases_lost=$LOST leases_at_end=$LEASES_SEEN outcomes: $(sort "$E2E_DIR/outcomes" | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')"
[ "$served" -gt "$VP_CRASH_TRIALS" ] && e2e_pass "$served sessions served across $VP_CRASH_TRIALS crashes" ||
	e2e_fail "only $served sessions served"
e2e_finish

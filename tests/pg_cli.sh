#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The vpnpool command against a PostgreSQL store, in a throwaway cluster
# (tests/pglib.sh): tests/pg_driver plays the servers (two instances on node
# n1, one on n2) and makes leases through the store's API; then status,
# leases (--json parsed with jq, filters, the table's NODE and INSTANCE
# columns), release and import read and change the database, with the
# journal's messages and exit codes; the URI's password is never printed; a
# database that is down is named and exits 1; schema needs no config.
# Needs root (the cluster runs as nobody) and jq: skips (77) otherwise, fails
# under CI=true.
. "$(dirname "$0")/pglib.sh"

VPNPOOL_BIN=${VPNPOOL_BIN:-$PWD/vpnpool}
DRIVER=${PG_DRIVER:-$PWD/tests/pg_driver}
FAILS=0
fail() { printf 'FAIL: %s\n' "$*"; FAILS=$((FAILS + 1)); }
pass() { printf 'ok: %s\n' "$*"; }
eq() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: got '$2', want '$3'"; fi; }
has() { if printf '%s' "$2" | grep -Eq -- "$3"; then pass "$1"; else fail "$1: '$2' lacks /$3/"; fi; }
lacks() { if printf '%s' "$2" | grep -Eq -- "$3"; then fail "$1: '$2' has /$3/"; else pass "$1"; fi; }

pg_require || exit $?
command -v jq >/dev/null || { pg_skip_or_fail "jq not installed"; exit $?; }
[ -x "$VPNPOOL_BIN" ] && [ -x "$DRIVER" ] || { pg_log "FAIL: not built: $VPNPOOL_BIN $DRIVER"; exit 1; }

# schema: no config needed at all.
out=$("$VPNPOOL_BIN" -c /nonexistent/vpnpool.conf schema); rc=$?
eq "schema without a config: exit 0" "$rc" 0
has "schema prints SQL" "$out" '[Cc][Rr][Ee][Aa][Tt][Ee] '
# core/pgschema.c is generated from core/pgschema.sql: the two agree.
if "$VPNPOOL_BIN" -c /nonexistent/vpnpool.conf schema | cmp -s - "$(dirname "$0")/../core/pgschema.sql"; then
	pass "schema is core/pgschema.sql (tests/gen_pgschema.sh was run)"
else
	fail "schema differs from core/pgschema.sql: run tests/gen_pgschema.sh"
fi

pg_trap
pg_start || { pg_log "FAIL: cannot start PostgreSQL"; exit 1; }
T=$PG_DIR/cli
mkdir -p "$T"
# trust authentication ignores the password: it is there to be hidden.
URI="postgresql://vpnpool:hunter2@127.0.0.1:$PG_PORT/vpnpool?connect_timeout=3"
cat >"$T/vpnpool.conf" <<CONF
state-dir = "$T/state"
store = "$URI"
store-timeout = 3
pool "a" {
    network = "10.8.0.0/24"
    range   = "10.8.0.10-10.8.0.20"
}
client "alice" { address = "10.8.0.50" }
CONF
vp() { "$VPNPOOL_BIN" -c "$T/vpnpool.conf" "$@"; }
drive() { "$DRIVER" "$T/vpnpool.conf" "$@" >>"$T/driver.out" || fail "pg_driver $*"; }

# the servers: n1/udp (bob online, carol held), n1/tcp (dave online),
# n2 (erin held).
drive n1 udp 10.8.0.1/24 +bob +carol -carol
drive n1 tcp 10.8.0.1/24 +dave
drive n2 "" 10.8.0.1/24 +erin -erin
addr_of() { awk -v id="$1" '$1 == id { print $2 }' "$T/driver.out"; }

# ---- status
st=$(vp status --json); rc=$?
eq "status --json: exit 0" "$rc" 0
eq "status: totals" "$(jq -c '[.leases, .online, .held]' <<<"$st")" '[4,2,2]'
eq "status: pool a" "$(jq -c '.pools[] | select(.name == "a") | [.network, .size, .online, .held, .free]' <<<"$st")" \
	'["10.8.0.0/24",11,2,2,7]'
eq "status: store without password" "$(jq -r .store <<<"$st")" \
	"postgresql://vpnpool@127.0.0.1:$PG_PORT/vpnpool?connect_timeout=3"
eq "status: nodes" "$(jq -c '[.nodes[] | [.node, .instance, .live, .online]] | sort' <<<"$st")" \
	'[["n1","tcp",true,1],["n1","udp",true,1],["n2",null,true,0]]'
eq "status: no journal fields" "$(jq -c '[has("journal"), has("instances")]' <<<"$st")" '[false,false]'
tab=$(vp status); rc=$?
eq "status: exit 0" "$rc" 0
has "status table: pool row" "$tab" '^a +pool +10\.8\.0\.0/24 +11 +2 +2 +7 +36\.4%'
has "status table: nodes with instances" "$tab" 'NODE +INSTANCE +PID +LIVE'
has "status table: n1 tcp" "$tab" '^n1 +tcp +[0-9]+ +yes +.* 1$'

# ---- leases
ls=$(vp leases --json); rc=$?
eq "leases --json: exit 0" "$rc" 0
eq "leases: count and total" "$(jq -c '[.count, .total]' <<<"$ls")" '[4,4]'
eq "leases: where each is" \
	"$(jq -c '[.leases[] | [.identity, .state, .node, .instance, .pool]] | sort_by(.[0])' <<<"$ls")" \
	'[["bob","online","n1","udp","a"],["carol","held","n1","udp","a"],["dave","online","n1","tcp","a"],["erin","held","n2",null,"a"]]'
eq "leases: bob's address" "$(jq -r '.leases[] | select(.identity == "bob") | .address' <<<"$ls")" \
	"$(addr_of bob)"
eq "leases: journal fields kept" \
	"$(jq -c '.leases[0] | keys' <<<"$ls")" \
	'["address","address6","created","created_unix","identity","instance","node","pool","real","router_pool","sessions","since","since_unix","slot","state","static","subnet","subnet6"]'
eq "leases --online" "$(vp leases --json --online | jq -c '[.leases[].identity] | sort')" '["bob","dave"]'
eq "leases --held" "$(vp leases --json --held | jq -c '[.leases[].identity] | sort')" '["carol","erin"]'
eq "leases glob" "$(vp leases --json 'd*' | jq -c '[.count, .total]')" '[1,4]'
eq "leases --pool none" "$(vp leases --json --pool nope | jq -c .count)" 0
tab=$(vp leases)
has "leases table: NODE and INSTANCE columns" "$tab" '^IDENTITY +STATE +NODE +INSTANCE +POOL +ADDRESS'
has "leases table: dave on n1/tcp" "$tab" '^dave +online +n1 +tcp +a +10\.8\.0\.'
has "leases table: footer" "$tab" '4 of 4 leases'

# ---- release: the journal's messages and exit codes
out=$(vp release carol 2>&1); rc=$?
eq "release held: exit 0" "$rc" 0
eq "release held: message" "$out" "released the held lease of carol"
out=$(vp release bob 2>&1); rc=$?
eq "release online: exit 1" "$rc" 1
eq "release online: message" "$out" "vpnpool: release: bob is online; nothing changed"
out=$(vp release carol 2>&1); rc=$?
eq "release again: exit 1" "$rc" 1
eq "release again: message" "$out" "vpnpool: release: carol has no lease; nothing changed"
eq "carol's lease gone" "$(vp leases --json | jq -c '[.leases[].identity] | sort')" '["bob","dave","erin"]'

# ---- import: a free address, bob's own (he has a lease), one outside the range
used=$(vp leases --json | jq -r '.leases[].address')
free=
for i in $(seq 10 20); do
	grep -qx "10.8.0.$i" <<<"$used" || { free=10.8.0.$i; break; }
done
printf 'zed,%s\nbob,10.8.0.19\nyan,10.8.0.99\n' "$free" >"$T/ipp.txt"
out=$(vp import "$T/ipp.txt" 2>"$T/import.err"); rc=$?
eq "import with skipped lines: exit 1" "$rc" 1
eq "import: summary" "$out" "imported 1 lease from $T/ipp.txt, 2 lines skipped"
has "import: bob reported" "$(cat "$T/import.err")" "ipp.txt:2: bob: cannot import 10\.8\.0\.19: it already has a lease"
has "import: yan reported" "$(cat "$T/import.err")" "ipp.txt:3: yan: cannot import 10\.8\.0\.99: "
eq "import: zed held at its address" \
	"$(vp leases --json zed | jq -c '.leases[] | [.state, .address]')" "[\"held\",\"$free\"]"

# ---- check: the store, not contacted, without its password
out=$(vp check); rc=$?
eq "check: exit 0" "$rc" 0
has "check: store line" "$out" "^store +postgresql://vpnpool@127\.0\.0\.1:$PG_PORT/vpnpool"

# ---- the database down: named, exit 1
pg_stop_db
for cmd in "status" "leases" "release zed"; do
	# shellcheck disable=SC2086
	out=$(timeout 60 "$VPNPOOL_BIN" -c "$T/vpnpool.conf" $cmd 2>&1); rc=$?
	eq "$cmd with the database down: exit 1" "$rc" 1
	has "$cmd with the database down: names the store" "$out" \
		"cannot reach the store postgresql://vpnpool@127\.0\.0\.1:$PG_PORT/vpnpool"
done
out=$(vp import "$T/ipp.txt" 2>&1); rc=$?
eq "import with the database down: exit 1" "$rc" 1
everything="$(cat "$T"/*.err) $out $tab $st $ls"
lacks "the password is never printed" "$everything" hunter2

if [ "$FAILS" -gt 0 ]; then
	printf '%d failure(s)\n' "$FAILS"
	exit 1
fi
echo "all passed"

# SPDX-License-Identifier: GPL-2.0-or-later
# A throwaway PostgreSQL cluster for tests: initdb + pg_ctl in a temp dir, run
# as an unprivileged user, listening on a unix socket in that dir and on
# 127.0.0.1 at a free port.  Source it:
#
#   . tests/pglib.sh
#   pg_require || exit $?          # 77 (skip, with the reason) or 1 under CI=true
#   pg_start                       # sets PG_DIR, PG_PORT, PG_URI, PG_PID
#   psql "$PG_URI" -c 'select 1'
#   pg_stop_db; pg_start_db        # stop and start the server again (same data)
#   pg_freeze; pg_thaw             # SIGSTOP / SIGCONT this cluster (its processes only)
#   pg_cleanup                     # stop and remove (also done at exit via pg_trap)
#
# PG_USER (default nobody) runs the server; PG_BIN the server binaries
# (default: the newest /usr/lib/postgresql/*/bin).  PG_KEEP=1 keeps the dir.

: "${PG_USER:=nobody}"
PG_DIR=
PG_PORT=
PG_URI=
PG_PID=

pg_log() { printf 'pglib: %s\n' "$*" >&2; }

pg_skip_or_fail() {
	if [ "${CI:-}" = true ]; then
		pg_log "FAIL: $* (CI=true: the PostgreSQL tests must run)"
		return 1
	fi
	pg_log "SKIP: $*"
	return 77
}

pg_find_bin() {
	local d
	if [ -n "${PG_BIN:-}" ]; then
		return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			PG_BIN=$d
			return 0
		fi
	done
	command -v initdb >/dev/null && PG_BIN=$(dirname "$(command -v initdb)")
	[ -n "${PG_BIN:-}" ]
}

# pg_require: root (to run the server as PG_USER), the server binaries, psql.
pg_require() {
	[ "$(id -u)" -eq 0 ] || { pg_skip_or_fail "need root (to run PostgreSQL as $PG_USER)"; return; }
	pg_find_bin || { pg_skip_or_fail "initdb/pg_ctl not installed (Debian: postgresql-15)"; return; }
	command -v psql >/dev/null || { pg_skip_or_fail "psql not installed"; return; }
	id "$PG_USER" >/dev/null 2>&1 || { pg_skip_or_fail "no user $PG_USER"; return; }
	return 0
}

pg_as_user() {
	setpriv --reuid="$PG_USER" --regid="$(id -g "$PG_USER")" --clear-groups -- "$@"
}

pg_free_port() {
	local p
	for p in $(shuf -i 20000-40000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

pg_start_db() {
	pg_as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null ||
		{ pg_log "pg_ctl start failed:"; tail -20 "$PG_DIR/server.log" >&2; return 1; }
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
}

pg_stop_db() {
	[ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
	pg_as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "${1:-fast}" -w -t 60 stop >/dev/null
}

# pg_freeze / pg_thaw: SIGSTOP / SIGCONT this cluster's server and all its
# processes (the postmaster first: it forks no backend after), never another
# cluster's (tests running in parallel have theirs, run by the same user).
pg_freeze() {
	kill -STOP "$PG_PID" || return 1
	pkill -STOP -P "$PG_PID"
	return 0
}
pg_thaw() {
	pkill -CONT -P "$PG_PID"
	kill -CONT "$PG_PID" 2>/dev/null
	return 0
}

# pg_start [EXTRA initdb args]: a new cluster, a database "vpnpool" owned by
# a role "vpnpool" (password-less: trust on the socket and loopback).
pg_start() {
	pg_find_bin || return 1
	PG_DIR=$(mktemp -d /tmp/vpnpool-pg.XXXXXX) || return 1
	chmod 755 "$PG_DIR"
	chown "$PG_USER" "$PG_DIR"
	PG_PORT=$(pg_free_port) || return 1
	pg_as_user "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 \
		--no-sync "$@" >"$PG_DIR/initdb.log" 2>&1 ||
		{ pg_log "initdb failed:"; tail -20 "$PG_DIR/initdb.log" >&2; return 1; }
	pg_start_db || return 1
	psql -q -h "$PG_DIR" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
		-c "create role vpnpool login" -c "create database vpnpool owner vpnpool" \
		>/dev/null || return 1
	PG_URI="postgresql://vpnpool@127.0.0.1:$PG_PORT/vpnpool"
	export PG_DIR PG_PORT PG_URI PG_PID
}

pg_psql() { psql -X -q -At -h "$PG_DIR" -p "$PG_PORT" -U postgres -d vpnpool -v ON_ERROR_STOP=1 "$@"; }

pg_cleanup() {
	[ -n "$PG_DIR" ] || return 0
	[ -z "$PG_PID" ] || pg_thaw
	pg_stop_db immediate 2>/dev/null
	if [ "${PG_KEEP:-0}" = 1 ]; then
		pg_log "kept $PG_DIR"
	else
		rm -rf "$PG_DIR"
	fi
	PG_DIR=
}

pg_trap() { trap 'pg_cleanup' EXIT; }

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Run test binaries against a throwaway PostgreSQL cluster (tests/pglib.sh):
#
#   tests/pg_unit.sh BINARY [ARGS...] [-- BINARY [ARGS...]]...
#
# Each binary gets VP_PG_URI (the database "vpnpool", role "vpnpool") and
# VP_PG_CTL, a command that stops, starts, freezes (SIGSTOP) or thaws the
# server: "$VP_PG_CTL stop|start|freeze|thaw".  Exits 77 (skip) without
# root, 1 under CI=true then.
here=$(cd "$(dirname "$0")" && pwd)

if [ "${1:-}" = --ctl ]; then
	dir=$PG_DIR port=$PG_PORT bin=$PG_BIN
	. "$here/pglib.sh"
	PG_DIR=$dir PG_PORT=$port PG_BIN=$bin
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null)
	case "$2" in
	stop) pg_stop_db fast ;;
	start) pg_start_db ;;
	freeze) pg_freeze ;;
	thaw) pg_thaw ;;
	*) echo "pg_unit.sh: --ctl stop|start|freeze|thaw" >&2; exit 2 ;;
	esac
	exit
fi

. "$here/pglib.sh"
pg_require || exit $?
pg_trap
pg_start || exit 1
export PG_BIN VP_PG_URI=$PG_URI VP_PG_CTL="$here/pg_unit.sh --ctl"
rc=0
while [ $# -gt 0 ]; do
	cmd=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do cmd+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	[ ${#cmd[@]} -gt 0 ] || continue
	echo "pg_unit: ${cmd[*]}"
	"${cmd[@]}" || { r=$?; echo "pg_unit: ${cmd[*]}: exit $r"; rc=1; }
done
exit $rc

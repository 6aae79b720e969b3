#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds out of tree in
# build/, runs `make check` (unit tests and, as root with /dev/net/tun,
# end-to-end tests with real OpenVPN).  Under CI=true also a -Werror build
# and one AddressSanitizer + UndefinedBehaviorSanitizer run of the unit tests
# (with those of the PostgreSQL store, each on its own throwaway cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/deps.sh
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] ||
	autoreconf -fi >/dev/null 2>&1 || autoreconf -fi

werror=
[ "${CI:-}" = true ] && werror=--enable-werror

mkdir -p build
# A build/ configured without -Werror (by demo.sh, say) is configured again.
[ -z "$werror" ] || grep -q -- --enable-werror build/config.status 2>/dev/null || rm -f build/Makefile
(cd build && { [ -f Makefile ] && [ config.status -nt "$top/configure" ] ||
	"$top/configure" -q $werror; } &&
	make -s -j"$jobs" &&
	make -s -j"$jobs" check) || {
	echo "make check failed; logs:" >&2
	for f in build/tests/*.log build/tests/fuzz/*.log build/tests/e2e/*.log; do
		[ -f "$f" ] && grep -qE '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null &&
			{ echo "==== $f" >&2; tail -n 60 "$f" >&2; }
	done
	exit 1
}

# make install, into a scratch DESTDIR: the plugin, the command and the
# three manual pages land where the README says, and the plugin exports
# nothing but OpenVPN's entry points.
dest=$(mktemp -d)
make -s -C build install DESTDIR="$dest" >"$dest.log" 2>&1 || { cat "$dest.log" >&2; exit 1; }
rm -f "$dest.log"
installed=0
prefix=$(sed -n 's/^prefix = //p' build/Makefile)
for f in bin/vpnpool lib/openvpn/plugins/openvpn-plugin-vpnpool.so share/man/man8/vpnpool.8 \
	share/man/man5/vpnpool.conf.5 share/man/man8/openvpn-plugin-vpnpool.8; do
	if [ -n "$(find "$dest$prefix" -path "*/${f#*/}" -type f 2>/dev/null)" ]; then
		installed=$((installed + 1))
	else
		echo "make install did not install $f under $prefix" >&2
	fi
done
exports=$(find "$dest" -name openvpn-plugin-vpnpool.so -type f -exec nm -D --defined-only {} + |
	awk '$2 == "T" { print $3 }' | grep -cv '^openvpn_plugin_' || true)
rm -rf "$dest"
echo "== make install: $installed of 5 files; plugin symbols other than openvpn_plugin_*: $exports"
[ "$installed" -eq 5 ] && [ "$exports" -eq 0 ] || exit 1

# Without cmocka configure only warns and make check has no unit tests.
if [ "${CI:-}" = true ] && [ ! -x build/tests/test_addr ]; then
	echo "CI=true: the unit tests were not built (cmocka missing?)" >&2
	exit 1
fi

if [ "${CI:-}" = true ] || [ "${VP_SANITIZE:-}" = 1 ]; then
	echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
	mkdir -p build-san
	(cd build-san && "$top/configure" -q --enable-sanitizers $werror CC=clang &&
		make -s -j"$jobs" check TESTS='$(UNIT_TESTS) $(PG_UNIT_TESTS)') || {
		for f in build-san/tests/*.log build-san/tests/fuzz/*.log; do
			grep -qE '^:test-result: (FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null &&
				{ echo "==== $f" >&2; tail -n 60 "$f" >&2; }
		done
		exit 1
	}
fi

# One summary line for people and CI.
pass=$(cat build/tests/*.trs build/tests/fuzz/*.trs build/tests/e2e/*.trs 2>/dev/null | grep -c '^:test-result: PASS' || true)
fail=$(cat build/tests/*.trs build/tests/fuzz/*.trs build/tests/e2e/*.trs 2>/dev/null | grep -cE '^:test-result: (FAIL|ERROR)' || true)
skip=$(cat build/tests/*.trs build/tests/fuzz/*.trs build/tests/e2e/*.trs 2>/dev/null | grep -c '^:test-result: SKIP' || true)
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]

#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds out of tree in
# build/, runs `make check` (unit tests and, as root with /dev/net/tun,
# end-to-end tests with real OpenVPN).  Under CI=true also a -Werror build
# and one AddressSanitizer + UndefinedBehaviorSanitizer run of the unit tests.
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

# Without cmocka configure only warns and make check has no unit tests.
if [ "${CI:-}" = true ] && [ ! -x build/tests/test_addr ]; then
	echo "CI=true: the unit tests were not built (cmocka missing?)" >&2
	exit 1
fi

if [ "${CI:-}" = true ] || [ "${VP_SANITIZE:-}" = 1 ]; then
	echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
	mkdir -p build-san
	(cd build-san && "$top/configure" -q --enable-sanitizers $werror CC=clang &&
		make -s -j"$jobs" check TESTS='$(UNIT_TESTS)') || {
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

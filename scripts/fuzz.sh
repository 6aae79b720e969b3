#!/usr/bin/env bash
# Fuzz one target for a while, then fold what it found into the committed
# corpus:   bash scripts/fuzz.sh TARGET SECONDS     (TARGET: addr conf store env usage ipp)
#
# Builds the libFuzzer targets with clang under ASan + UBSan in build-fuzz/
# (configure --enable-fuzzing), runs one fuzzer process (one core) seeded from
# tests/fuzz/corpus/TARGET with tests/fuzz/dict/TARGET.dict, and minimizes the
# old corpus plus the new inputs back into tests/fuzz/corpus/TARGET (-merge=1).
# Crashes land in build-fuzz/fuzz-work/TARGET/ as crash-*, leak-*, timeout-*;
# copy each into tests/fuzz/regressions/TARGET/ under a name that says what it
# is once fixed.  Prints CPU seconds and executions at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
target=${1:?usage: fuzz.sh TARGET SECONDS}
seconds=${2:?usage: fuzz.sh TARGET SECONDS}
case $target in
addr) max_len=128 ;;
conf) max_len=2048 ;;
store) max_len=4096 ;;
env) max_len=1024 ;;
usage) max_len=4096 ;;
ipp) max_len=4096 ;;
*) echo "fuzz.sh: unknown target $target (addr, conf, store, env, usage, ipp)" >&2; exit 2 ;;
esac

bash scripts/deps.sh
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] ||
	autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
mkdir -p build-fuzz
(cd build-fuzz && { [ -f Makefile ] && [ config.status -nt "$top/configure" ] ||
	"$top/configure" -q --enable-fuzzing --enable-werror CC=clang; } &&
	make -s -j2 "tests/fuzz/fuzz_$target")

work=build-fuzz/fuzz-work/$target
corpus=tests/fuzz/corpus/$target
mkdir -p "$work/corpus" "$work/merged"
cp -n "$corpus"/* "$work/corpus/" 2>/dev/null || true
dict=()
[ -f "tests/fuzz/dict/$target.dict" ] && dict=(-dict="tests/fuzz/dict/$target.dict")

# One process, one core: the machine is shared.
set +e
TIMEFORMAT='cpu: %U user + %S sys seconds, %R s wall'
time "build-fuzz/tests/fuzz/fuzz_$target" "$work/corpus" "$corpus" "${dict[@]}" \
	-max_len="$max_len" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/" 2>&1 | tee "$work/last.log" |
	grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse)' || true
status=${PIPESTATUS[0]}
set -e
grep -E '^stat::number_of_executed_units|^stat::peak_rss' "$work/last.log" || true

# Minimize old corpus + new finds back into the committed one.
rm -rf "$work/merged" && mkdir -p "$work/merged"
"build-fuzz/tests/fuzz/fuzz_$target" -merge=1 -max_len="$max_len" "$work/merged" \
	"$corpus" "$work/corpus" >"$work/merge.log" 2>&1
rm -f "$corpus"/*
cp "$work/merged"/* "$corpus/"
echo "corpus $corpus: $(ls "$corpus" | wc -l) files, $(du -sk "$corpus" | cut -f1) KiB"
ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null &&
	echo "fuzz.sh: findings above; reproduce with build-fuzz/tests/fuzz/fuzz_$target FILE" >&2
exit "$status"

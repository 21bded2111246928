#!/bin/sh
# A short libFuzzer run of build/fuzz/fuzz_$FUZZ_NAME (default shadow; scan:
# tests/fuzz/check_fuzz_scan.sh) for `make check`, reported
# as a cmocka summary line so tests/run.sh counts it: PASSED when the fuzzer
# ran FUZZ_CHECK_SECONDS (default 10) without a finding, FAILED otherwise,
# SKIPPED when the target was not built (no clang with libFuzzer; the
# Makefile printed why). Run from the top of the tree.
set -u
name=${FUZZ_NAME:-shadow}
bin=${FUZZ_BIN:-build/fuzz/fuzz_$name}
secs=${FUZZ_CHECK_SECONDS:-10}
if [ "$name" = shadow ]; then corpus=${FUZZ_CORPUS:-build/fuzz/corpus}
else corpus=${FUZZ_CORPUS:-build/fuzz/corpus-$name}; fi
artifacts=build/fuzz/artifacts/
if [ ! -x "$bin" ]; then
	echo "fuzz_$name: skipped: $bin not built (needs clang with libFuzzer)"
	echo "[  PASSED  ] 0 test(s)."
	echo "[  SKIPPED ] 1 test(s), listed below:"
	echo "[  SKIPPED ] fuzz_$name"
	exit 0
fi
mkdir -p "$corpus" "$artifacts"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" \
	>"$log" 2>&1
rc=$?
# The fuzzer's progress lines are noise here; keep the report and the stats.
grep -v '^#[0-9]*[[:space:]]*\(NEW\|REDUCE\|pulse\|INITED\)' "$log" | tail -n 60
echo "[==========] fuzz_$name: libFuzzer for $secs s"
if [ "$rc" -eq 0 ]; then
	echo "[  PASSED  ] 1 test(s)."
	exit 0
fi
echo "[  FAILED  ] 1 test(s), listed below:"
echo "[  FAILED  ] fuzz_$name (exit status $rc; the input is in $artifacts; replay: $bin <file>)"
exit 1

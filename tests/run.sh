#!/bin/sh
# Test runner for `make check`: runs every cmocka test binary given as an
# argument, shows its output, and adds up cmocka's summary lines. A binary that
# dies without a summary (a crash, a sanitizer report) counts as one failure.
# The last line is the overall tally: "check: N passed, N failed, N skipped".
set -u
passed=0 failed=0 skipped=0 broken=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for t in "$@"; do
	echo "== $t"
	"$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	if [ -z "$p" ] && [ -z "$f" ]; then
		echo "!! $t exited with status $rc and no cmocka summary: counted as a failure"
		failed=$((failed + 1))
		broken="$broken $t"
		continue
	fi
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0}))
	skipped=$((skipped + ${s:-0}))
	if [ "$rc" -ne 0 ] && [ -z "$f" ]; then
		echo "!! $t exited with status $rc: counted as a failure"
		failed=$((failed + 1))
		broken="$broken $t"
	fi
done
[ -n "$broken" ] && echo "broken test binaries:$broken"
echo "check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

#!/bin/bash
# Installs what is needed, builds, and runs the whole test suite:
#   1. unit tests (CTest) in a -Werror build,
#   2. the same unit tests under AddressSanitizer/UndefinedBehaviorSanitizer,
#   3. integration tests (pytest, real clients against a real `roost serve`
#      and a PostgreSQL cluster made for the run).
# Prints "N passed, N failed" at the end. Exit status 0 only if all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc 2>/dev/null || echo 2)

if [ "${ROOST_SKIP_DEPS:-0}" != 1 ]; then
	bash packaging/install-deps.sh test || exit 1
fi

step() { printf '\n==== %s ====\n' "$*"; }
fail=0
total_passed=0
total_failed=0

count_ctest() {   # reads ctest output: "100% tests passed, 0 tests failed out of 12"
	local line p f
	line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$1" | tail -1)
	f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
	p=$(( $(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line") - f ))
	total_passed=$((total_passed + ${p:-0})); total_failed=$((total_failed + ${f:-0}))
}

step "build (-Werror)"
cmake -S . -B build -DROOST_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build build -j"$JOBS" || exit 1

step "unit tests"
ctest --test-dir build --output-on-failure -j"$JOBS" 2>&1 | tee build/ctest.log
[ "${PIPESTATUS[0]}" -eq 0 ] || fail=1
count_ctest build/ctest.log

step "build with ASan/UBSan"
cmake -S . -B build-asan -DROOST_WERROR=ON -DROOST_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null || exit 1
cmake --build build-asan -j"$JOBS" || exit 1

step "unit tests under ASan/UBSan"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS=suppressions=$ROOT/tests/unit/lsan.supp
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure -j"$JOBS" 2>&1 | tee build-asan/ctest.log
[ "${PIPESTATUS[0]}" -eq 0 ] || fail=1
count_ctest build-asan/ctest.log
unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

step "integration tests"
ROOST_BIN=$ROOT/build/roost /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	tests/integration 2>&1 | tee build/pytest.log
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || fail=1
line=$(grep -E '[0-9]+ (passed|failed)' build/pytest.log | tail -1)
p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+'); f=$(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" | awk '{s += $1} END {print s + 0}')
total_passed=$((total_passed + ${p:-0})); total_failed=$((total_failed + ${f:-0}))
if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then total_failed=$((total_failed + 1)); fi

if [ -d tests/browser ] && ls tests/browser/*.mjs >/dev/null 2>&1; then
	step "browser tests"
	ROOST_BIN=$ROOT/build/roost bash tests/browser/run.sh 2>&1 | tee build/browser.log
	rc=${PIPESTATUS[0]}
	[ "$rc" -eq 0 ] || fail=1
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' build/browser.log | tail -1)
	p=$(cut -d' ' -f1 <<<"$line"); f=$(cut -d' ' -f3 <<<"$line")
	total_passed=$((total_passed + ${p:-0})); total_failed=$((total_failed + ${f:-0}))
fi

echo
echo "${total_passed} passed, ${total_failed} failed"
exit $fail
